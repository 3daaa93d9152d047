/**
 * How a failed write is reported: a record's own failure (it goes to the failure log) or a batch-wide
 * AppError the pipeline keeps the batch queued for.
 */
import { AppError } from '../errors.js';
import type { ApplyOutcome } from './apply-outcome.js';
import type { ClassifiedFailure } from './dialect.js';

export function permanentFailure(entity: string, id: string, reason: string, column?: string): ApplyOutcome {
  const where = column ? ` (column ${column})` : '';
  return {
    status: 'failed',
    error: new AppError('TARGET_PERMANENT', `${entity} ${id}${where}: ${reason}`, {
      details: [{ field: column ?? entity, message: reason, value: id }],
    }),
  };
}

export function batchError(failure: ClassifiedFailure, cause: unknown): AppError {
  // What to do travels as the one detail, so the pipeline can show it on the profile's status.
  const details = failure.action ? [{ field: 'target', message: failure.action }] : [];
  switch (failure.class) {
    case 'unreachable':
      return new AppError('TARGET_UNREACHABLE', `the target database cannot be reached: ${failure.reason}`, {
        cause,
        details,
      });
    case 'unavailable':
      return new AppError('TARGET_UNAVAILABLE', `the target database cannot take writes: ${failure.reason}`, {
        cause,
        details,
      });
    case 'misconfigured':
      return new AppError('TARGET_MISCONFIGURED', `the target is not set up for this profile: ${failure.reason}`, {
        cause,
        details,
      });
    case 'timeout':
    case 'transient':
    case 'schemaStale':
    case 'schemaRace':
      return new AppError('TARGET_TRANSIENT', `the target database refused the write for now: ${failure.reason}`, {
        cause,
      });
    case 'permanent':
      return new AppError('TARGET_PERMANENT', `the target database refused the statement: ${failure.reason}`, {
        cause,
      });
  }
}
