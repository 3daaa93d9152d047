/**
 * SQL Server's per-table limits, checked before any DDL so an entity that cannot fit fails once with the
 * columns named, instead of every batch failing its CREATE/ALTER (1701, 1702) or its rows (511).
 *
 * The arithmetic, for one row in the FixedVar format SQL Server stores:
 * - 4 bytes of header, a null bitmap of 2 + ⌈columns / 8⌉ bytes, 2 bytes counting variable columns, and
 *   14 bytes of row-versioning tag (present under READ_COMMITTED_SNAPSHOT, which DES recommended);
 * - each fixed-length column its size (uniqueidentifier 16, int 4, bigint / float / datetime2 8,
 *   decimal 5 / 9 / 13 / 17 by precision, bit columns 1 byte per 8);
 * - each variable-length column (nvarchar(n), nvarchar(max)) 2 bytes of offset plus at most 24 bytes: a value
 *   longer than that can leave the row (row-overflow for n ≤ 4000, LOB for max) and keep a 24-byte pointer.
 *   Counting nvarchar(n) as 2n would refuse tables DES created and SQL Server holds (account has dozens of
 *   nvarchar(100…4000) columns), so the 24-byte pointer is the honest worst case.
 * If that total is within 8,060 bytes, every row the table can receive fits.
 */
import type { Column, ColumnType } from '../table-model.js';
import { listed, MAKE_ROOM } from './limit-text.js';

export const MAX_ROW_BYTES = 8_060;
export const MAX_COLUMNS = 1_024;
/** What a variable-length value may leave in the row once pushed off-row. */
const OFF_ROW_POINTER_BYTES = 24;
const ROW_VERSION_TAG_BYTES = 14;

function decimalBytes(precision: number): number {
  if (precision <= 9) return 5;
  if (precision <= 19) return 9;
  if (precision <= 28) return 13;
  return 17;
}

/** In-row bytes a column can take at most (bit columns are counted together by the caller). */
export function inRowBytes(type: ColumnType): number {
  switch (type.kind) {
    case 'uuid':
      return 16;
    case 'integer':
      return 4;
    case 'bigint':
    case 'double':
    case 'timestamp':
      return 8;
    case 'decimal':
      return decimalBytes(type.precision ?? 38);
    case 'boolean':
      return 0;
    case 'text':
      return 2 + Math.min(OFF_ROW_POINTER_BYTES, type.maxLength !== undefined ? 2 * type.maxLength : Infinity);
  }
}

/** The largest in-row size a row of these columns can have, overhead included. */
export function maxRowBytes(columns: Column[]): number {
  const bits = columns.filter((c) => c.type.kind === 'boolean').length;
  const data = columns.reduce((sum, c) => sum + inRowBytes(c.type), 0);
  const overhead = 4 + 2 + Math.ceil(columns.length / 8) + 2 + ROW_VERSION_TAG_BYTES;
  return overhead + data + Math.ceil(bits / 8);
}

const WHAT_TO_DO = `Its changes wait, nothing is failure-logged: ${MAKE_ROOM}.`;

/** Why SQL Server cannot hold a table of `columns` (of which `adding` are new), or undefined. */
export function mssqlTableLimitProblem(table: string, columns: Column[], adding: Column[]): string | undefined {
  if (columns.length > MAX_COLUMNS) {
    return `table ${table} would have ${columns.length} columns, more than SQL Server's ${MAX_COLUMNS}; columns not created: ${listed(adding)}. ${WHAT_TO_DO}`;
  }
  const bytes = maxRowBytes(columns);
  if (bytes > MAX_ROW_BYTES) {
    return `table ${table} would need up to ${bytes} bytes per row, more than SQL Server's ${MAX_ROW_BYTES}; columns not created: ${listed(adding)}. ${WHAT_TO_DO}`;
  }
  return undefined;
}
