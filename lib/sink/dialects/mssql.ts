/**
 * The Azure SQL target: runs the statements of `mssql-sql.ts` through a small connector interface, so
 * tests can record the statement sequence (no SQL Server runs here) and production uses `mssql` pools.
 * Upsert rows are bulk loaded (TDS bulk copy, the driver's fast path) into a `#temp` staging table the MERGE
 * reads; deletes send their rows as one JSON parameter (OPENJSON). Neither needs a user-defined table type
 * in the target.
 */
import mssql from 'mssql';
import { type MssqlPolicy, mssqlConfig } from '../../mssql-config.js';
import {
  type DeleteBatch,
  type SideTableNames,
  type TableDef,
  TargetConnectError,
  type TargetDialect,
  type UpsertBatch,
} from '../dialect.js';
import type { Column, ColumnType } from '../table-model.js';
import { classifyMssqlError } from './mssql-errors.js';
import { mssqlTableLimitProblem } from './mssql-limits.js';
import * as sql from './mssql-sql.js';
import { widenColumnSql } from './mssql-widen-sql.js';

export interface MssqlInput {
  name: string;
  type: mssql.ISqlType | mssql.ISqlTypeFactoryWithNoParams;
  value: unknown;
}

type Rows = Array<Record<string, unknown>>;

/** Rows bulk loaded into a table the session made: every column nullable nvarchar of the given length. */
export interface MssqlBulkLoad {
  table: string;
  columns: Array<{ name: string; length: number | 'max' }>;
  rows: (string | null)[][];
}

/** One pinned connection inside a transaction. */
export interface MssqlSession {
  query(text: string, inputs?: MssqlInput[]): Promise<Rows>;
  /** A TDS bulk load (`INSERT BULK`); its errors carry SQL Server's numbers as a query's do. */
  bulk(load: MssqlBulkLoad): Promise<void>;
}

