/** Sorts node-postgres errors into the sink's failure classes by SQLSTATE and socket error code. */
import type { ClassifiedFailure } from '../dialect.js';

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EPIPE',
]);

/** admin shutdown, crash shutdown, cannot connect now; bad password / role; unknown database. */
const UNREACHABLE_STATES = new Set(['57P01', '57P02', '57P03', '28P01', '28000', '3D000']);
/** deadlock, serialization, lock not available, query canceled (statement timeout). */
const TRANSIENT_STATES = new Set(['40P01', '40001', '55P03', '57014']);
/**
 * duplicate table / column / object, and the pg_type unique index hit by racing CREATE TABLE IF NOT EXISTS
 * (outside DDL the applier treats this class as permanent).
 */
const RACE_STATES = new Set(['42P07', '42701', '42710', '23505']);
/** undefined table / column: someone dropped what we cached. */
const STALE_STATES = new Set(['42P01', '42703']);

interface PgError {
  code?: string;
  message?: string;
  column?: string;
  detail?: string;
  errors?: unknown[];
}

export function classifyPostgresError(error: unknown): ClassifiedFailure {
  const e = (error ?? {}) as PgError;
  const message = e.message || (e.errors?.length ? String((e.errors[0] as PgError).message) : String(error));
  const code = e.code ?? (e.errors?.[0] as PgError | undefined)?.code ?? '';
  const reason = e.detail ? `${message} (${e.detail})` : message;
  if (NETWORK_CODES.has(code) || /connection terminated|timeout expired|Connection refused/i.test(message)) {
    return { class: 'unreachable', reason };
  }
  if (code.startsWith('08') || UNREACHABLE_STATES.has(code)) return { class: 'unreachable', reason };
  if (TRANSIENT_STATES.has(code) || code.startsWith('53')) return { class: 'transient', reason };
  if (RACE_STATES.has(code)) return { class: 'schemaRace', reason };
  if (STALE_STATES.has(code)) return { class: 'schemaStale', reason };
  return { class: 'permanent', reason, column: e.column };
}
