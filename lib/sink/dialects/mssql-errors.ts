/**
 * Sorts `mssql` (tedious) errors into the sink's failure classes by SQL Server error number and driver code.
 * Every list is an allow-list: a number in none of them is `unavailable` (the changes wait, status names the
 * number), never `permanent`, so an error nobody foresaw cannot send a whole batch to the failure log.
 */
import { type ClassifiedFailure, type FailureClass, TargetConnectError } from '../dialect.js';
import { SCHEMA_LOCK_TIMEOUT_ERROR } from './mssql-sql.js';

/**
 * The row's own fault: truncation (8152, 2628), conversion and overflow (245, 8114, 8115, 220, 232, 241, 242,
 * 244, 248, 295, 517, 8169), NULL (515), constraints (547, 2601, 2627), row too big (511), a duplicate source
 * key in one MERGE (8672); and an entity whose columns cannot fit a table (1701, 1702: only its changes fail).
 */
const PERMANENT_NUMBERS = new Set([
  8152, 2628, 245, 8114, 8115, 220, 232, 241, 242, 244, 248, 295, 517, 8169, 515, 547, 2601, 2627, 511, 8672, 1701,
  1702,
]);
/** The database cannot take writes: size quota, elastic-pool storage, log full, filegroup full, read-only. */
const UNAVAILABLE_ACTIONS = new Map<number, string>([
  [
    40544,
    'The database has reached its size quota: raise its maximum size or service tier, or free space; the changes apply once it has room.',
  ],
  [1132, 'The elastic pool is out of storage: raise the pool’s storage or move the database; the changes wait.'],
  [
    9002,
    'The transaction log is full: it clears when log backups and long transactions finish; if it persists, raise the tier. The changes wait.',
  ],
  [1101, 'A filegroup is out of space: grow it or free space; the changes wait.'],
  [1105, 'A filegroup is out of space: grow it or free space; the changes wait.'],
  [9001, 'The transaction log is not available: check the database’s health; the changes wait.'],
  [
    3906,
    'The database is read-only (a geo-secondary, a failover in progress, or READ_ONLY set): point the connection at the writable primary or set it READ_WRITE; the changes wait.',
  ],
]);
/** Login failed, cannot open the database in the connection string, server not found, firewall. */
const UNREACHABLE_NUMBERS = new Set([18456, 18470, 4060, 40532, 40615]);
/** No permission for what the sink does. */
const PERMISSION_NUMBERS = new Set([229, 230, 262, 297, 300, 916, 1088, 2760, 15247]);
/**
 * SQL the database cannot compile. With the sink's own statements that means, above all, a compatibility level
 * below 130 (no OPENJSON): syntax (102, 105, 156, 170, 319), unknown function or variable (195, 137), types (4145).
 */
const COMPILE_NUMBERS = new Set([102, 105, 156, 170, 319, 195, 137, 4104, 4145]);
/**
 * Deadlock (1205), lock timeout (1222), throttling and resource governance (40501, 10928, 10929, 10936, 40143,
 * 49918–49920, 40549), out of memory (701, 8645, 8651), suspect / unavailable / failover (926, 40613, 40197,
 * 40540, 4221, 42108, 42109), broken transport (233, 64, 10053, 10054, 10060), and our own DDL lock timeout.
 */
const TRANSIENT_NUMBERS = new Set([
  1205,
  1222,
  40501,
  10928,
  10929,
  10936,
  40143,
  49918,
  49919,
  49920,
  40549,
  701,
  8645,
  8651,
  926,
  40613,
  40197,
  40540,
  4221,
  42108,
  42109,
  233,
  64,
  10053,
  10054,
  10060,
  SCHEMA_LOCK_TIMEOUT_ERROR,
]);
/** Ran out of time (-2), or of locks or log space for one statement (40550, 40552, 1204): halve and retry. */
const TIMEOUT_NUMBERS = new Set([-2, 40550, 40552, 1204]);
/** Object / column already exists: another applier's DDL won the race. */
const RACE_NUMBERS = new Set([2714, 2705, 1913, 2759]);
/** Invalid object / column name: what we cached is gone. */
const STALE_NUMBERS = new Set([208, 207]);
/** Follow-up messages that say nothing of their own ("the statement has been terminated", …). */
const ECHO_NUMBERS = new Set([3621, 3998, 266]);

