/**
 * Sorts node-postgres errors into the sink's failure classes by SQLSTATE and socket error code. As for Azure
 * SQL, every list is an allow-list: a state in none of them is `unavailable` (the changes wait, status names
 * it), never `permanent`.
 */
import { type ClassifiedFailure, TargetConnectError } from '../dialect.js';

/** Socket codes that mean the server was never reached (connection refused, no such host, no route). */
const UNREACHABLE_SOCKET_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
/** Socket codes of a connection that broke while in use: the next attempt may well pass. */
const BROKEN_SOCKET_CODES = new Set(['ECONNRESET', 'ETIMEDOUT', 'EPIPE']);
/** Bad password or role, unknown database: nothing to retry until the profile or the server is fixed. */
const UNREACHABLE_STATES = new Set(['28P01', '28000', '3D000']);
/** The database cannot take writes: disk full, read-only (default_transaction_read_only, a hot standby). */
const UNAVAILABLE_ACTIONS = new Map<string, string>([
  ['53100', 'The database server’s disk is full: free or add space; the changes apply once it has room.'],
  [
    '25006',
    'The database is read-only (a standby, or default_transaction_read_only = on): point the connection at the primary or turn it off; the changes wait.',
  ],
]);
/**
 * Deadlock, serialization failure, lock not available, admin / crash shutdown, cannot connect now, idle
 * session timeout, object in use, out of memory, too many connections (classes 08 and 53 are added below).
 */
const TRANSIENT_STATES = new Set(['40P01', '40001', '55P03', '57P01', '57P02', '57P03', '57P05', '55006', '40003']);
/** Statement timeout or cancel: write the rows again in halves. */
const TIMEOUT_STATES = new Set(['57014']);
/**
 * Duplicate table / column / object, and the pg_type unique index hit by racing CREATE TABLE IF NOT EXISTS
 * (outside DDL the applier treats this class as a row's fault).
 */
const RACE_STATES = new Set(['42P07', '42701', '42710', '23505']);
/** Undefined table / column: someone dropped what we cached. */
const STALE_STATES = new Set(['42P01', '42703']);
/** Feature not supported, invalid schema name (class 42, syntax and access rules, is added below). */
const MISCONFIGURED_STATES = new Set(['0A000', '3F000']);

interface PgError {
  code?: string;
  message?: string;
  column?: string;
  detail?: string;
  errors?: unknown[];
}

/** `schema` names the profile's schema in the advice on permissions. */
export function classifyPostgresError(error: unknown, schema = 'public'): ClassifiedFailure {
  if (error instanceof TargetConnectError) {
    const inner = classifyPostgresError(error.original, schema);
    // Refused, timed out or reset while connecting: the server is out of reach whatever the code says.
    return { class: 'unreachable', reason: inner.reason, action: UNREACHABLE_ACTION };
  }
  const e = (error ?? {}) as PgError;
  // Node's happy-eyeballs connect reports an AggregateError holding one error per address tried.
  const first = (e.errors?.[0] ?? {}) as PgError;
  const message = e.message || first.message || String(error);
  const code = e.code ?? first.code ?? '';
  const reason = e.detail ? `${message} (${e.detail})` : message;
  if (UNREACHABLE_SOCKET_CODES.has(code) || UNREACHABLE_STATES.has(code)) {
    return { class: 'unreachable', reason, action: UNREACHABLE_ACTION };
  }
  if (BROKEN_SOCKET_CODES.has(code) || /connection terminated|Connection refused/i.test(message)) {
    return { class: 'transient', reason };
  }
  const unavailable = UNAVAILABLE_ACTIONS.get(code);
  if (unavailable) return { class: 'unavailable', reason, action: unavailable };
  if (TIMEOUT_STATES.has(code)) return { class: 'timeout', reason };
  if (TRANSIENT_STATES.has(code) || code.startsWith('08') || code.startsWith('53')) {
    return { class: 'transient', reason };
  }
  if (RACE_STATES.has(code)) return { class: 'schemaRace', reason };
  if (STALE_STATES.has(code)) return { class: 'schemaStale', reason };
  if (code === '42501') {
    return {
      class: 'misconfigured',
      reason,
      action: `Grant the sign-in what the sink needs: GRANT USAGE, CREATE ON SCHEMA "${schema}" TO <role>, and write access to the export tables; the changes wait and apply once it may.`,
    };
  }
  if (code.startsWith('42') || MISCONFIGURED_STATES.has(code)) {
    return {
      class: 'misconfigured',
      reason,
      action:
        'The database cannot run the sink’s SQL (a syntax or type error in this server): check its version against the README and the reason; the changes wait.',
    };
  }
  // Data exceptions (22xxx: too long, invalid text, out of range, bad datetime), integrity (23xxx: NOT NULL,
  // check, foreign key), a row hit twice in one statement (21000), too many columns for a table (54011).
  if (code.startsWith('22') || code.startsWith('23') || code === '21000' || code === '54011') {
    return { class: 'permanent', reason, column: e.column };
  }
  return {
    class: 'unavailable',
    reason,
    action: `The sink does not know ${code ? `SQLSTATE ${code}` : 'this error'}, so it keeps the changes waiting rather than fail rows on a guess; fix the cause named, and they apply.`,
  };
}

const UNREACHABLE_ACTION =
  'Check the connection string’s host, port, database and credentials, and the server’s firewall; the changes wait.';
