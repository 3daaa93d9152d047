import { AppError } from '../errors.js';

/**
 * The part of an HTTP request the API reads. Host-agnostic: a Functions `HttpRequest` fits after
 * `await request.text()` (its `query` is a URLSearchParams and its `headers` a Headers, both readable
 * through `get`), and so does a plain object in tests.
 */
export interface ApiRequest {
  params?: Readonly<Record<string, string | undefined>>;
  query?: Lookup;
  headers?: Lookup;
  body?: string;
}

export type Lookup = Readonly<Record<string, string | undefined>> | { get(name: string): string | null };

/** A header or query value; header names are matched case-insensitively. */
export function lookup(from: Lookup | undefined, name: string): string | undefined {
  if (!from) return undefined;
  if (typeof from.get === 'function') return (from as { get(name: string): string | null }).get(name) ?? undefined;
  const record = from as Readonly<Record<string, string | undefined>>;
  if (record[name] !== undefined) return record[name];
  const lower = name.toLowerCase();
  const key = Object.keys(record).find((k) => k.toLowerCase() === lower);
  return key === undefined ? undefined : record[key];
}

/** Parses the JSON body; MALFORMED_JSON (400) names what is wrong with it. */
export function jsonBody(request: ApiRequest): unknown {
  const text = request.body ?? '';
  if (text.trim() === '') {
    throw new AppError('MALFORMED_JSON', 'The request body is empty; send the profile as a JSON object.');
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new AppError('MALFORMED_JSON', `The request body is not valid JSON: ${(err as Error).message}.`, {
      cause: err,
    });
  }
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The `{id}` route parameter, lower-cased. A value that is not a GUID cannot name a profile: 404. */
export function profileIdOf(request: ApiRequest): string {
  const id = request.params?.id ?? '';
  if (!GUID.test(id)) throw profileNotFound(id);
  return id.toLowerCase();
}

export function profileNotFound(id: string): AppError {
  return new AppError(
    'PROFILE_NOT_FOUND',
    `No export profile has the id '${id}'. List profiles with GET /api/profiles.`,
    {
      details: [{ field: 'id', message: 'no such profile', value: id }],
    },
  );
}

/** A boolean query flag: absent → false; `true`/`false`/`1`/`0` (any case); anything else is a 400. */
export function flag(request: ApiRequest, name: string): boolean {
  const raw = lookup(request.query, name);
  if (raw === undefined || raw === '') return false;
  const value = raw.toLowerCase();
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new AppError('VALIDATION_FAILED', `Query parameter '${name}' is ${JSON.stringify(raw)}; use true or false.`, {
    details: [{ field: name, message: 'expected true or false', value: raw }],
  });
}

/** An ISO-8601 date-time query parameter; a value that does not parse is a 400 naming the parameter. */
export function dateParam(request: ApiRequest, name: string): Date | undefined {
  const raw = lookup(request.query, name);
  if (raw === undefined || raw === '') return undefined;
  const ms = /^\d{4}-\d{2}-\d{2}/.test(raw) ? Date.parse(raw) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw new AppError(
      'VALIDATION_FAILED',
      `Query parameter '${name}' is ${JSON.stringify(raw)}, which is not an ISO-8601 date-time; use e.g. 2026-11-05T09:00:00Z.`,
      { details: [{ field: name, message: 'expected an ISO-8601 date-time', value: raw }] },
    );
  }
  return new Date(ms);
}

/** A positive integer query parameter within [1, max]. */
export function integerParam(request: ApiRequest, name: string, max: number): number | undefined {
  const raw = lookup(request.query, name);
  if (raw === undefined || raw === '') return undefined;
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(value >= 1 && value <= max)) {
    throw new AppError(
      'VALIDATION_FAILED',
      `Query parameter '${name}' is ${JSON.stringify(raw)}; use a whole number from 1 to ${max}.`,
      { details: [{ field: name, message: `expected an integer from 1 to ${max}`, value: raw }] },
    );
  }
  return value;
}
