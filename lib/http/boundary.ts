import { type AppError, toAppError } from '../errors.js';
import type { Logger } from '../log.js';

/** What an HTTP trigger returns; structurally the Functions `HttpResponseInit`. */
export interface HttpResult {
  status: number;
  headers?: Record<string, string>;
  jsonBody?: unknown;
  body?: string;
}

export function errorResult(error: AppError): HttpResult {
  return { status: error.status, jsonBody: error.toJSON(), headers: { 'content-type': 'application/json' } };
}

/**
 * The trigger boundary for HTTP: whatever is thrown becomes a coded error before it is logged or answered.
 * 4xx are the caller's problem (logged as warnings); 5xx are ours (errors).
 */
export async function httpBoundary(logger: Logger, run: () => Promise<HttpResult>): Promise<HttpResult> {
  try {
    return await run();
  } catch (thrown) {
    const error = toAppError(thrown);
    if (error.status >= 500) logger.error('request failed', { error, cause: describeCause(error.cause) });
    else logger.warn('request rejected', { error });
    return errorResult(error);
  }
}

function describeCause(cause: unknown): string | undefined {
  return cause instanceof Error ? `${cause.name}: ${cause.message}` : cause === undefined ? undefined : String(cause);
}
