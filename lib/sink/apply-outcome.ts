import type { AppError } from '../errors.js';

/**
 * What became of one change handed to a sink. `waiting`: nothing is wrong with the change, but its entity
 * cannot be written now (its table would exceed the target's limits, TABLE_LIMIT_EXCEEDED); it waits.
 */
export type ApplyOutcome =
  | { status: 'applied' }
  | { status: 'stale' }
  | { status: 'failed'; error: AppError }
  | { status: 'waiting'; error: AppError };
