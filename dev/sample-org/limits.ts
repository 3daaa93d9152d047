/**
 * Dataverse's service protection limits, kept per user over a sliding window: requests admitted, combined
 * execution time, and requests in flight. Beyond a limit a request is refused (429 with Dataverse's error and
 * a `Retry-After`); every request, refused or not, counts toward the peak in flight that `stats()` reports.
 */

export interface ServiceProtectionLimits {
  /** Requests admitted per user within the window (Dataverse: 6,000). Unset: no limit. */
  requests?: number;
  /** Combined execution time per user within the window, in seconds (Dataverse: 1,200). Unset: no limit. */
  executionSeconds?: number;
  /** Requests in flight per user (Dataverse: 52). Unset: no limit. */
  concurrent?: number;
  /** The sliding window, in seconds (Dataverse: 300). */
  windowSeconds?: number;
  /** `Retry-After` of a request refused for concurrency, in seconds (default 1): short, as a slot frees soon. */
  concurrencyRetryAfterSeconds?: number;
}

/** The limits Dataverse documents per user per web server. */
export const DATAVERSE_LIMITS = {
  requests: 6000,
  executionSeconds: 1200,
  concurrent: 52,
  windowSeconds: 300,
  concurrencyRetryAfterSeconds: 1,
} as const satisfies Required<ServiceProtectionLimits>;

export type LimitName = 'requests' | 'executionTime' | 'concurrency';

/** Dataverse's error codes for the three limits (the Web API's `error.code`). */
export const LimitErrorCodes: Record<LimitName, string> = {
  requests: '0x80072322',
  executionTime: '0x80072321',
  concurrency: '0x80072326',
};

export interface Refusal {
  limit: LimitName;
  code: string;
  message: string;
  /** When the window has room again, in whole seconds (at least 1); for concurrency, as configured. */
  retryAfterSeconds: number;
}

/** An admitted request: call `finish` once its answer has gone (or its connection closed). */
export interface Admission {
  finish(): void;
}

export interface ProtectionStats {
  /** Requests being served now (admitted, not finished). */
  inFlight: number;
  /** The most requests open at once, each refused one counted at the moment it arrived. */
  peakInFlight: number;
  /** Requests refused per limit. */
  refused: Record<LimitName, number>;
  /** Combined execution time of every finished request since start, in milliseconds. */
  executionMs: number;
}

