/**
 * What the sink knows of the target's tables: the schema and side tables made once, each table's columns
 * cached after first use and after each DDL, tables created or given their missing columns, and columns
 * widened to Dataverse's metadata. A stale-schema error anywhere drops the cache.
 */
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import { type ColumnWidening, keptKey, sameColumnType, widenColumnsToSpecs } from './column-widening.js';
import type { TableDef, TargetDialect } from './dialect.js';
import type { RecordChange } from './record-change.js';
import { deleteLogTable, tombstoneTable } from './side-tables.js';
import {
  type AttributeSpec,
  type Column,
  type ColumnType,
  columnsForAttribute,
  columnTypeForSpec,
  columnTypeForValue,
  systemColumns,
} from './table-model.js';
import { batchError } from './target-failure.js';

/** A table's columns by folded name. */
export type Columns = Map<string, ColumnType>;

export class TableSchema {
  /** Known columns per table (folded names), filled on first use and after each DDL. */
  private readonly tables = new Map<string, Columns>();
  private sideTables: Promise<void> | undefined;
  private schemaReady: Promise<void> | undefined;
  /** Why a column was left as it is although the metadata asks for more, per `table.column` (folded). */
  private readonly keptColumns = new Map<string, string>();
  private readonly forgetting: Array<() => void> = [];

  constructor(
    private readonly dialect: TargetDialect,
    private readonly prefix: string,
    private readonly writeDeleteLog: boolean,
    private readonly logger: Logger,
  ) {}

  /** Runs `listener` whenever the cache is dropped (another cache built on this one follows it). */
  onForget(listener: () => void): void {
    this.forgetting.push(listener);
  }

  /** Someone dropped what we cached (or we did): look at the target again on next use. */
  forget(): void {
    this.tables.clear();
    this.sideTables = undefined;
    for (const listener of this.forgetting) listener();
  }

  /** The cached columns of a table, if any. */
  cached(table: string): Columns | undefined {
    return this.tables.get(this.dialect.fold(table));
  }

  /** Drops one table's cached columns, so the next ensure reads them from the target. */
  invalidate(table: string): void {
    this.tables.delete(this.dialect.fold(table));
  }

  async ensureSchema(): Promise<void> {
    this.schemaReady ??= this.guard(() => this.dialect.ensureSchema()).catch((err) => {
      this.schemaReady = undefined;
      throw err;
    });
    return this.schemaReady;
  }

  ensureSideTables(): Promise<void> {
    this.sideTables ??= (async () => {
      await this.ensureSchema();
      await this.guard(() => this.ensureTable(tombstoneTable(this.prefix)));
      if (this.writeDeleteLog) await this.guard(() => this.ensureTable(deleteLogTable(this.prefix)));
    })().catch((err) => {
      this.sideTables = undefined;
      throw err;
    });
    return this.sideTables;
  }

  /** Creates the entity table or adds missing columns; returns the table's columns as they are in the target. */
  async ensureEntityTable(
    table: string,
    upserts: RecordChange[],
    specs: Map<string, AttributeSpec> | undefined,
  ): Promise<Columns> {
    const wanted = new Map<string, Column>();
    const want = (name: string, type: ColumnType, isLookup: boolean) => {
      if (wanted.has(name)) return;
      for (const column of columnsForAttribute(name, type, isLookup)) wanted.set(column.name, column);
    };
    for (const spec of specs?.values() ?? []) want(spec.name, columnTypeForSpec(spec), spec.kind === 'lookup');
    for (const record of upserts) {
      const attributes = record.attributes;
      // Keys, not entries: this runs for every attribute of every upsert of every batch.
      for (const name of Object.keys(attributes)) {
        if (wanted.has(name)) continue;
        const value = attributes[name];
        const type = columnTypeForValue(name, value);
        if (type) want(name, type, value.type === 'lookup');
      }
    }
    const columns = await this.ensureTable({
      name: table,
      columns: [...systemColumns(), ...wanted.values()],
      primaryKey: ['Id'],
    });
    if (!specs?.size) return columns;
    const widening: ColumnWidening = {
      dialect: this.dialect,
      logger: this.logger,
      kept: this.keptColumns,
      retry: (ddl) => this.retryingRace(ddl),
    };
    const widened = await widenColumnsToSpecs(widening, table, columns, specs.values());
    if (widened !== columns) this.tables.set(this.dialect.fold(table), widened);
    return widened;
  }

  async ensureTable(def: TableDef): Promise<Columns> {
    const key = this.dialect.fold(def.name);
    let columns = this.tables.get(key) ?? (await this.dialect.readColumns(def.name));
    if (!columns) {
      this.assertTableFits(def.name, def.columns, def.columns);
      await this.retryingRace(() => this.dialect.createTable(def));
      columns = await this.dialect.readColumns(def.name);
    }
    const missing = def.columns.filter((c) => !columns!.has(this.dialect.fold(c.name)));
    if (missing.length) {
      const present = [...columns!].map(([name, type]) => ({ name, type }));
      this.assertTableFits(def.name, [...present, ...missing], missing);
      this.logger.info('sink.columns.add', { table: def.name, columns: missing.map((c) => c.name) });
      await this.retryingRace(() => this.dialect.addColumns(def.name, missing));
      columns = await this.dialect.readColumns(def.name);
    }
    if (!columns) throw new AppError('TARGET_TRANSIENT', `table ${def.name} vanished while it was being created`);
    this.tables.set(key, columns);
    return columns;
  }

  /** A record's failure reason, with why its column was not widened when the metadata asked for more. */
  withKeptNote(table: string, reason: string, column: string | undefined): string {
    const note = column && this.keptColumns.get(keptKey(this.dialect, table, column));
    return note ? `${reason}. ${note}` : reason;
  }

  /** Turns driver errors of schema and metadata work into AppErrors; data errors there are permanent. */
  async guard<T>(work: () => Promise<T>, dataErrorsArePermanent = false): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (err instanceof AppError) throw err;
      const failure = this.dialect.classify(err);
      if (failure.class === 'schemaStale') this.forget();
      if (failure.class === 'permanent' && dataErrorsArePermanent) {
        throw new AppError('TARGET_PERMANENT', failure.reason, { cause: err });
      }
      throw batchError(failure, err);
    }
  }

  /** A table the target cannot hold makes its entity wait with one error naming the columns, before any DDL. */
  private assertTableFits(table: string, columns: Column[], adding: Column[]): void {
    const problem = this.dialect.tableLimitProblem?.(table, columns, adding);
    if (problem) {
      throw new AppError('TABLE_LIMIT_EXCEEDED', problem, {
        details: adding.map((c) => ({ field: c.name, message: 'does not fit the table', value: table })),
      });
    }
  }

  /** Another applier may create the same table or column between our check and our DDL: retry once. */
  private async retryingRace(ddl: () => Promise<void>): Promise<void> {
    try {
      await ddl();
    } catch (err) {
      if (this.dialect.classify(err).class !== 'schemaRace') throw err;
      await ddl();
    }
  }
}

export function sameColumns(a: Columns, b: Columns): boolean {
  if (a.size !== b.size) return false;
  for (const [name, type] of a) {
    const other = b.get(name);
    if (!other || !sameColumnType(type, other)) return false;
  }
  return true;
}
