import pLimit from 'p-limit';
import type { ChangeEvent } from '../change/change-event.js';
import { readStoredChange } from '../change/change-event-schema.js';
import { AppError, toAppError } from '../errors.js';
import type { Logger } from '../log.js';
import { DEFAULT_RETRY_COUNT, DEFAULT_RETRY_INTERVAL_SECONDS } from '../profiles/schema.js';
import type { ChangeQueue } from '../queue/change-queue.js';
import { type ChangeMessage, readChangeMessage } from '../queue/envelope.js';
import { isFailureLogProfileId, UNATTRIBUTED_PROFILE_ID } from '../storage/failure-log.js';
import type {
  ApplyOutcome,
  ClaimCheckStore,
  FailureEntry,
  FailureLogWriter,
  MetricsDelta,
  MetricsRecorder,
  ProfileDirectory,
  RecordRereader,
  RoutedProfile,
  SinkFactory,
} from './ports.js';

export interface ApplyDeps {
  profiles: ProfileDirectory;
  sinks: SinkFactory;
  claimChecks: ClaimCheckStore;
  queue: ChangeQueue;
  failureLog: FailureLogWriter;
  metrics: MetricsRecorder;
  rereader?: RecordRereader;
  /** Seconds before changes for an unreachable target are tried again. */
  outageBackoffSeconds: number;
  logger: Logger;
  now?: () => Date;
}

export interface ApplySummary {
  applied: number;
  stale: number;
  failed: number;
  retried: number;
  deferred: number;
  dropped: number;
}

/** The valid profile ids an unreadable message names, or the unattributed folder when it names none. */
function ownersOf(body: Partial<ChangeMessage> | undefined): string[] {
  const named = (body as { profileIds?: unknown } | null | undefined)?.profileIds;
  const valid = Array.isArray(named) ? [...new Set(named.filter(isFailureLogProfileId))] : [];
  return valid.length ? valid : [UNATTRIBUTED_PROFILE_ID];
}

function parsedOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A change on its way to one profile, with the message it came in. */
interface WorkItem {
  message: ChangeMessage;
  change: ChangeEvent;
}

/**
 * Applies one batch of queue messages. Every message ends in exactly one of: applied or skipped as stale,
 * re-scheduled (transient failure within the profile's retry budget, or the target is unreachable —
 * then without spending the budget), or a failure-log line. Only when the failure log or the queue itself
 * cannot be written does this throw, so the host abandons the batch and it is redelivered (idempotent).
 */
