import { redactSecrets } from './redact.js';

/**
 * The catalogue of stable error codes. Every trigger boundary turns whatever was thrown into an
 * {@link AppError} (see {@link toAppError}) before it logs or answers, so users and logs see one code set.
 */
export const ErrorCodes = {
  /** A required setting is missing or malformed; the message names it. */
  CONFIG_INVALID: { status: 500, transient: false },
  /** A request body or query failed validation; `details` lists each field and what was wrong. */
  VALIDATION_FAILED: { status: 400, transient: false },
  /** The body was not parseable JSON. */
  MALFORMED_JSON: { status: 400, transient: false },
  /** An entity, attribute or relationship name is not a legal identifier (`^[a-z_][a-z0-9_]{0,127}$`). */
  ILLEGAL_IDENTIFIER: { status: 400, transient: false },
  /** Nobody signed in and no function key, or a wrong one. */
  UNAUTHORIZED: { status: 401, transient: false },
  /** Signed in, but without the app role the request needs (`Export.Admin` to change, `Export.Reader` to read). */
  FORBIDDEN: { status: 403, transient: false },
  /** The profile id does not exist. */
  PROFILE_NOT_FOUND: { status: 404, transient: false },
  /** The route exists but not with this method. */
  METHOD_NOT_ALLOWED: { status: 405, transient: false },
  /** The request conflicts with the profile's state (e.g. replacing an active profile's target). */
  CONFLICT: { status: 409, transient: false },
  /** The target's connection secret could not be resolved. */
  SECRET_NOT_FOUND: { status: 422, transient: false },
  /** The target database did not answer (activation check, or an outage during apply). */
  TARGET_UNREACHABLE: { status: 422, transient: true },
  /**
   * The target is reached but cannot take writes now (database or log full, read-only, or an error the sink
   * does not know): changes wait as in an outage and apply once it clears.
   */
  TARGET_UNAVAILABLE: { status: 503, transient: true },
  /**
   * The target is set up wrongly for this profile (the sign-in lacks a permission, the database cannot compile
   * the sink's SQL, e.g. compatibility level below 130): changes wait until an administrator fixes it.
   */
  TARGET_MISCONFIGURED: { status: 422, transient: true },
  /** A write failed for a reason that may pass: deadlock, throttling, timeout, lost connection. */
  TARGET_TRANSIENT: { status: 503, transient: true },
  /**
   * An entity's table cannot hold the columns its attributes need (the target's per-table column or row-size
   * limit): none of its rows is at fault, so its changes wait (nothing is failure-logged) until an administrator
   * removes the entity from the profile or makes room in the table; the entity's status names the columns.
   */
  TABLE_LIMIT_EXCEEDED: { status: 422, transient: false },
  /** A write failed for a reason retrying cannot fix: value too long, type clash. */
  TARGET_PERMANENT: { status: 500, transient: false },
  /** Dataverse answered 429; retry after the time it named. */
  DATAVERSE_THROTTLED: { status: 503, transient: true },
  /** Dataverse answered 5xx or could not be reached. */
  DATAVERSE_UNAVAILABLE: { status: 503, transient: true },
  /** Dataverse rejected the request (4xx other than 429). */
  DATAVERSE_REQUEST_FAILED: { status: 502, transient: false },
  /** An entity or relationship of the profile is unknown to the organization, has change tracking off, or cannot be exported. */
  ENTITY_NOT_EXPORTABLE: { status: 422, transient: false },
  /** Dataverse refused to register the webhook or its steps (usually missing privileges); the profile stays inactive. */
  REGISTRATION_REFUSED: { status: 422, transient: false },
  /** The stored change-tracking token has expired; the entity needs a full copy. */
  DELTA_TOKEN_EXPIRED: { status: 409, transient: false },
  /** A claim-check blob referenced by a message is gone or cannot be decrypted. */
  CLAIM_CHECK_MISSING: { status: 500, transient: false },
  /** The message broker could not take the message. */
  QUEUE_UNAVAILABLE: { status: 503, transient: true },
  /** Anything not classified above: a bug. */
  INTERNAL: { status: 500, transient: false },
} as const satisfies Record<string, { status: number; transient: boolean }>;

export type ErrorCode = keyof typeof ErrorCodes;

export interface ErrorDetail {
  /** JSON pointer or setting name of the offending field. */
  field?: string;
  message: string;
  value?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly transient: boolean;
  readonly details: ErrorDetail[];

  constructor(
    code: ErrorCode,
    message: string,
    options: { details?: ErrorDetail[]; cause?: unknown; transient?: boolean } = {},
  ) {
    // Redacted at birth: a driver's message wrapped here may carry a connection string's password.
    super(redactSecrets(message), { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = ErrorCodes[code].status;
    this.transient = options.transient ?? ErrorCodes[code].transient;
    this.details = (options.details ?? []).map(redactDetail);
  }

  /**
   * The shape returned to API callers and written to logs, without a stack. `JSON.stringify` calls this with
   * the property key, so it takes no options; the cause is kept as its name and message (coded when coded).
   */
  toJSON(_key?: string): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      ...(this.details.length ? { details: this.details } : {}),
      ...(this.cause === undefined ? {} : { cause: causeOf(this.cause) }),
    };
  }
}

function causeOf(cause: unknown): unknown {
  if (cause instanceof AppError) return cause.toJSON();
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return { name: cause.name, message: redactSecrets(cause.message), ...(code === undefined ? {} : { code }) };
  }
  if (typeof cause === 'string') return redactSecrets(cause);
  return typeof cause === 'object' && cause !== null ? redactSecrets(String(cause)) : cause;
}

function redactDetail(detail: ErrorDetail): ErrorDetail {
  return {
    ...detail,
    message: redactSecrets(detail.message),
    ...(typeof detail.value === 'string' ? { value: redactSecrets(detail.value) } : {}),
  };
}

/** Turns any thrown value into an AppError, keeping the original as `cause`. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof SyntaxError) return new AppError('MALFORMED_JSON', err.message, { cause: err });
  const message = err instanceof Error ? err.message : String(err);
  return new AppError('INTERNAL', message, { cause: err });
}
