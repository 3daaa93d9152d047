/** Sorts node-postgres errors into the sink's failure classes by SQLSTATE and socket error code. */
import { type ClassifiedFailure, TargetConnectError } from '../dialect.js';

/** Socket codes that mean the server was never reached (connection refused, no such host, no route). */
const UNREACHABLE_SOCKET_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
/** Socket codes of a connection that broke while in use: the next attempt may well pass. */
const BROKEN_SOCKET_CODES = new Set(['ECONNRESET', 'ETIMEDOUT', 'EPIPE']);
/** Bad password or role, unknown database: nothing to retry until the profile or the server is fixed. */
const UNREACHABLE_STATES = new Set(['28P01', '28000', '3D000']);
/**
 * Deadlock, serialization failure, lock not available, statement timeout, admin / crash shutdown, cannot
 * connect now (class 08 and 53 are added below).
 */
const TRANSIENT_STATES = new Set(['40P01', '40001', '55P03', '57014', '57P01', '57P02', '57P03']);
/**
 * Duplicate table / column / object, and the pg_type unique index hit by racing CREATE TABLE IF NOT EXISTS
 * (outside DDL the applier treats this class as permanent).
 */
const RACE_STATES = new Set(['42P07', '42701', '42710', '23505']);
/** Undefined table / column: someone dropped what we cached. */
const STALE_STATES = new Set(['42P01', '42703']);

interface PgError {
  code?: string;
  message?: string;
  column?: string;
  detail?: string;
  errors?: unknown[];
}

export function classifyPostgresError(error: unknown): ClassifiedFailure {
  if (error instanceof TargetConnectError) {
    const inner = classifyPostgresError(error.original);
    // Refused, timed out or reset while connecting: the server is out of reach whatever the code says.
    return { class: 'unreachable', reason: inner.reason };
  }
  const e = (error ?? {}) as PgError;
  // Node's happy-eyeballs connect reports an AggregateError holding one error per address tried.
  const first = (e.errors?.[0] ?? {}) as PgError;
  const message = e.message || first.message || String(error);
  const code = e.code ?? first.code ?? '';
  const reason = e.detail ? `${message} (${e.detail})` : message;
  if (UNREACHABLE_SOCKET_CODES.has(code) || UNREACHABLE_STATES.has(code)) return { class: 'unreachable', reason };
  if (BROKEN_SOCKET_CODES.has(code) || /connection terminated|Connection refused/i.test(message)) {
    return { class: 'transient', reason };
  }
  if (TRANSIENT_STATES.has(code) || code.startsWith('08') || code.startsWith('53')) {
    return { class: 'transient', reason };
  }
  if (RACE_STATES.has(code)) return { class: 'schemaRace', reason };
  if (STALE_STATES.has(code)) return { class: 'schemaStale', reason };
  // 22001 value too long, 22P02 invalid text, 22003 out of range, 23502 not null, 22007 bad datetime, …
  return { class: 'permanent', reason, column: e.column };
}
