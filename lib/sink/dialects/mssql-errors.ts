/** Sorts `mssql` (tedious) errors into the sink's failure classes by error code and SQL error number. */
import type { ClassifiedFailure } from '../dialect.js';

/** Driver codes for a connection that failed or broke. */
const UNREACHABLE_CODES = new Set(['ESOCKET', 'ECONNCLOSED', 'ELOGIN', 'EINSTLOOKUP', 'ENOTOPEN', 'ECONNRESET']);
/** Login failed, cannot open database, database unavailable / paused, service busy at login. */
const UNREACHABLE_NUMBERS = new Set([18456, 4060, 40613, 40532, 42108, 42109]);
/** Deadlock, lock timeout, throttling and resource governance, failover in progress. */
const TRANSIENT_NUMBERS = new Set([1205, 1222, 40501, 40197, 40540, 49918, 49919, 49920, 10928, 10929, 10053, 10054]);
/** Object / column already exists: another applier's DDL won the race. */
const RACE_NUMBERS = new Set([2714, 2705, 1913]);
/** Invalid object / column name: what we cached is gone. */
const STALE_NUMBERS = new Set([208, 207]);

interface MssqlError {
  name?: string;
  code?: string;
  number?: number;
  message?: string;
  originalError?: { number?: number; info?: { number?: number; message?: string } };
}

export function classifyMssqlError(error: unknown): ClassifiedFailure {
  const e = (error ?? {}) as MssqlError;
  const number = e.number ?? e.originalError?.info?.number ?? e.originalError?.number;
  const reason = e.message || e.originalError?.info?.message || String(error);
  if (number !== undefined && UNREACHABLE_NUMBERS.has(number)) return { class: 'unreachable', reason };
  if (number !== undefined && TRANSIENT_NUMBERS.has(number)) return { class: 'transient', reason };
  // A ConnectionError (login, socket, connect timeout) means the server is out of reach; a request timeout passes.
  if (e.name === 'ConnectionError') return { class: 'unreachable', reason };
  if (e.code === 'ETIMEOUT') return { class: 'transient', reason };
  if (e.code && UNREACHABLE_CODES.has(e.code)) return { class: 'unreachable', reason };
  if (number !== undefined && RACE_NUMBERS.has(number)) return { class: 'schemaRace', reason };
  if (number !== undefined && STALE_NUMBERS.has(number)) return { class: 'schemaStale', reason };
  // 8152 / 2628 truncation, 245 / 8114 / 241 conversion, 8115 overflow, 515 NULL, 2627 / 2601 duplicates, …
  return { class: 'permanent', reason };
}
