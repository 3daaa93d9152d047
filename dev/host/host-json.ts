/**
 * The host.json settings the development host honours, read with the Functions host's defaults, so
 * `npm start` batches, routes and throttles like the deployed app.
 */
import { readFileSync } from 'node:fs';
import { AppError } from '../../lib/errors.js';

export interface HostJsonSettings {
  /** `extensions.http.routePrefix` (default `api`). */
  routePrefix: string;
  /** `extensions.serviceBus.maxMessageBatchSize` (default 1000) for `cardinality: 'many'`. */
  maxMessageBatchSize: number;
  /** `extensions.serviceBus.minMessageBatchSize` (default 1): a batch waits for this many messages… */
  minMessageBatchSize: number;
  /** …or until `extensions.serviceBus.maxBatchWaitTime` (default 30 s) has passed, whichever comes first. */
  maxBatchWaitTimeMs: number;
  /** `extensions.serviceBus.maxConcurrentCalls` (default 16) for single-message triggers. */
  maxConcurrentCalls: number;
  /**
   * `extensions.serviceBus.maxAutoLockRenewalDuration` (default 5 min): how long the host renews a single
   * message's lock. Batches (`cardinality: 'many'`) get no renewal at all, as in the extension.
   */
  maxAutoLockRenewalDurationMs: number;
  /** `extensions.serviceBus.autoCompleteMessages` (default true); a trigger's own option wins. */
  autoCompleteMessages: boolean;
  /** `extensions.durableTask.maxConcurrentActivityFunctions` (the host's default is 10 per core; 10 here). */
  maxConcurrentActivityFunctions: number;
}

export const hostJsonDefaults: HostJsonSettings = {
  routePrefix: 'api',
  maxMessageBatchSize: 1000,
  minMessageBatchSize: 1,
  maxBatchWaitTimeMs: 30_000,
  maxConcurrentCalls: 16,
  maxAutoLockRenewalDurationMs: 300_000,
  autoCompleteMessages: true,
  maxConcurrentActivityFunctions: 10,
};

export function readHostJson(file: string): HostJsonSettings {
  let json: { extensions?: Record<string, Record<string, unknown> | undefined> };
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new AppError(
      'CONFIG_INVALID',
      `host.json at ${file} could not be read: ${err instanceof Error ? err.message : String(err)}. Fix or remove the file.`,
    );
  }
  const http = json.extensions?.http ?? {};
  const serviceBus = json.extensions?.serviceBus ?? {};
  const durable = json.extensions?.durableTask ?? {};
  const positive = (section: string, key: string, value: unknown, fallback: number): number => {
    if (value === undefined) return fallback;
    if (typeof value === 'number' && Number.isInteger(value) && value > 0) return value;
    throw new AppError(
      'CONFIG_INVALID',
      `host.json extensions.${section}.${key} is ${JSON.stringify(value)}; use a positive integer.`,
      {
        details: [{ field: `extensions.${section}.${key}`, message: 'must be a positive integer', value }],
      },
    );
  };
  const timeSpanMs = (section: string, key: string, value: unknown, fallback: number): number => {
    if (value === undefined) return fallback;
    // .NET TimeSpan as host.json writes it: [d.]hh:mm:ss[.fff]
    const m = typeof value === 'string' ? /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$/.exec(value) : null;
    if (!m) {
      throw new AppError(
        'CONFIG_INVALID',
        `host.json extensions.${section}.${key} is ${JSON.stringify(value)}; use hh:mm:ss[.fff].`,
        {
          details: [{ field: `extensions.${section}.${key}`, message: 'must be a TimeSpan hh:mm:ss[.fff]', value }],
        },
      );
    }
    const [, d, h, min, sec, frac] = m;
    const ms = Number(`0.${frac ?? '0'}`) * 1000;
    return ((Number(d ?? 0) * 24 + Number(h)) * 60 + Number(min)) * 60_000 + Number(sec) * 1000 + Math.round(ms);
  };
  return {
    routePrefix: typeof http.routePrefix === 'string' ? http.routePrefix : hostJsonDefaults.routePrefix,
    maxMessageBatchSize: positive(
      'serviceBus',
      'maxMessageBatchSize',
      serviceBus.maxMessageBatchSize,
      hostJsonDefaults.maxMessageBatchSize,
    ),
    minMessageBatchSize: positive(
      'serviceBus',
      'minMessageBatchSize',
      serviceBus.minMessageBatchSize,
      hostJsonDefaults.minMessageBatchSize,
    ),
    maxBatchWaitTimeMs: timeSpanMs(
      'serviceBus',
      'maxBatchWaitTime',
      serviceBus.maxBatchWaitTime,
      hostJsonDefaults.maxBatchWaitTimeMs,
    ),
    maxAutoLockRenewalDurationMs: timeSpanMs(
      'serviceBus',
      'maxAutoLockRenewalDuration',
      serviceBus.maxAutoLockRenewalDuration,
      hostJsonDefaults.maxAutoLockRenewalDurationMs,
    ),
    maxConcurrentCalls: positive(
      'serviceBus',
      'maxConcurrentCalls',
      serviceBus.maxConcurrentCalls,
      hostJsonDefaults.maxConcurrentCalls,
    ),
    autoCompleteMessages: serviceBus.autoCompleteMessages !== false,
    maxConcurrentActivityFunctions: positive(
      'durableTask',
      'maxConcurrentActivityFunctions',
      durable.maxConcurrentActivityFunctions,
      hostJsonDefaults.maxConcurrentActivityFunctions,
    ),
  };
}