export async function applyMessages(deps: ApplyDeps, bodies: unknown[]): Promise<ApplySummary> {
  const now = deps.now ?? (() => new Date());
  const summary: ApplySummary = { applied: 0, stale: 0, failed: 0, retried: 0, deferred: 0, dropped: 0 };
  const failures = new Map<string, FailureEntry[]>();
  const reschedule: { message: ChangeMessage; at: Date }[] = [];
  const fail = (profileId: string, record: Omit<FailureEntry, 'profileId' | 'time'>) => {
    const list = failures.get(profileId) ?? [];
    list.push({ profileId, time: now().toISOString(), ...record });
    failures.set(profileId, list);
    summary.failed++;
  };

  // 1. Read envelopes and claim checks.
  const byProfile = new Map<string, WorkItem[]>();
  const claimBlobs = new Map<string, ChangeMessage>();
  for (const body of bodies) {
    const message = readChangeMessage(body);
    if ('error' in message) {
      // Logged once, where an admin reads it; the batch's good changes go on (nothing to redeliver).
      const raw = (typeof body === 'string' ? parsedOrUndefined(body) : body) as Partial<ChangeMessage> | undefined;
      const named = (value: unknown) => (typeof value === 'string' && value ? value : 'unknown');
      for (const profileId of ownersOf(raw)) {
        fail(profileId, {
          entity: named(raw?.entity),
          recordId: named(raw?.recordId),
          changeType: 'unknown',
          reason: `unreadable queue message: ${message.error}`,
          code: 'VALIDATION_FAILED',
        });
      }
      continue;
    }
    let change: ChangeEvent;
    try {
      change = message.body.kind === 'inline' ? message.body.change : await loadClaimCheck(deps, message);
    } catch (err) {
      const error = toAppError(err);
      if (error.transient) throw error;
      for (const profileId of message.profileIds) {
        fail(profileId, failureOf(message, error));
      }
      continue;
    }
    if (message.body.kind === 'claimCheck') claimBlobs.set(message.body.blobName, message);
    for (const profileId of message.profileIds) {
      const items = byProfile.get(profileId) ?? [];
      items.push({ message, change });
      byProfile.set(profileId, items);
    }
  }

  // 2. Apply per profile; profiles do not wait for each other.
  const limit = pLimit(4);
  await Promise.all(
    [...byProfile].map(([profileId, items]) =>
      limit(async () => {
        const profile = await deps.profiles.getProfile(profileId);
        if (profile?.state !== 'Active') {
          summary.dropped += items.length;
          deps.logger.info('changes dropped: profile inactive or deleted', { profileId, changes: items.length });
          return;
        }
        await applyForProfile(deps, profile, items, { summary, fail, reschedule, now });
      }),
    ),
  );

  // 3. Re-schedule what must be tried again, then write failure lines. Either failing throws: redelivery.
  const byTime = new Map<number, ChangeMessage[]>();
  for (const { message, at } of reschedule) {
    const list = byTime.get(at.getTime()) ?? [];
    list.push(message);
    byTime.set(at.getTime(), list);
  }
  for (const [at, messages] of byTime) await deps.queue.schedule(messages, new Date(at));
  for (const [profileId, entries] of failures) await deps.failureLog.writeFailures(profileId, entries);

  // 4. A claim check is deleted once no re-scheduled message still refers to it.
  const stillReferenced = new Set(
    reschedule.flatMap(({ message }) => (message.body.kind === 'claimCheck' ? [message.body.blobName] : [])),
  );
  for (const blobName of claimBlobs.keys()) {
    if (!stillReferenced.has(blobName)) await deps.claimChecks.delete(blobName);
  }
  return summary;
}

async function loadClaimCheck(deps: ApplyDeps, message: ChangeMessage): Promise<ChangeEvent> {
  if (message.body.kind !== 'claimCheck') throw new Error('not a claim check');
  const json = await deps.claimChecks.get(message.body.blobName);
  return readStoredChange(json, `Claim check '${message.body.blobName}'`);
}

function failureOf(
  message: ChangeMessage,
  error: AppError,
  attempts?: number,
): Omit<FailureEntry, 'profileId' | 'time'> {
  return {
    entity: message.entity,
    recordId: message.recordId,
    changeType: message.operation,
    reason: error.message,
    code: error.code,
    attempts,
    correlationId: message.correlationId,
  };
}

interface BatchState {
  summary: ApplySummary;
  fail: (profileId: string, record: Omit<FailureEntry, 'profileId' | 'time'>) => void;
  reschedule: { message: ChangeMessage; at: Date }[];
  now: () => Date;
}

function forProfile(message: ChangeMessage, profileId: string, attempt: number): ChangeMessage {
  return { ...message, profileIds: [profileId], attempt };
}

