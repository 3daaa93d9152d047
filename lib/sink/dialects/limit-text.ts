/** The words both dialects use when a table would exceed the target's limits. */
import type { Column } from '../table-model.js';

/** What an administrator does about it (the entity's changes wait meanwhile). */
export const MAKE_ROOM = 'remove the entity from the profile, or drop columns of the table it no longer needs';

/** The first 20 column names, and how many more. */
export function listed(columns: Column[]): string {
  const names = columns.slice(0, 20).map((c) => c.name);
  return columns.length > 20 ? `${names.join(', ')} and ${columns.length - 20} more` : names.join(', ');
}
