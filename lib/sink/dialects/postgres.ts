/** The PostgreSQL target: runs the statements of `postgres-sql.ts` on a pooled node-postgres connection. */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { createPool, endPool } from '../../postgres-pool.js';
import { sameColumnType } from '../column-widening.js';
import {
  type DeleteBatch,
  type SideTableNames,
  type TableDef,
  TargetConnectError,
  type TargetDialect,
  type UpsertBatch,
} from '../dialect.js';
import type { Column, ColumnType } from '../table-model.js';
import { arrayLiteral } from './postgres-arrays.js';
import { copyText } from './postgres-copy.js';
import { classifyPostgresError } from './postgres-errors.js';
import { postgresTableLimitProblem } from './postgres-limits.js';
import * as sql from './postgres-sql.js';

interface SharedPool {
  pool: pg.Pool;
  users: number;
}

/** One pool per connection string, shared by every sink open on it. */
const pools = new Map<string, SharedPool>();

function acquirePool(connectionString: string): pg.Pool {
  let shared = pools.get(connectionString);
  if (!shared) {
    // An idle client losing its server must not crash the process; the next query reports it.
    const pool = createPool({ connectionString, max: 10, connectionTimeoutMillis: 15_000, idleTimeoutMillis: 30_000 });
    shared = { pool, users: 0 };
    pools.set(connectionString, shared);
  }
  shared.users++;
  return shared.pool;
}

async function releasePool(connectionString: string): Promise<void> {
  const shared = pools.get(connectionString);
  if (!shared) return;
  if (--shared.users > 0) return;
  pools.delete(connectionString);
  await endPool(shared.pool);
}

/**
 * How upsert rows reach the server: `arrays` as one text array parameter per column, unnested in the
 * statement; `copy` by COPY into a session's staging table, then the same statement reading from there.
 */
export type UpsertRoute = 'arrays' | 'copy';

/** The staging tables (by width) each pooled connection has made; temporary tables live per session. */
const stagingTables = new WeakMap<pg.PoolClient, Set<number>>();

export class PostgresDialect implements TargetDialect {
  readonly kind = 'postgres';
  readonly maxIdentifierLength = 63;
  readonly parallelWrites = 2;
  private readonly pool: pg.Pool;

  constructor(
    private readonly connectionString: string,
    private readonly schema: string,
    private readonly sides: SideTableNames,
    private readonly upsertRoute: UpsertRoute = 'arrays',
  ) {
    this.pool = acquirePool(connectionString);
  }

  tableLimitProblem(table: string, columns: Column[], adding: Column[]): string | undefined {
    return postgresTableLimitProblem(table, columns, adding);
  }

  fold(name: string): string {
    return sql.fold(name);
  }

  /** One statement on a pooled connection; a failure to connect is marked so it classifies as unreachable. */
  private async run(text: string, params: unknown[] = []): Promise<pg.QueryResult> {
    const client = await this.connect();
    try {
      return await client.query(text, params);
    } finally {
      client.release();
    }
  }

