import pLimit from 'p-limit';
import type { ChangeEvent } from '../change/change-event.js';
import { readStoredChange } from '../change/change-event-schema.js';
import { AppError, toAppError } from '../errors.js';
import type { Logger } from '../log.js';
import { DEFAULT_RETRY_COUNT, DEFAULT_RETRY_INTERVAL_SECONDS } from '../profiles/schema.js';
import type { ChangeQueue } from '../queue/change-queue.js';
import { type ChangeMessage, readChangeMessage } from '../queue/envelope.js';
import { isFailureLogProfileId, UNATTRIBUTED_PROFILE_ID } from '../storage/failure-log.js';
import { entityConditionText } from './entity-conditions.js';
import { wants } from './ingest.js';
import {
  PARK_CONCURRENCY,
  PARKED_RENEWAL_MS,
  parkWaiting,
  prefetchClaimChecks,
  releaseParked,
  type WaitingChange,
} from './park.js';
import type {
  ApplyOutcome,
  ClaimCheckStore,
  EntityConditionRecorder,
  FailureEntry,
  FailureLogWriter,
  MetricsDelta,
  MetricsRecorder,
  ProfileDirectory,
  RecordRereader,
  RoutedProfile,
  SchemaSourceFactory,
  SinkFactory,
  TargetCondition,
  TargetStateRecorder,
} from './ports.js';

export interface ApplyDeps {
  profiles: ProfileDirectory;
  sinks: SinkFactory;
  claimChecks: ClaimCheckStore;
  queue: ChangeQueue;
  failureLog: FailureLogWriter;
  metrics: MetricsRecorder;
  rereader?: RecordRereader;
  /** Dataverse's metadata for the sink; without it new columns are typed from their first values. */
  schemaFor?: SchemaSourceFactory;
  /** Seconds before changes for an unreachable target are tried again. */
  outageBackoffSeconds: number;
  /** Notes why a target waits (and that it no longer does), for the profile's status. */
  targetStates?: TargetStateRecorder;
  /** Notes why one entity's changes wait (its table cannot fit the target), for the entity's status. */
  entityConditions?: EntityConditionRecorder;
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
 * then without spending the budget), or a failure-log line. A re-scheduled change waits as an encrypted
 * claim check, never inline. Only when the failure log, the queue or the claim-check storage cannot be
 * written does this throw, so the host abandons the batch and it is redelivered (idempotent).
 */
export async function applyMessages(deps: ApplyDeps, bodies: unknown[]): Promise<ApplySummary> {
  const now = deps.now ?? (() => new Date());
  const summary: ApplySummary = { applied: 0, stale: 0, failed: 0, retried: 0, deferred: 0, dropped: 0 };
  const failures = new Map<string, FailureEntry[]>();
  const reschedule: WaitingChange[] = [];
  // The one way a change waits: every path that re-schedules goes through here, and step 3 parks them all.
  const wait = (message: ChangeMessage, at: Date) => {
    reschedule.push({ message, at });
  };
  const fail = (profileId: string, record: Omit<FailureEntry, 'profileId' | 'time'>) => {
    const list = failures.get(profileId) ?? [];
    list.push({ profileId, time: now().toISOString(), ...record });
    failures.set(profileId, list);
    summary.failed++;
  };

  // 1. Read envelopes and claim checks.
  const byProfile = new Map<string, WorkItem[]>();
  const claimBlobs = new Map<string, ChangeEvent>();
  const readClaimCheck = prefetchClaimChecks(deps.claimChecks, bodies);
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
      change = message.body.kind === 'inline' ? message.body.change : await loadClaimCheck(readClaimCheck, message);
    } catch (err) {
      const error = toAppError(err);
      if (error.transient) throw error;
      for (const profileId of message.profileIds) {
        fail(profileId, failureOf(message, error));
      }
      continue;
    }
    if (message.body.kind === 'claimCheck') claimBlobs.set(message.body.blobName, change);
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
        await applyForProfile(deps, profile, items, { summary, fail, wait, now });
      }),
    ),
  );

  // 3. Park what must be tried again and re-schedule it by reference, then write failure lines. Any of
  // these failing throws: redelivery.
  const { waiting, parked } = await parkWaiting(deps.claimChecks, reschedule, claimBlobs, {
    renewBefore: new Date(now().getTime() - PARKED_RENEWAL_MS),
  });
  await scheduleWaiting(deps, waiting, new Set(parked));
  for (const [profileId, entries] of failures) await deps.failureLog.writeFailures(profileId, entries);

  // 4. A claim check is deleted once no re-scheduled message still refers to it.
  const stillReferenced = new Set(
    waiting.flatMap(({ message }) => (message.body.kind === 'claimCheck' ? [message.body.blobName] : [])),
  );
  const done = [...claimBlobs.keys()].filter((blobName) => !stillReferenced.has(blobName));
  const deletes = pLimit(PARK_CONCURRENCY);
  await Promise.all(done.map((blobName) => deletes(() => deps.claimChecks.delete(blobName))));
  return summary;
}