async function applyForProfile(
  deps: ApplyDeps,
  profile: RoutedProfile,
  items: WorkItem[],
  state: BatchState,
): Promise<void> {
  const { summary, fail, reschedule, now } = state;
  const log = deps.logger.child({ profileId: profile.id });
  const retryCount = profile.options.retryCount ?? DEFAULT_RETRY_COUNT;
  const retryIntervalMs = (profile.options.retryIntervalSeconds ?? DEFAULT_RETRY_INTERVAL_SECONDS) * 1000;
  const metrics = new Map<string, MetricsDelta>();
  const bump = (entity: string, delta: MetricsDelta) => {
    const m = metrics.get(entity) ?? {};
    for (const key of ['received', 'applied', 'stale', 'failed'] as const) {
      if (delta[key]) m[key] = (m[key] ?? 0) + (delta[key] ?? 0);
    }
    if (delta.lastAppliedAt) m.lastAppliedAt = delta.lastAppliedAt;
    if (delta.lagMs !== undefined) m.lagMs = Math.max(m.lagMs ?? 0, delta.lagMs);
    metrics.set(entity, m);
  };
  for (const item of items) if (item.message.attempt === 0) bump(item.change.entity, { received: 1 });

  const retryLater = (item: WorkItem, error: AppError) => {
    const attempt = item.message.attempt + 1;
    if (attempt > retryCount) {
      fail(profile.id, failureOf(item.message, error, attempt));
      bump(item.change.entity, { failed: 1 });
      return;
    }
    summary.retried++;
    reschedule.push({
      message: forProfile(item.message, profile.id, attempt),
      at: new Date(now().getTime() + retryIntervalMs),
    });
  };
  const deferAll = (error: AppError) => {
    summary.deferred += items.length;
    log.warn('target unreachable; changes re-scheduled', {
      error,
      changes: items.length,
      backoffSeconds: deps.outageBackoffSeconds,
    });
    const at = new Date(now().getTime() + deps.outageBackoffSeconds * 1000);
    for (const item of items)
      reschedule.push({ message: forProfile(item.message, profile.id, item.message.attempt), at });
  };

  // Stripped payloads are re-read first; a Dataverse outage makes them retry like any transient fault.
  const ready: WorkItem[] = [];
  for (const item of items) {
    if (!item.change.needsReread) {
      ready.push(item);
      continue;
    }
    try {
      const fresh = deps.rereader ? await deps.rereader.reread(profile, item.change) : undefined;
      if (!fresh) {
        if (!deps.rereader) {
          fail(
            profile.id,
            failureOf(
              item.message,
              new AppError(
                'DATAVERSE_UNAVAILABLE',
                'payload stripped by Dataverse and no Web API client is configured to re-read it',
              ),
            ),
          );
          bump(item.change.entity, { failed: 1 });
        } else {
          summary.stale++;
          bump(item.change.entity, { stale: 1 });
        }
        continue;
      }
      ready.push({ message: item.message, change: fresh });
    } catch (err) {
      retryLater(item, toAppError(err));
    }
  }

  let outcomes: ApplyOutcome[];
  try {
    const sink = await deps.sinks.sinkFor(profile);
    outcomes = ready.length ? await sink.applyBatch(ready.map((i) => i.change)) : [];
  } catch (err) {
    const error = toAppError(err);
    if (error.code === 'TARGET_UNREACHABLE' || error.code === 'SECRET_NOT_FOUND') {
      deferAll(error);
      await flushMetrics(deps, profile.id, metrics, log);
      return;
    }
    outcomes = ready.map(() => ({ status: 'failed', error }));
  }

  const applyTime = now();
  outcomes.forEach((outcome, i) => {
    const item = ready[i];
    const entity = item.change.entity;
    // Dataverse's correlation id ties this line to the ingest line of the same change.
    const trace = { entity, recordId: item.change.recordId, correlationId: item.message.correlationId };
    log.debug('change applied', { ...trace, outcome: outcome.status });
    if (outcome.status === 'applied') {
      summary.applied++;
      bump(entity, {
        applied: 1,
        lastAppliedAt: applyTime,
        lagMs: Math.max(0, applyTime.getTime() - Date.parse(item.change.operationTime)),
      });
    } else if (outcome.status === 'stale') {
      summary.stale++;
      bump(entity, { stale: 1 });
    } else if (outcome.error.transient) {
      retryLater(item, outcome.error);
    } else {
      log.warn('change failed; written to the failure log', { ...trace, error: outcome.error });
      fail(profile.id, failureOf(item.message, outcome.error, item.message.attempt + 1));
      bump(entity, { failed: 1 });
    }
  });
  await flushMetrics(deps, profile.id, metrics, log);
}

async function flushMetrics(deps: ApplyDeps, profileId: string, metrics: Map<string, MetricsDelta>, log: Logger) {
  for (const [entity, delta] of metrics) {
    try {
      await deps.metrics.recordMetrics(profileId, entity, delta);
    } catch (err) {
      // Counters are reporting, not data: a lost increment must not redeliver changes already applied.
      log.warn('metrics not recorded', { entity, error: toAppError(err) });
    }
  }
}