/** Driver codes of a connection lost, reset or closed while in use (tedious, then mssql). */
const TRANSIENT_CODES = new Set([
  'ECLOSE',
  'ESOCKET',
  'ECONNCLOSED',
  'ECONNRESET',
  'ENOTOPEN',
  'ENOCONN',
  'EINVALIDSTATE',
  'ECANCEL',
  'ETDS',
]);
/** Codes of a connection that could not be opened at all. */
const UNREACHABLE_CODES = new Set(['ELOGIN', 'EINSTLOOKUP', 'EFEDAUTH', 'EENCRYPT']);

/** Which class wins when one error carries several numbers (tedious keeps the earlier ones). */
const PRIORITY: FailureClass[] = [
  'unreachable',
  'unavailable',
  'misconfigured',
  'timeout',
  'transient',
  'schemaRace',
  'schemaStale',
  'permanent',
];

interface MssqlError {
  name?: string;
  code?: string;
  number?: number | string;
  message?: string;
  originalError?: { number?: number; code?: string; info?: { number?: number; message?: string } };
  precedingErrors?: MssqlError[];
}

/** `schema` names the profile's schema in the advice on permissions. */
export function classifyMssqlError(error: unknown, schema = 'dbo'): ClassifiedFailure {
  if (error instanceof TargetConnectError) {
    return { class: 'unreachable', reason: classifyMssqlError(error.original, schema).reason };
  }
  const e = (error ?? {}) as MssqlError;
  const reason = e.message || e.originalError?.info?.message || String(error);
  // mssql's RequestError carries SQL Server's number; without tedious `info` it copies the driver code there.
  const numbers = [e, ...(e.precedingErrors ?? [])]
    .map((x) => x.number ?? x.originalError?.info?.number ?? x.originalError?.number)
    .filter((n): n is number => typeof n === 'number' && !ECHO_NUMBERS.has(n));
  const code = e.code ?? e.originalError?.code;
  const classes = numbers.map((n) => byNumber(n, schema));
  const unknown = classes.includes(undefined);
  for (const wanted of PRIORITY) {
    const found = classes.find((c) => c?.class === wanted);
    // A row is blamed only when every number says so.
    if (found && !(wanted === 'permanent' && unknown)) return { ...found, reason };
  }
  // A ConnectionError (socket, login, connect timeout) means no connection could be opened.
  if (e.name === 'ConnectionError' || (code && UNREACHABLE_CODES.has(code))) {
    return { class: 'unreachable', reason, action: UNREACHABLE_ACTION };
  }
  if (!unknown && code === 'ETIMEOUT') return { class: 'timeout', reason };
  if (!unknown && code && TRANSIENT_CODES.has(code)) return { class: 'transient', reason };
  const what = numbers.length
    ? `SQL Server error ${numbers.join(', ')}`
    : `error ${code ?? e.name ?? 'without a code'}`;
  return {
    class: 'unavailable',
    reason,
    action: `The sink does not know ${what}, so it keeps the changes waiting rather than fail rows on a guess; fix the cause named, and they apply.`,
  };
}

const UNREACHABLE_ACTION =
  'Check the connection string’s server, database and sign-in, and the server’s firewall; the changes wait.';

function byNumber(n: number, schema: string): Omit<ClassifiedFailure, 'reason'> | undefined {
  if (PERMANENT_NUMBERS.has(n)) return { class: 'permanent' };
  const unavailable = UNAVAILABLE_ACTIONS.get(n);
  if (unavailable) return { class: 'unavailable', action: unavailable };
  if (UNREACHABLE_NUMBERS.has(n)) return { class: 'unreachable', action: UNREACHABLE_ACTION };
  if (PERMISSION_NUMBERS.has(n)) {
    return {
      class: 'misconfigured',
      action: `Grant the sign-in what the sink needs in schema [${schema}]: GRANT CREATE TABLE TO [<user>]; GRANT ALTER, SELECT, INSERT, UPDATE, DELETE ON SCHEMA::[${schema}] TO [<user>]; the changes wait and apply once it may.`,
    };
  }
  if (COMPILE_NUMBERS.has(n)) {
    return {
      class: 'misconfigured',
      action:
        'The database cannot compile the sink’s SQL; most often its compatibility level is below 130 (OPENJSON needs 130): ALTER DATABASE CURRENT SET COMPATIBILITY_LEVEL = 130; the changes wait.',
    };
  }
  if (TIMEOUT_NUMBERS.has(n)) return { class: 'timeout' };
  if (TRANSIENT_NUMBERS.has(n)) return { class: 'transient' };
  if (RACE_NUMBERS.has(n)) return { class: 'schemaRace' };
  if (STALE_NUMBERS.has(n)) return { class: 'schemaStale' };
  return undefined;
}