  private async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (err) {
      throw new TargetConnectError(err);
    }
  }

  async ensureSchema(): Promise<void> {
    if (sql.fold(this.schema) === 'public') return;
    await this.run(sql.createSchemaSql(this.schema));
  }

  async readColumns(table: string): Promise<Map<string, ColumnType> | undefined> {
    const res = await this.run(sql.readColumnsSql, [sql.fold(this.schema), sql.fold(table)]);
    if (res.rowCount === 0) return undefined;
    return new Map(res.rows.map((r) => [r.column_name as string, columnTypeOf(r)]));
  }

  async createTable(table: TableDef): Promise<void> {
    await this.run(sql.createTableSql(this.schema, table));
  }

  async addColumns(table: string, columns: Column[]): Promise<void> {
    if (columns.length) await this.run(sql.addColumnsSql(this.schema, table, columns));
  }

  async widenColumn(table: string, column: string, from: ColumnType, to: ColumnType): Promise<boolean> {
    const client = await this.connect();
    try {
      await client.query('BEGIN');
      await client.query(sql.WIDEN_LOCK_TIMEOUT);
      await client.query(sql.lockTableSql(this.schema, table));
      const res = await client.query(sql.readColumnSql, [sql.fold(this.schema), sql.fold(table), sql.fold(column)]);
      if (!res.rows.length || !sameColumnType(columnTypeOf(res.rows[0]), from)) {
        await client.query('ROLLBACK');
        return false;
      }
      await client.query(sql.alterColumnTypeSql(this.schema, table, column, to));
      await client.query('COMMIT');
      return true;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async upsert(batch: UpsertBatch): Promise<Set<string>> {
    const rows = batch.rows;
    const ids = arrayLiteral(rows, (r) => r.id, false);
    const applied =
      this.upsertRoute === 'copy' ? await this.upsertByCopy(batch) : await this.upsertByArrays(batch, ids);
    if (applied.size) {
      // Usually every row applied and the ids already sent serve again.
      const appliedIds = applied.size === rows.length ? ids : arrayLiteral([...applied], (id) => id, false);
      const undone = await this.run(sql.upsertRecheckSql(this.schema, batch.table, this.sides), [
        batch.entity,
        appliedIds,
      ]);
      for (const row of undone.rows) applied.delete(row.id);
    }
    return applied;
  }

  private async upsertByArrays(batch: UpsertBatch, ids: string): Promise<Set<string>> {
    const rows = batch.rows;
    const params: unknown[] = [
      batch.entity,
      ids,
      arrayLiteral(rows, (r) => r.rowVersion, false),
      arrayLiteral(rows, (r) => r.modifiedOn, false),
      // Only text cells can hold a quote or backslash; the others were rendered as GUIDs, numbers or times.
      ...batch.columns.map((c, i) => arrayLiteral(rows, (r) => r.cells[i], c.type.kind === 'text')),
    ];
    const res = await this.run(sql.upsertSql(this.schema, batch.table, this.sides, batch.columns), params);
    return new Set<string>(res.rows.map((r) => r.id));
  }

  /** COPY into the session's staging table and the guarded upsert from it, in one transaction. */
  private async upsertByCopy(batch: UpsertBatch): Promise<Set<string>> {
    const width = batch.columns.length;
    const client = await this.connect();
    try {
      const made = stagingTables.get(client) ?? new Set<number>();
      stagingTables.set(client, made);
      if (!made.has(width)) {
        await client.query(sql.stagingTableSql(width));
        made.add(width);
      }
      await client.query('BEGIN');
      await pipeline(Readable.from([copyText(batch.rows)]), client.query(copyFrom(sql.copyToStagingSql(width))));
      const res = await client.query(sql.stagedUpsertSql(this.schema, batch.table, this.sides, batch.columns), [
        batch.entity,
      ]);
      await client.query('COMMIT');
      return new Set<string>(res.rows.map((r) => r.id));
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async delete(batch: DeleteBatch, writeDeleteLog: boolean): Promise<Set<string>> {
    const ids = batch.rows.map((r) => r.id);
    const versions = batch.rows.map((r) => r.rowVersion);
    const times = batch.rows.map((r) => r.deletedOn);
    // The tombstone commits first, so an older upsert racing this delete sees it (see upsertRecheckSql).
    const tomb = await this.run(sql.tombstoneSql(this.schema, this.sides), [batch.entity, ids, versions, times]);
    const advanced = tomb.rows.map((r) => r.id as string);
    const params: unknown[] = [ids, versions, times, advanced];
    if (writeDeleteLog)
      params.push(
        batch.entity,
        batch.rows.filter((r) => r.logs).map((r) => r.id),
      );
    const applied = await this.run(sql.deleteSql(this.schema, batch.table, this.sides, writeDeleteLog), params);
    return new Set(applied.rows.map((r) => r.id as string));
  }

  async replaceRows(
    table: string,
    columns: Column[],
    key: string,
    keyValue: string,
    rows: (string | null)[][],
  ): Promise<void> {
    const client = await this.connect();
    try {
      await client.query('BEGIN');
      await client.query(sql.replaceLockSql, [`sink-replace:${this.schema}.${table}:${keyValue}`]);
      await client.query(sql.deleteByKeySql(this.schema, table, key), [keyValue]);
      if (rows.length) {
        await client.query(
          sql.insertRowsSql(this.schema, table, columns),
          columns.map((_, i) => rows.map((r) => r[i])),
        );
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async purgeTombstones(olderThan: Date): Promise<number> {
    if (!(await this.readColumns(this.sides.tombstone))) return 0;
    const res = await this.run(sql.purgeTombstonesSql(this.schema, this.sides), [olderThan.toISOString()]);
    return res.rowCount ?? 0;
  }

  async dropTables(tables: string[]): Promise<string[]> {
    const dropped: string[] = [];
    for (const table of tables) {
      if (!(await this.readColumns(table))) continue;
      await this.run(sql.dropTableSql(this.schema, table));
      dropped.push(table);
    }
    return dropped;
  }

  async deleteRowsWhereIn(table: string, key: string, values: string[]): Promise<void> {
    if (!values.length || !(await this.readColumns(table))) return;
    await this.run(sql.deleteWhereInSql(this.schema, table, key), [values]);
  }

  async isEmpty(table: string): Promise<boolean> {
    if (!(await this.readColumns(table))) return false;
    const res = await this.run(sql.anyRowSql(this.schema, table));
    return res.rows[0].any === false;
  }

  classify(error: unknown) {
    return classifyPostgresError(error, sql.fold(this.schema));
  }

  close(): Promise<void> {
    return releasePool(this.connectionString);
  }
}

function columnTypeOf(row: {
  data_type: string;
  numeric_precision: number | null;
  numeric_scale: number | null;
  character_maximum_length: number | null;
}): ColumnType {
  switch (row.data_type) {
    case 'uuid':
      return { kind: 'uuid' };
    case 'smallint':
    case 'integer':
      return { kind: 'integer' };
    case 'bigint':
      return { kind: 'bigint' };
    case 'numeric':
      return { kind: 'decimal', precision: row.numeric_precision ?? 38, scale: row.numeric_scale ?? 0 };
    case 'real':
    case 'double precision':
      return { kind: 'double' };
    case 'boolean':
      return { kind: 'boolean' };
    case 'timestamp with time zone':
    case 'timestamp without time zone':
    case 'date':
      return { kind: 'timestamp' };
    case 'character varying':
    case 'character':
      return row.character_maximum_length
        ? { kind: 'text', maxLength: row.character_maximum_length }
        : { kind: 'text' };
    default:
      return { kind: 'text' };
  }
}
