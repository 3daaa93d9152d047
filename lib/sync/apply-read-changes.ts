/**
 * Applies changes read from the Web API through the sink, with the same version guard and tombstones as
 * the webhook path, so a page read while live changes arrive can only ever lose to a newer change.
 * Records the sink refuses go to the failure log, as DES listed them.
 */
import type { ChangeEvent } from '../change/change-event.js';
import type { ExportProfile } from '../profiles/schema.js';
import type { ApplyOptions } from '../sink/index.js';
import type { FailureEntry } from '../storage/failure-log.js';
import type { SyncDeps, SyncSink } from './ports.js';

export interface ApplyTally {
  applied: number;
  stale: number;
  failed: number;
  /** Keys (`entity/recordId`) of the changes that applied or were already current. */
  settled: Set<string>;
}

export const recordKey = (entity: string, recordId: string) => `${entity}/${recordId.toLowerCase()}`;

/** One applyBatch call; throws only what the sink throws for the whole batch (target down, transient). */
export async function applyChanges(
  deps: Pick<SyncDeps, 'failureLog' | 'now'>,
  profile: ExportProfile,
  sink: SyncSink,
  changes: ChangeEvent[],
  options?: ApplyOptions,
): Promise<ApplyTally> {
  const tally: ApplyTally = { applied: 0, stale: 0, failed: 0, settled: new Set() };
  if (changes.length === 0) return tally;
  const outcomes = await sink.applyBatch(changes, options);
  // An entity whose table cannot fit is no row's failure: the caller stops (a copy marks the entity Failed).
  const waiting = outcomes.find((o) => o.status === 'waiting');
  if (waiting) throw waiting.error;
  const time = (deps.now ?? (() => new Date()))().toISOString();
  const failures: FailureEntry[] = [];
  outcomes.forEach((outcome, index) => {
    const change = changes[index];
    if (outcome.status === 'failed') {
      tally.failed++;
      failures.push({
        profileId: profile.id,
        entity: change.entity,
        recordId: change.recordId,
        changeType: change.operation,
        time,
        reason: outcome.error.message,
        code: outcome.error.code,
        correlationId: change.correlationId,
      });
      return;
    }
    if (outcome.status === 'applied') tally.applied++;
    else tally.stale++;
    tally.settled.add(recordKey(change.entity, change.recordId));
  });
  if (failures.length) await deps.failureLog.writeFailures(profile.id, failures);
  return tally;
}