/** Schedules by due time. If the queue fails, the blobs parked for messages not yet scheduled are removed. */
async function scheduleWaiting(deps: ApplyDeps, waiting: WaitingChange[], parked: Set<string>): Promise<void> {
  const byTime = new Map<number, ChangeMessage[]>();
  for (const { message, at } of waiting) {
    const list = byTime.get(at.getTime()) ?? [];
    list.push(message);
    byTime.set(at.getTime(), list);
  }
  const pending = [...byTime];
  try {
    while (pending.length) {
      const [at, messages] = pending[0];
      await deps.queue.schedule(messages, new Date(at));
      pending.shift();
    }
  } catch (err) {
    const orphans = pending.flatMap(([, messages]) =>
      messages.flatMap((m) => (m.body.kind === 'claimCheck' && parked.has(m.body.blobName) ? [m.body.blobName] : [])),
    );
    await releaseParked(deps.claimChecks, orphans);
    throw err;
  }
}

async function loadClaimCheck(
  read: (blobName: string) => Promise<string>,
  message: ChangeMessage,
): Promise<ChangeEvent> {
  if (message.body.kind !== 'claimCheck') throw new Error('not a claim check');
  const json = await read(message.body.blobName);
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
  /** Re-schedules a change; it is parked as a claim check before it is sent. */
  wait: (message: ChangeMessage, at: Date) => void;
  now: () => Date;
}

function forProfile(message: ChangeMessage, profileId: string, attempt: number, deferrals?: number): ChangeMessage {
  return { ...message, profileIds: [profileId], attempt, deferrals: deferrals ?? message.deferrals };
}

