/**
 * What the applier asks of a target database. Every line of SQL lives behind this interface, in
 * `dialects/postgres*` and `dialects/mssql*`; the applier only hands over names, column types and text cells.
 */
import type { Column, ColumnType, TextLengthUnit } from './table-model.js';

/** A table to create: columns, primary key, and optionally one bigint identity column. */
export interface TableDef {
  name: string;
  columns: Column[];
  primaryKey: string[];
  identity?: string;
}

/** The sink's own side tables for one target (names before folding). */
export interface SideTableNames {
  tombstone: string;
  deleteLog: string;
}

export interface UpsertRow {
  id: string;
  rowVersion: string | null;
  modifiedOn: string | null;
  /** One text cell per column of the batch, in order; null writes NULL. */
  cells: (string | null)[];
}

/** Upserts of one table that all write the same attribute columns. */
export interface UpsertBatch {
  table: string;
  entity: string;
  /** Attribute columns with the types they have in the target. */
  columns: Column[];
  rows: UpsertRow[];
}

export interface DeleteRow {
  id: string;
  rowVersion: string | null;
  deletedOn: string | null;
  /** Write a DeleteLog row when the delete applies. */
  logs: boolean;
}

export interface DeleteBatch {
  table: string;
  entity: string;
  rows: DeleteRow[];
}

/**
 * How a driver error should be handled (docs/architecture.md §5, ErrorCodes). Each dialect sorts errors by an
 * allow-list: only errors known to be a row's fault are `permanent`; an error nobody listed is `unavailable`,
 * because failing rows on a guess is what loses changes, while waiting (with status saying why) loses nothing.
 */
export type FailureClass =
  /** The target cannot be reached: the whole batch stays queued. */
  | 'unreachable'
  /** Reached, but the database cannot take writes (full, read-only): the batch waits as in an outage. */
  | 'unavailable'
  /** The profile's target is set up wrongly (no permission, SQL it cannot compile): the batch waits for a fix. */
  | 'misconfigured'
  /** Retrying may help (deadlock, throttling, lost connection). */
  | 'transient'
  /** The statement ran out of time (or of a per-statement resource): write the rows again in halves. */
  | 'timeout'
  /** The data cannot be stored as sent: find the bad rows and fail only them. */
  | 'permanent'
  /** A concurrent applier created the same table or column first: retry the DDL once. */
  | 'schemaRace'
  /** The table or column we cached is gone: forget the cache and retry the batch. */
  | 'schemaStale';

export interface ClassifiedFailure {
  class: FailureClass;
  /** A sentence for users: what went wrong, in the target's words. */
  reason: string;
  /** The column the driver named, when it did. */
  column?: string;
  /** For a condition of the whole target: what an administrator does about it. */
  action?: string;
}

/** The introspector side of a dialect: reading what the target's tables are now. */
export interface SchemaIntrospector {
  /** The table's columns keyed by folded name, or undefined when the table does not exist. */
  readColumns(table: string): Promise<Map<string, ColumnType> | undefined>;
}

export interface TargetDialect extends SchemaIntrospector {
  readonly kind: 'postgres' | 'mssql';
  /** Longest identifier the target keeps without truncating. */
  readonly maxIdentifierLength: number;
  /** How many slices of one large upsert may run at once, each on its own connection; absent = 1. */
  readonly parallelWrites?: number;
  /** Most rows one upsert or delete statement may carry; absent = no limit. */
  readonly maxRowsPerStatement?: number;
  /** How the target counts a text column's length limit; absent = code points. */
  readonly textLengthUnit?: TextLengthUnit;
  /**
   * Why a table with these columns cannot exist in the target (row size, column count), naming the columns
   * that do not fit in `adding`; undefined when it fits. Checked before any DDL.
   */
  tableLimitProblem?(table: string, columns: Column[], adding: Column[]): string | undefined;
  /** The identifier as the target stores it (PostgreSQL: lower case). */
  fold(name: string): string;
  ensureSchema(): Promise<void>;
  createTable(table: TableDef): Promise<void>;
  addColumns(table: string, columns: Column[]): Promise<void>;
  /**
   * Under the schema lock: alters `column` from `from` to the wider `to`, keeping its NULL-ability, if it
   * still is `from`. False when it no longer is (another applier got there first, or someone altered it).
   */
  widenColumn(table: string, column: string, from: ColumnType, to: ColumnType): Promise<boolean>;
  /** Version-guarded upsert of a set of rows; returns the ids that applied (the rest were stale). */
  upsert(batch: UpsertBatch): Promise<Set<string>>;
  /**
   * Version-guarded delete: raises the tombstones, removes rows the delete is not older than, and with
   * `writeDeleteLog` logs each delete that applied. Returns the ids that applied: the row was removed, or
   * there was no row and the tombstone advanced (a surviving newer row makes the delete stale).
   */
  delete(batch: DeleteBatch, writeDeleteLog: boolean): Promise<Set<string>>;
  /** In one transaction: delete the rows where `key` equals `keyValue`, insert `rows` (text cells). */
  replaceRows(
    table: string,
    columns: Column[],
    key: string,
    keyValue: string,
    rows: (string | null)[][],
  ): Promise<void>;
  /** Removes tombstones deleted, and last touched, before `olderThan`; returns how many. 0 without the table. */
  purgeTombstones(olderThan: Date): Promise<number>;
  /** Drops each table that exists; returns the names (as given) of those dropped. */
  dropTables(tables: string[]): Promise<string[]>;
  /** Deletes the rows whose `key` is one of `values`, if the table exists. */
  deleteRowsWhereIn(table: string, key: string, values: string[]): Promise<void>;
  /** Whether the table exists and holds no row. */
  isEmpty(table: string): Promise<boolean>;
  classify(error: unknown): ClassifiedFailure;
  close(): Promise<void>;
}

/**
 * Wraps a failure to open a connection, so the classifiers can tell "the target cannot be reached" (the
 * whole batch waits, no retry budget spent) from a connection lost mid-statement (transient).
 */
export class TargetConnectError extends Error {
  constructor(readonly original: unknown) {
    super(original instanceof Error ? original.message : String(original), { cause: original });
    this.name = 'TargetConnectError';
  }
}
