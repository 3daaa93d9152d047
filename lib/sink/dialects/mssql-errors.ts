/** Sorts `mssql` (tedious) errors into the sink's failure classes by error code and SQL error number. */
import { type ClassifiedFailure, TargetConnectError } from '../dialect.js';
import { SCHEMA_LOCK_TIMEOUT_ERROR } from './mssql-sql.js';

/** Login failed, cannot open the database named in the connection string, server not found. */
const UNREACHABLE_NUMBERS = new Set([18456, 4060, 40532]);
/**
 * Deadlock (1205), lock timeout (1222), command timeout (-2), throttling and resource governance (40501,
 * 10928, 10929, 49918–49920), database unavailable / failover (40613, 40197, 40540, 4221), broken
 * transport (233, 64, 10053, 10054, 10060), and our own DDL lock timeout.
 */
const TRANSIENT_NUMBERS = new Set([
  1205,
  1222,
  -2,
  40501,
  40613,
  40197,
  40540,
  4221,
  49918,
  49919,
  49920,
  10928,
  10929,
  233,
  64,
  10053,
  10054,
  10060,
  SCHEMA_LOCK_TIMEOUT_ERROR,
]);
/** Driver codes of a connection lost or a request timed out while in use. */
const TRANSIENT_CODES = new Set(['ETIMEOUT', 'ECONNCLOSED', 'ESOCKET', 'ECONNRESET', 'ENOTOPEN']);
/** Object / column already exists: another applier's DDL won the race. */
const RACE_NUMBERS = new Set([2714, 2705, 1913, 2759]);
/** Invalid object / column name: what we cached is gone. */
const STALE_NUMBERS = new Set([208, 207]);

interface MssqlError {
  name?: string;
  code?: string;
  number?: number;
  message?: string;
  originalError?: { number?: number; code?: string; info?: { number?: number; message?: string } };
}

export function classifyMssqlError(error: unknown): ClassifiedFailure {
  if (error instanceof TargetConnectError) {
    return { class: 'unreachable', reason: classifyMssqlError(error.original).reason };
  }
  const e = (error ?? {}) as MssqlError;
  const number = e.number ?? e.originalError?.info?.number ?? e.originalError?.number;
  const code = e.code ?? e.originalError?.code;
  const reason = e.message || e.originalError?.info?.message || String(error);
  if (number !== undefined && UNREACHABLE_NUMBERS.has(number)) return { class: 'unreachable', reason };
  if (number !== undefined && TRANSIENT_NUMBERS.has(number)) return { class: 'transient', reason };
  // A ConnectionError (socket, login, connect timeout) means no connection could be opened.
  if (e.name === 'ConnectionError' || code === 'ELOGIN' || code === 'EINSTLOOKUP') {
    return { class: 'unreachable', reason };
  }
  if (code && TRANSIENT_CODES.has(code)) return { class: 'transient', reason };
  if (number !== undefined && RACE_NUMBERS.has(number)) return { class: 'schemaRace', reason };
  if (number !== undefined && STALE_NUMBERS.has(number)) return { class: 'schemaStale', reason };
  // 8152 / 2628 truncation, 245 / 8114 / 241 conversion, 8115 overflow, 515 NULL, 2627 / 2601 duplicates, …
  return { class: 'permanent', reason };
}
