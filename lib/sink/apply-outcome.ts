import type { AppError } from '../errors.js';

/** What became of one change handed to a sink. */
export type ApplyOutcome = { status: 'applied' } | { status: 'stale' } | { status: 'failed'; error: AppError };