/** Times in a queue, oldest first, dropped from the front in O(1). */
class TimeQueue<T extends { at: number }> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  /** The i-th oldest item. */
  at(i: number): T {
    return this.items[this.head + i];
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** Drops items older than `since`, handing each to `onDrop`. */
  dropBefore(since: number, onDrop?: (item: T) => void): void {
    while (this.head < this.items.length && this.items[this.head].at <= since) {
      onDrop?.(this.items[this.head]);
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

/** One user's use of the window. */
class UserBudget {
  inFlight = 0;
  /** When each request in the window was admitted (kept only under a request limit). */
  readonly admitted = new TimeQueue<{ at: number }>();
  /** When each request in the window finished and how long it took (kept only under an execution limit). */
  readonly executions = new TimeQueue<{ at: number; ms: number }>();
  executionMsInWindow = 0;

  expire(since: number): void {
    this.admitted.dropBefore(since);
    this.executions.dropBefore(since, (e) => {
      this.executionMsInWindow -= e.ms;
    });
  }
}

export class ServiceProtection {
  private readonly users = new Map<string, UserBudget>();
  private readonly windowMs: number;
  private readonly counters: ProtectionStats = {
    inFlight: 0,
    peakInFlight: 0,
    refused: { requests: 0, executionTime: 0, concurrency: 0 },
    executionMs: 0,
  };

  constructor(
    readonly limits: ServiceProtectionLimits = {},
    /** Milliseconds on a monotonic clock (tests pass their own). */
    private readonly now: () => number = () => performance.now(),
  ) {
    checkLimits(limits);
    this.windowMs = (limits.windowSeconds ?? DATAVERSE_LIMITS.windowSeconds) * 1000;
  }

  stats(): ProtectionStats {
    return { ...this.counters, refused: { ...this.counters.refused } };
  }

  /** Admits a request of `user`, or says which limit refuses it and when to come back. */
  admit(user: string): Admission | Refusal {
    const now = this.now();
    let budget = this.users.get(user);
    if (!budget) {
      budget = new UserBudget();
      this.users.set(user, budget);
    }
    budget.expire(now - this.windowMs);
    this.counters.peakInFlight = Math.max(this.counters.peakInFlight, this.counters.inFlight + 1);
    const refusal = this.refusal(budget, now);
    if (refusal) {
      this.counters.refused[refusal.limit]++;
      return refusal;
    }
    budget.inFlight++;
    this.counters.inFlight++;
    if (this.limits.requests !== undefined) budget.admitted.push({ at: now });
    let finished = false;
    return {
      finish: () => {
        if (finished) return;
        finished = true;
        const end = this.now();
        const ms = end - now;
        budget.inFlight--;
        this.counters.inFlight--;
        this.counters.executionMs += ms;
        if (this.limits.executionSeconds !== undefined) {
          budget.executions.push({ at: end, ms });
          budget.executionMsInWindow += ms;
        }
      },
    };
  }

  private refusal(budget: UserBudget, now: number): Refusal | undefined {
    const { requests, executionSeconds, concurrent } = this.limits;
    const windowSeconds = this.windowMs / 1000;
    if (concurrent !== undefined && budget.inFlight >= concurrent) {
      return {
        limit: 'concurrency',
        code: LimitErrorCodes.concurrency,
        message: `Number of concurrent requests exceeded the limit of ${concurrent}.`,
        retryAfterSeconds: this.limits.concurrencyRetryAfterSeconds ?? DATAVERSE_LIMITS.concurrencyRetryAfterSeconds,
      };
    }
    if (requests !== undefined && budget.admitted.length >= requests) {
      // Room again once enough of the oldest requests have left the window to fall below the limit.
      const freeing = budget.admitted.at(budget.admitted.length - requests);
      return {
        limit: 'requests',
        code: LimitErrorCodes.requests,
        message: `Number of requests exceeded the limit of ${requests} over time window of ${windowSeconds} seconds.`,
        retryAfterSeconds: secondsUntil(freeing.at + this.windowMs, now),
      };
    }
    const limitMs = executionSeconds === undefined ? undefined : executionSeconds * 1000;
    if (limitMs !== undefined && budget.executionMsInWindow >= limitMs) {
      let remaining = budget.executionMsInWindow;
      let i = 0;
      while (remaining >= limitMs && i < budget.executions.length) remaining -= budget.executions.at(i++).ms;
      const freeing = budget.executions.at(i - 1);
      return {
        limit: 'executionTime',
        code: LimitErrorCodes.executionTime,
        message: `Combined execution time of incoming requests exceeded limit of ${limitMs.toLocaleString('en-US')} milliseconds over time window of ${windowSeconds} seconds. Decrease number of concurrent requests or reduce the duration of requests and try again later.`,
        retryAfterSeconds: secondsUntil(freeing.at + this.windowMs, now),
      };
    }
    return undefined;
  }
}

/** Whole seconds from `now` until `at` (at least 1), as Dataverse's Retry-After counts them. */
function secondsUntil(at: number, now: number): number {
  return Math.max(1, Math.ceil((at - now) / 1000));
}

function checkLimits(limits: ServiceProtectionLimits): void {
  for (const [name, value] of Object.entries(limits)) {
    if (value === undefined) continue;
    if (!(name in DATAVERSE_LIMITS)) {
      throw new Error(
        `limits.${name} is not a service protection limit (known: ${Object.keys(DATAVERSE_LIMITS).join(', ')})`,
      );
    }
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new Error(`limits.${name} must be a number above 0, got ${JSON.stringify(value)}`);
    }
  }
}
