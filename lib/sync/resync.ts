/**
 * Resync (`POST /api/profiles/{id}/failures/resync`): every record in the profile's failure log is read
 * again from Dataverse and applied as it is now. A record that applies (or is already current in the
 * target) leaves the failure log; one that Dataverse no longer has is deleted from the target, as its
 * delete would have been, and leaves it too. Failures logged after the resync began are never removed.
 */
import pLimit from 'p-limit';
import type { ChangeEvent } from '../change/change-event.js';
import { isGuid } from '../sink/table-model.js';
import type { FailureEntry } from '../storage/failure-log.js';
import { applyChanges, recordKey } from './apply-read-changes.js';
import { activeProfile } from './initial-sync.js';
import type { SyncDeps } from './ports.js';

export interface ResyncResult {
  /** Distinct records tried. */
  attempted: number;
  succeeded: number;
  stillFailing: number;
  /** Records Dataverse no longer has (deleted in the target). */
  gone: number;
  /** Failure-log entries removed. */
  resolvedEntries: number;
}

const READ_CONCURRENCY = 8;
const APPLY_BATCH = 500;
/** Records one resync step handles: bounded, so a step stays well inside an activity's time. */
const STEP_RECORDS = 500;

export interface ResyncStepInput {
  profileId: string;
  /** When the resync began (ISO): failures logged later are not its business. */
  startedAt: string;
  /** The last record key a previous step handled; null for the first step. */
  after: string | null;
  /** Records per step (default 500). */
  batchSize?: number;
}

export interface ResyncStepOutput extends ResyncResult {
  /** Where the next step starts; null when every record has been tried. */
  next: string | null;
}

export const emptyResyncResult = (): ResyncResult => ({
  attempted: 0,
  succeeded: 0,
  stillFailing: 0,
  gone: 0,
  resolvedEntries: 0,
});

export function addResyncResult(total: ResyncResult, step: ResyncResult): ResyncResult {
  return {
    attempted: total.attempted + step.attempted,
    succeeded: total.succeeded + step.succeeded,
    stillFailing: total.stillFailing + step.stillFailing,
    gone: total.gone + step.gone,
    resolvedEntries: total.resolvedEntries + step.resolvedEntries,
  };
}

/** The whole resync in one call (tests, small logs); the HTTP route runs it as durable steps instead. */
export async function resyncFailures(deps: SyncDeps, profileId: string): Promise<ResyncResult> {
  const startedAt = (deps.now ?? (() => new Date()))().toISOString();
  let total = emptyResyncResult();
  let after: string | null = null;
  do {
    const { next, ...step }: ResyncStepOutput = await resyncStep(deps, { profileId, startedAt, after });
    total = addResyncResult(total, step);
    after = next;
  } while (after !== null);
  deps.logger.info('failures resynced', { profileId, ...total });
  return total;
}

/**
 * One bounded step of a resync: the next `batchSize` distinct records (in key order, after `after`) of the
 * failures logged before `startedAt`. Entries that now succeed leave the log, so a later step's listing is
 * smaller; those still failing stay and are passed by the key order.
 */
export async function resyncStep(deps: SyncDeps, input: ResyncStepInput): Promise<ResyncStepOutput> {
  const now = deps.now ?? (() => new Date());
  const { profileId } = input;
  const to = new Date(input.startedAt);
  const profile = await activeProfile(deps, profileId);
  const entries = await deps.failureLog.listFailures(profileId, { to });
  const result: ResyncStepOutput = { ...emptyResyncResult(), next: null };

  // One attempt per record, however often it failed.
  const pending = new Map<string, FailureEntry | undefined>();
  const exported = new Set(profile.entities);
  for (const entry of entries) {
    const key = recordKey(entry.entity, entry.recordId);
    if (input.after !== null && key <= input.after) continue;
    // An unreadable message, a relationship pair or a table no longer exported is not re-read: it stays listed.
    const resyncable =
      exported.has(entry.entity) &&
      isGuid(entry.recordId) &&
      entry.changeType !== 'associate' &&
      entry.changeType !== 'disassociate';
    pending.set(key, resyncable ? entry : undefined);
  }
  const keys = [...pending.keys()].sort();
  const batch = keys.slice(0, input.batchSize ?? STEP_RECORDS);
  if (keys.length > batch.length) result.next = batch[batch.length - 1];
  const records = new Map<string, FailureEntry>();
  for (const key of batch) {
    const entry = pending.get(key);
    if (entry) records.set(key, entry);
    else result.stillFailing++;
  }
  result.attempted = batch.length;
  if (records.size === 0) return result;

  const source = deps.dataverseFor(profile);
  const sink = await deps.sinkFor(profile);
  const limit = pLimit(READ_CONCURRENCY);
  const goneKeys = new Set<string>();
  const changes = await Promise.all(
    [...records.values()].map((entry) =>
      limit(async (): Promise<ChangeEvent> => {
        const current = await source.retrieve(entry.entity, entry.recordId);
        if (current) return { ...current, source: 'resync' };
        goneKeys.add(recordKey(entry.entity, entry.recordId));
        // Dataverse dates no delete it has forgotten; the moment it answered "not found" is after it.
        const readTime = now().toISOString();
        return {
          organizationId: profile.organizationId,
          entity: entry.entity,
          recordId: entry.recordId.toLowerCase(),
          operation: 'delete',
          version: { modifiedOn: readTime },
          operationTime: readTime,
          correlationId: entry.correlationId ?? `resync-${profileId}`,
          source: 'resync',
          messageName: 'Delete',
        };
      }),
    ),
  );

  const settled = new Set<string>();
  for (let i = 0; i < changes.length; i += APPLY_BATCH) {
    const tally = await applyChanges(
      { ...deps, failureLog: noFailureLog },
      profile,
      sink,
      changes.slice(i, i + APPLY_BATCH),
    );
    for (const key of tally.settled) settled.add(key);
  }
  for (const key of records.keys()) {
    if (!settled.has(key)) result.stillFailing++;
    else if (goneKeys.has(key)) result.gone++;
    else result.succeeded++;
  }
  if (settled.size) {
    result.resolvedEntries = await deps.failureLog.deleteFailureEntries(
      profileId,
      (e) => settled.has(recordKey(e.entity, e.recordId)),
      { to },
    );
  }
  return result;
}

/** A record that still fails keeps its existing entries; a resync does not log it a second time. */
const noFailureLog = {
  writeFailures: async () => undefined,
  listFailures: async () => [],
  deleteFailureEntries: async () => 0,
};
