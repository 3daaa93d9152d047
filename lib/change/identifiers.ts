import { AppError } from '../errors.js';

/** Entity, attribute and relationship names must match this before they become SQL identifiers (docs/architecture.md §7). */
export const LOGICAL_NAME_PATTERN = /^[a-z_][a-z0-9_]{0,127}$/;

export function isLogicalName(name: unknown): name is string {
  return typeof name === 'string' && LOGICAL_NAME_PATTERN.test(name);
}

/** Throws ILLEGAL_IDENTIFIER naming the field and value when `name` is not a legal logical name. */
export function assertLogicalName(name: unknown, field: string): asserts name is string {
  if (!isLogicalName(name)) {
    throw new AppError(
      'ILLEGAL_IDENTIFIER',
      `${field} ${JSON.stringify(name)} is not a legal logical name: use lower-case letters, digits and underscores, starting with a letter or underscore (at most 128 characters).`,
      { details: [{ field, message: 'must match ^[a-z_][a-z0-9_]{0,127}$', value: name }] },
    );
  }
}
