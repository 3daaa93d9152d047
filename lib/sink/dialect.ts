/**
 * What the applier asks of a target database. Every line of SQL lives behind this interface, in
 * `dialects/postgres*` and `dialects/mssql*`; the applier only hands over names, column types and text cells.
 */
import type { Column, ColumnType } from './table-model.js';

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

/** How a driver error should be handled (docs/architecture.md §5, ErrorCodes). */
export type FailureClass =
  /** The target cannot be reached: the whole batch stays queued. */
  | 'unreachable'
  /** Retrying may help (deadlock, throttling, timeout). */
  | 'transient'
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
}

export interface TargetDialect {
  readonly kind: 'postgres' | 'mssql';
  /** Longest identifier the target keeps without truncating. */
  readonly maxIdentifierLength: number;
  /** How many slices of one large upsert may run at once, each on its own connection; absent = 1. */
  readonly parallelWrites?: number;
  /** The identifier as the target stores it (PostgreSQL: lower case). */
  fold(name: string): string;
  ensureSchema(): Promise<void>;
  /** The table's columns keyed by folded name, or undefined when the table does not exist. */
  readColumns(table: string): Promise<Map<string, ColumnType> | undefined>;
  createTable(table: TableDef): Promise<void>;
  addColumns(table: string, columns: Column[]): Promise<void>;
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
