/**
 * One Web API request with the service's rules: a bearer token for `<org>/.default`, a concurrency cap
 * shared by every client of the organization in the process (organization-limits.ts), 429 answered by waiting the `Retry-After` it names (all requests of the client wait),
 * 5xx and network failures retried with exponential backoff and jitter, and every other failure turned into
 * an {@link AppError} that carries Dataverse's own message.
 */
import type { TokenCredential } from '@azure/identity';
import { AppError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { type OrganizationLimits, organizationLimits } from './organization-limits.js';

export interface RetryPolicy {
  /** Attempts per request, the first one included. */
  maxAttempts: number;
  /** The first backoff after a 5xx; doubles per attempt, with jitter. */
  baseDelayMs: number;
  /** Upper bound for one backoff and for a Retry-After wait. */
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 6, baseDelayMs: 500, maxDelayMs: 60_000 };

/** Dataverse's code for an expired change-tracking token (ExpiredVersionStamp). */
export const EXPIRED_VERSION_STAMP = '0x80044352';

export interface WebApiResponse {
  status: number;
  headers: Headers;
  /** The body as text; parse it with `parseJsonLossless` to keep every digit. */
  text: string;
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** Preferences for the `Prefer` header (joined with commas). */
  prefer?: string[];
  body?: string;
  /** Answer undefined instead of throwing on 404. */
  allowNotFound?: boolean;
  /** Further request headers (e.g. `MSCRM.MergeLabels` on a metadata update). */
  headers?: Record<string, string>;
}

export interface WebApiTransportOptions {
  /** `https://org.crm.dynamics.com` */
  url: string;
  credential: TokenCredential | undefined;
  /** Requests in flight to this organization from the whole process (all clients of the URL share it). */
  maxConcurrency?: number;
  retry: RetryPolicy;
  logger: Logger;
  timeoutMs: number;
  /** The fetch to send with (tests count or disturb requests through it); the global one by default. */
  fetch?: typeof fetch;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Retry-After as seconds (possibly fractional) or an HTTP date → milliseconds. */
export function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Dataverse's `{"error":{"code","message"}}`, if the body is one. */
export function dataverseError(text: string): { code?: string; message?: string } {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    return {
      code: typeof body.error?.code === 'string' ? body.error.code : undefined,
      message: typeof body.error?.message === 'string' ? body.error.message : undefined,
    };
  } catch {
    return { message: text.slice(0, 500) || undefined };
  }
}

export class WebApiTransport {
  readonly apiUrl: string;
  private readonly organization: OrganizationLimits;
  private readonly scope: string;
  private token: { value: string; expiresOn: number } | undefined;
  private tokenRequest: Promise<string> | undefined;
  /** While set and in the future, no request is sent (a 429 told us to wait). */
  private pausedUntil = 0;

  constructor(private readonly options: WebApiTransportOptions) {
    const origin = options.url.replace(/\/+$/, '');
    this.apiUrl = `${origin}/api/data/v9.2/`;
    this.scope = `${origin}/.default`;
    this.organization = organizationLimits(origin, options.maxConcurrency);
  }

  private async bearer(): Promise<string | undefined> {
    const credential = this.options.credential;
    if (!credential) return undefined;
    if (this.token && this.token.expiresOn - Date.now() > 120_000) return this.token.value;
    this.tokenRequest ??= (async () => {
      try {
        const token = await credential.getToken(this.scope);
        if (!token) throw new AppError('DATAVERSE_REQUEST_FAILED', `No token for scope ${this.scope}.`);
        this.token = { value: token.token, expiresOn: token.expiresOnTimestamp };
        return token.token;
      } catch (err) {
        if (err instanceof AppError) throw err;
        throw new AppError(
          'DATAVERSE_REQUEST_FAILED',
          `Could not get a token for ${this.scope}: ${err instanceof Error ? err.message : String(err)}. Check the Function App's identity has access to the organization.`,
          { cause: err },
        );
      } finally {
        this.tokenRequest = undefined;
      }
    })();
    return this.tokenRequest;
  }

  private backoff(attempt: number): number {
    const exp = Math.min(this.options.retry.maxDelayMs, this.options.retry.baseDelayMs * 2 ** (attempt - 1));
    return Math.round(exp / 2 + Math.random() * (exp / 2));
  }

  /** A path relative to `/api/data/v9.2/` or an absolute link from Dataverse (nextLink, deltaLink), untouched. */
  resolve(pathOrUrl: string): string {
    return /^https?:\/\//i.test(pathOrUrl) ? pathOrUrl : this.apiUrl + pathOrUrl.replace(/^\/+/, '');
  }

  async request(pathOrUrl: string, options: RequestOptions = {}): Promise<WebApiResponse | undefined> {
    const url = this.resolve(pathOrUrl);
    const method = options.method ?? 'GET';
    const { maxAttempts } = this.options.retry;
    const log = this.options.logger;
    let refreshedToken = false;
    for (let attempt = 1; ; attempt++) {
      let response: WebApiResponse;
      try {
        response = await this.organization.requests.run(async () => {
          // Waited inside the slot: a 429 that arrives while this request queued still holds it back.
          for (let wait = this.pausedUntil - Date.now(); wait > 0; wait = this.pausedUntil - Date.now()) {
            await sleep(wait);
          }
          return this.send(url, method, options);
        });
      } catch (err) {
        if (err instanceof AppError) throw err;
        const reason =
          err instanceof Error ? `${err.message}${err.cause ? ` (${String(err.cause)})` : ''}` : String(err);
        if (attempt >= maxAttempts) {
          throw new AppError(
            'DATAVERSE_UNAVAILABLE',
            `Dataverse could not be reached for ${method} ${url} after ${attempt} attempts: ${reason}`,
            { cause: err },
          );
        }
        const delay = this.backoff(attempt);
        log.warn('dataverse request failed, retrying', { method, url, attempt, delayMs: delay, reason });
        await sleep(delay);
        continue;
      }

      const { status } = response;
      if (status >= 200 && status < 300) return response;
      if (status === 404 && options.allowNotFound) return undefined;
      const error = dataverseError(response.text);
      const described = `${error.message ?? `HTTP ${status}`}${error.code ? ` (code ${error.code})` : ''}`;

      if (status === 429) {
        const delay = Math.min(
          retryAfterMs(response.headers.get('retry-after')) ?? this.backoff(attempt),
          this.options.retry.maxDelayMs,
        );
        if (attempt >= maxAttempts) {
          throw new AppError(
            'DATAVERSE_THROTTLED',
            `Dataverse throttled ${method} ${url} ${attempt} times: ${described}`,
            {
              details: [{ field: 'Retry-After', message: 'seconds Dataverse asked to wait', value: delay / 1000 }],
            },
          );
        }
        this.pausedUntil = Math.max(this.pausedUntil, Date.now() + delay);
        this.organization.lanes.throttled();
        log.warn('dataverse throttled the client, waiting Retry-After', { method, url, attempt, delayMs: delay });
        continue;
      }
      if (status === 401 && this.options.credential && !refreshedToken && attempt < maxAttempts) {
        refreshedToken = true;
        this.token = undefined;
        continue;
      }
      if (status >= 500 || status === 408) {
        if (attempt >= maxAttempts) {
          throw new AppError(
            'DATAVERSE_UNAVAILABLE',
            `Dataverse answered ${status} to ${method} ${url} ${attempt} times: ${described}`,
          );
        }
        // A busy server may name its own wait (503 + Retry-After); never retry sooner than that.
        const delay = Math.min(
          Math.max(this.backoff(attempt), retryAfterMs(response.headers.get('retry-after')) ?? 0),
          this.options.retry.maxDelayMs,
        );
        log.warn('dataverse answered a server error, retrying', { method, url, status, attempt, delayMs: delay });
        await sleep(delay);
        continue;
      }
      if (error.code === EXPIRED_VERSION_STAMP || /version stamp .* has expired/i.test(error.message ?? '')) {
        throw new AppError(
          'DELTA_TOKEN_EXPIRED',
          `The change-tracking token has expired; the table needs a full copy. Dataverse said: ${described}`,
          {
            details: [{ field: 'deltaLink', message: error.message ?? 'expired', value: url }],
          },
        );
      }
      throw new AppError('DATAVERSE_REQUEST_FAILED', `Dataverse answered ${status} to ${method} ${url}: ${described}`, {
        details: [{ field: 'dataverse', message: error.message ?? `HTTP ${status}`, value: error.code }],
      });
    }
  }

  private async send(url: string, method: string, options: RequestOptions): Promise<WebApiResponse> {
    const token = await this.bearer();
    const headers: Record<string, string> = {
      Accept: 'application/json',
      'OData-MaxVersion': '4.0',
      'OData-Version': '4.0',
    };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (options.prefer?.length) headers.Prefer = options.prefer.join(',');
    if (options.body !== undefined) headers['Content-Type'] = 'application/json; charset=utf-8';
    Object.assign(headers, options.headers);
    const res = await (this.options.fetch ?? fetch)(url, {
      method,
      headers,
      body: options.body,
      signal: AbortSignal.timeout(this.options.timeoutMs),
    });
    return { status: res.status, headers: res.headers, text: await res.text() };
  }
}