/** Runs T-SQL batches; `query` answers the rows of the batch's last result set. */
export interface MssqlConnector {
  /** One batch on any pooled connection (autocommit unless the batch opens a transaction). */
  query(text: string, inputs?: MssqlInput[]): Promise<Rows>;
  /** `work` on one connection in a transaction: committed if it resolves, rolled back if it throws. */
  transaction<T>(work: (session: MssqlSession) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

interface SharedPool {
  connecting?: Promise<mssql.ConnectionPool>;
  users: number;
}

/** One pool per connection string, shared by every sink open on it; it connects on first use. */
const pools = new Map<string, SharedPool>();

async function run(on: mssql.ConnectionPool | mssql.Transaction, text: string, inputs: MssqlInput[]): Promise<Rows> {
  const req = new mssql.Request(on as mssql.ConnectionPool);
  for (const input of inputs) req.input(input.name, input.type, input.value);
  const result = await req.query(text);
  const sets = (result.recordsets ?? []) as unknown as Rows[];
  return sets.length ? sets[sets.length - 1] : [];
}

async function bulkLoad(tx: mssql.Transaction, load: MssqlBulkLoad): Promise<void> {
  const table = new mssql.Table(load.table);
  for (const column of load.columns) {
    table.columns.add(column.name, mssql.NVarChar(column.length === 'max' ? mssql.MAX : column.length), {
      nullable: true,
    });
  }
  for (const row of load.rows) table.rows.add(...row);
  await new mssql.Request(tx).bulk(table);
}

/** A connector on the shared `mssql` pool of this connection string. */
export function openMssqlPool(connectionString: string, policy: MssqlPolicy = {}): MssqlConnector {
  // Read the string now: a sign-in or TLS setting it refuses is the profile's configuration fault, not an outage.
  const config = mssqlConfig(connectionString, policy);
  let shared = pools.get(connectionString);
  if (!shared) {
    shared = { users: 0 };
    pools.set(connectionString, shared);
  }
  const own = shared;
  own.users++;
  let closed = false;
  const connect = (): Promise<mssql.ConnectionPool> => {
    own.connecting ??= (async () => {
      const pool = new mssql.ConnectionPool(config);
      pool.on('error', () => {});
      return pool.connect();
    })().catch((err) => {
      own.connecting = undefined;
      throw new TargetConnectError(err);
    });
    return own.connecting;
  };
  return {
    async query(text, inputs = []) {
      return run(await connect(), text, inputs);
    },
    async transaction(work) {
      const tx = new mssql.Transaction(await connect());
      await tx.begin();
      try {
        const value = await work({
          query: (text, inputs = []) => run(tx, text, inputs),
          bulk: (load) => bulkLoad(tx, load),
        });
        await tx.commit();
        return value;
      } catch (err) {
        await tx.rollback().catch(() => {});
        throw err;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      if (--own.users > 0) return;
      if (pools.get(connectionString) === own) pools.delete(connectionString);
      const pool = await own.connecting?.catch(() => undefined);
      await pool?.close();
    },
  };
}

/** Parameters declared at the length of what they hold: a logical name, a two-part name, a JSON batch. */
const NAME = mssql.NVarChar(128);
const TWO_PART_NAME = mssql.NVarChar(sql.TWO_PART_NAME_LENGTH);
const TEXT = mssql.NVarChar(mssql.MAX);
/** sp_getapplock takes a resource name of at most 255 characters. */
const LOCK_RESOURCE = mssql.NVarChar(255);
/** Cut to sp_getapplock's 255: two long names may then share a lock, which only serialises them. */
const lockResource = (name: string): string => name.slice(0, 255);

export class MssqlDialect implements TargetDialect {
  readonly kind = 'mssql';
  readonly maxIdentifierLength = 128;
  readonly maxRowsPerStatement = sql.MAX_ROWS_PER_STATEMENT;
  readonly textLengthUnit = 'utf16';

  constructor(
    private readonly connector: MssqlConnector,
    private readonly schema: string,
    private readonly sides: SideTableNames,
  ) {}

  /**
   * SQL Server keeps DES's spelling (`Id`, `SinkCreatedOn`) in the statements; names compare without case,
   * as the default collation does, so the applier's column lookups fold to lower case.
   */
  fold(name: string): string {
    return name.toLowerCase();
  }

  async ensureSchema(): Promise<void> {
    await this.connector.query(sql.createSchemaSql(this.schema));
  }

  async readColumns(table: string): Promise<Map<string, ColumnType> | undefined> {
    const rows = await this.connector.query(sql.readColumnsSql, [
      { name: 'table', type: TWO_PART_NAME, value: `[${this.schema}].[${table}]` },
    ]);
    if (!rows.length) return undefined;
    return new Map(rows.map((r) => [String(r.column_name).toLowerCase(), columnTypeOf(r)]));
  }

  tableLimitProblem(table: string, columns: Column[], adding: Column[]): string | undefined {
    return mssqlTableLimitProblem(table, columns, adding);
  }

  async createTable(table: TableDef): Promise<void> {
    await this.connector.query(sql.createTableSql(this.schema, table));
  }

  async addColumns(table: string, columns: Column[]): Promise<void> {
    if (columns.length) await this.connector.query(sql.addColumnsSql(this.schema, table, columns));
  }

  async widenColumn(table: string, column: string, from: ColumnType, to: ColumnType): Promise<boolean> {
    const rows = await this.connector.query(widenColumnSql(this.schema, table, column, from, to));
    return rows.length > 0 && Number(rows[0].widened) === 1;
  }

  async upsert(batch: UpsertBatch): Promise<Set<string>> {
    const entity = { name: 'entity', type: NAME, value: batch.entity };
    const width = batch.columns.length;
    const merged = await this.connector.transaction(async (session) => {
      await session.query(sql.createStagingSql(width));
      await session.bulk({
        table: sql.STAGING_TABLE,
        columns: sql.stagingColumns(width),
        rows: batch.rows.map((r) => [r.id, r.rowVersion, r.modifiedOn, ...r.cells]),
      });
      return session.query(sql.mergeSql(this.schema, batch.table, this.sides, batch.columns), [entity]);
    });
    const applied = new Set(merged.map((r) => String(r.id)));
    if (applied.size) {
      const undone = await this.connector.query(sql.recheckSql(this.schema, batch.table, this.sides), [
        entity,
        { name: 'ids', type: TEXT, value: JSON.stringify([...applied]) },
      ]);
      for (const row of undone) applied.delete(String(row.id));
    }
    return applied;
  }

  async delete(batch: DeleteBatch, writeDeleteLog: boolean): Promise<Set<string>> {
    const entity = { name: 'entity', type: NAME, value: batch.entity };
    // The tombstone commits first, so an older upsert racing this delete sees it (see recheckSql).
    const tomb = await this.connector.query(sql.tombstoneSql(this.schema, this.sides), [
      entity,
      { name: 'rows', type: TEXT, value: JSON.stringify(batch.rows.map((r) => [r.id, r.rowVersion, r.deletedOn])) },
    ]);
    const advanced = new Set(tomb.map((r) => String(r.id)));
    const rows = batch.rows.map((r) => [r.id, r.rowVersion, r.deletedOn, r.logs ? 1 : 0, advanced.has(r.id) ? 1 : 0]);
    const applied = await this.connector.query(sql.deleteSql(this.schema, batch.table, this.sides, writeDeleteLog), [
      entity,
      { name: 'rows', type: TEXT, value: JSON.stringify(rows) },
    ]);
    return new Set(applied.map((r) => String(r.id)));
  }

  async purgeTombstones(olderThan: Date): Promise<number> {
    const rows = await this.connector.query(sql.purgeTombstonesSql(this.schema, this.sides), [
      { name: 'cutoff', type: mssql.DateTime2(7), value: olderThan },
    ]);
    return Number(rows[0]?.purged ?? 0);
  }

  async dropTables(tables: string[]): Promise<string[]> {
    const dropped: string[] = [];
    for (const table of tables) {
      const rows = await this.connector.query(sql.dropTableSql(this.schema, table));
      if (Number(rows[0]?.dropped) === 1) dropped.push(table);
    }
    return dropped;
  }

  async deleteRowsWhereIn(table: string, key: string, values: string[]): Promise<void> {
    if (!values.length) return;
    await this.connector.query(sql.deleteWhereInSql(this.schema, table, key), [
      { name: 'values', type: TEXT, value: JSON.stringify(values) },
    ]);
  }

  async isEmpty(table: string): Promise<boolean> {
    const rows = await this.connector.query(sql.isEmptySql(this.schema, table));
    return Number(rows[0]?.empty) === 1;
  }

  async replaceRows(
    table: string,
    columns: Column[],
    key: string,
    keyValue: string,
    rows: (string | null)[][],
  ): Promise<void> {
    await this.connector.transaction(async (session) => {
      await session.query(sql.replaceLockSql, [
        {
          name: 'resource',
          type: LOCK_RESOURCE,
          value: lockResource(`sink-replace:[${this.schema}].[${table}]:${keyValue}`),
        },
      ]);
      await session.query(sql.deleteByKeySql(this.schema, table, key), [{ name: 'key', type: NAME, value: keyValue }]);
      if (rows.length) {
        await session.query(sql.insertRowsSql(this.schema, table, columns), [
          { name: 'rows', type: TEXT, value: JSON.stringify(rows) },
        ]);
      }
    });
  }

  classify(error: unknown) {
    return classifyMssqlError(error, this.schema);
  }

  close(): Promise<void> {
    return this.connector.close();
  }
}

function columnTypeOf(row: Record<string, unknown>): ColumnType {
  const maxLength = Number(row.max_length);
  switch (String(row.type_name)) {
    case 'uniqueidentifier':
      return { kind: 'uuid' };
    case 'int':
    case 'smallint':
    case 'tinyint':
      return { kind: 'integer' };
    case 'bigint':
      return { kind: 'bigint' };
    case 'decimal':
    case 'numeric':
    case 'money':
      return { kind: 'decimal', precision: Number(row.precision), scale: Number(row.scale) };
    case 'float':
    case 'real':
      return { kind: 'double' };
    case 'bit':
      return { kind: 'boolean' };
    case 'datetime':
    case 'datetime2':
    case 'datetimeoffset':
    case 'date':
      return { kind: 'timestamp' };
    case 'nvarchar':
    case 'nchar':
      return maxLength > 0 ? { kind: 'text', maxLength: maxLength / 2 } : { kind: 'text' };
    case 'varchar':
    case 'char':
      return maxLength > 0 ? { kind: 'text', maxLength } : { kind: 'text' };
    default:
      return { kind: 'text' };
  }
}