async function applyForProfile(
  deps: ApplyDeps,
  profile: RoutedProfile,
  items: WorkItem[],
  state: BatchState,
): Promise<void> {
  const { summary, fail, wait, now } = state;
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
  for (const item of items) {
    if (item.message.attempt === 0 && !item.message.deferrals) bump(item.change.entity, { received: 1 });
  }

  const retryLater = (item: WorkItem, error: AppError) => {
    const attempt = item.message.attempt + 1;
    if (attempt > retryCount) {
      fail(profile.id, failureOf(item.message, error, attempt));
      bump(item.change.entity, { failed: 1 });
      return;
    }
    summary.retried++;
    wait(forProfile(item.message, profile.id, attempt), new Date(now().getTime() + retryIntervalMs));
  };
  const deferAll = (error: AppError, state: TargetCondition) => {
    summary.deferred += items.length;
    log.warn(`target ${state}; changes re-scheduled`, {
      error,
      action: actionOf(error),
      changes: items.length,
      backoffSeconds: deps.outageBackoffSeconds,
    });
    const at = new Date(now().getTime() + deps.outageBackoffSeconds * 1000);
    for (const item of items) {
      const { attempt, deferrals = 0 } = item.message;
      wait(forProfile(item.message, profile.id, attempt, deferrals + 1), at);
    }
  };

  // Changes of an entity the profile no longer exports (removed while they waited) are dropped, not written.
  const exported = items.filter((item) => wants(profile, item.change));
  if (exported.length < items.length) {
    summary.dropped += items.length - exported.length;
    log.info('changes dropped: entity no longer in the profile', { changes: items.length - exported.length });
  }

  // Stripped payloads are re-read first; a Dataverse outage makes them retry like any transient fault.
  const ready: WorkItem[] = [];
  for (const item of exported) {
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
    const schema = deps.schemaFor?.(profile);
    outcomes = ready.length
      ? await sink.applyBatch(
          ready.map((i) => i.change),
          schema ? { schema } : undefined,
        )
      : [];
    if (ready.length) await noteTargetState(deps, profile.id, null, log);
  } catch (err) {
    const error = toAppError(err);
    const state = WAITING_CODES[error.code];
    if (state) {
      deferAll(error, state);
      await noteTargetState(deps, profile.id, { state, reason: error.message, action: actionOf(error) }, log);
      await flushMetrics(deps, profile.id, metrics, log);
      return;
    }
    outcomes = ready.map(() => ({ status: 'failed', error }));
  }

  const applyTime = now();
  // Per entity: why its changes wait, or (absent) that a batch of it went through.
  const entityWaits = new Map<string, string | null>();
  outcomes.forEach((outcome, i) => {
    const item = ready[i];
    const entity = item.change.entity;
    // Dataverse's correlation id ties this line to the ingest line of the same change.
    const trace = { entity, recordId: item.change.recordId, correlationId: item.message.correlationId };
    log.debug('change applied', { ...trace, outcome: outcome.status });
    if (outcome.status === 'waiting') {
      // Nobody's row is at fault: the change waits like in an outage, without spending its retry budget.
      summary.deferred++;
      entityWaits.set(entity, entityConditionText(outcome.error.code, outcome.error.message));
      const { attempt, deferrals = 0 } = item.message;
      wait(
        forProfile(item.message, profile.id, attempt, deferrals + 1),
        new Date(now().getTime() + deps.outageBackoffSeconds * 1000),
      );
      return;
    }
    if (!entityWaits.has(entity)) entityWaits.set(entity, null);
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
  await noteEntityConditions(deps, profile.id, entityWaits, log);
  await flushMetrics(deps, profile.id, metrics, log);
}

async function noteEntityConditions(
  deps: ApplyDeps,
  profileId: string,
  waits: Map<string, string | null>,
  log: Logger,
): Promise<void> {
  for (const [entity, reason] of waits) {
    try {
      await deps.entityConditions?.recordEntityCondition(profileId, entity, reason);
    } catch (err) {
      // Status is reporting, not data: failing to note it must not redeliver changes.
      log.warn('entity condition not recorded', { entity, error: toAppError(err) });
    }
  }
}

/** Errors that make a profile's changes wait, without spending their retry budget, and the condition shown. */
const WAITING_CODES: Partial<Record<string, TargetCondition>> = {
  TARGET_UNREACHABLE: 'unreachable',
  TARGET_UNAVAILABLE: 'unavailable',
  TARGET_MISCONFIGURED: 'misconfigured',
  SECRET_NOT_FOUND: 'misconfigured',
};

/** The advice the sink attached, or one that fits the code. */
function actionOf(error: AppError): string {
  const given = error.details.find((d) => d.field === 'target')?.message;
  if (given) return given;
  if (error.code === 'SECRET_NOT_FOUND') {
    return 'Create the secret the profile’s target.connectionSecret names, holding the connection string; the changes wait.';
  }
  return 'The changes wait and apply once the target takes writes again.';
}

async function noteTargetState(
  deps: ApplyDeps,
  profileId: string,
  report: Parameters<TargetStateRecorder['recordTargetState']>[1],
  log: Logger,
) {
  try {
    await deps.targetStates?.recordTargetState(profileId, report);
  } catch (err) {
    // Status is reporting, not data: failing to note it must not redeliver changes.
    log.warn('target state not recorded', { error: toAppError(err) });
  }
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
