/**
 * PostgreSQL's per-table limit, checked before any DDL so an entity that cannot fit waits once with the
 * columns named, instead of every batch failing its CREATE/ALTER (54011). A table holds at most 1,600
 * columns (MaxHeapAttributeNumber), and columns dropped since it was created still count until it is made anew.
 * Rows are not limited the same way: a wide value moves out of the row (TOAST), so only the count is checked.
 */
import type { Column } from '../table-model.js';
import { listed } from './limit-text.js';

export const MAX_POSTGRES_COLUMNS = 1_600;

/** Why PostgreSQL cannot hold a table of `columns` (of which `adding` are new), or undefined. */
export function postgresTableLimitProblem(table: string, columns: Column[], adding: Column[]): string | undefined {
  if (columns.length <= MAX_POSTGRES_COLUMNS) return undefined;
  return `table ${table} would have ${columns.length} columns, more than PostgreSQL's ${MAX_POSTGRES_COLUMNS}; columns not created: ${listed(adding)}. Its changes wait, nothing is failure-logged: remove the entity from the profile, or create the table anew with fewer columns (PostgreSQL still counts dropped ones).`;
}
