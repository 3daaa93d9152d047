import pLimit from 'p-limit';
import type { ChangeEvent } from '../change/change-event.js';
import { type ChangeMessage, readChangeMessage } from '../queue/envelope.js';
import { hourPath } from '../storage/blob-time-path.js';
import type { ClaimCheckStore } from './ports.js';

/** A change that must be tried again later: the message to schedule and when it becomes visible. */
export interface WaitingChange {
  message: ChangeMessage;
  at: Date;
}

export interface ParkedBatch {
  /** The same changes, each now referring to a claim check it alone owns. */
  waiting: WaitingChange[];
  /** Blobs written by this call (the rest were claim checks already). */
  parked: string[];
}

/** Uploads in flight at once: a batch of waiting changes costs a few round trips of latency, not one each. */
export const PARK_CONCURRENCY = 16;

/**
 * A change still waiting after this long is parked afresh (and its old blob deleted), so no live blob nears
 * the cleanup timer's orphan age however long an outage lasts, and none outlives a key rotation by more
 * than this.
 */
export const PARKED_RENEWAL_MS = 12 * 60 * 60 * 1000;

/**
 * Parks waiting changes as encrypted claim checks, so their field values rest under the customer's key and
 * not in Service Bus for as long as an outage lasts. An inline change gets a blob; a claim check keeps its
 * blob, so a change is parked once however often it is re-scheduled. A blob is owned by one waiting message:
 * when several re-scheduled messages share one (a change routed to several profiles that all wait), the
 * later ones get their own copy, since whichever applies first deletes its blob. A blob created before
 * `renewBefore` is parked afresh. `loaded` holds the payloads of the claim checks this batch read. If any
 * upload fails, what this call wrote is removed again and the error is thrown, so the batch is redelivered.
 */
export async function parkWaiting(
  claimChecks: ClaimCheckStore,
  waiting: readonly WaitingChange[],
  loaded: ReadonlyMap<string, ChangeEvent>,
  options: { renewBefore: Date; concurrency?: number },
): Promise<ParkedBatch> {
  const limit = pLimit(options.concurrency ?? PARK_CONCURRENCY);
  const renewBefore = hourPath(options.renewBefore);
  const owned = new Set<string>();
  const parked: string[] = [];
  const settled = await Promise.allSettled(
    waiting.map((entry) => {
      const body = entry.message.body;
      // Claim-check names start with their creation hour, so their age is read without a request.
      const fresh = body.kind === 'claimCheck' && body.blobName.slice(0, renewBefore.length) >= renewBefore;
      if (body.kind === 'claimCheck' && fresh && !owned.has(body.blobName)) {
        owned.add(body.blobName);
        return Promise.resolve(entry);
      }
      const change = body.kind === 'inline' ? body.change : loaded.get(body.blobName);
      if (!change) return Promise.reject(new Error('a shared claim check was not read by this batch'));
      return limit(async (): Promise<WaitingChange> => {
        const ref = await claimChecks.put(JSON.stringify(change), {
          organizationId: change.organizationId,
          entity: change.entity,
        });
        parked.push(ref.blobName);
        return {
          ...entry,
          message: { ...entry.message, body: { kind: 'claimCheck', blobName: ref.blobName, bytes: ref.bytes } },
        };
      });
    }),
  );
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) {
    await releaseParked(claimChecks, parked);
    throw failed.reason;
  }
  return { waiting: settled.map((s) => (s as PromiseFulfilledResult<WaitingChange>).value), parked };
}

/** Best-effort removal of parked blobs whose messages were never scheduled; cleanup takes any it misses. */
export async function releaseParked(claimChecks: ClaimCheckStore, blobNames: readonly string[]): Promise<void> {
  const limit = pLimit(PARK_CONCURRENCY);
  await Promise.allSettled(blobNames.map((name) => limit(() => claimChecks.delete(name))));
}

/**
 * Starts reading every claim check a batch refers to, at most `concurrency` at a time, so a batch of parked
 * changes coming back costs a few round trips of latency rather than one per change. Returns the reader the
 * batch awaits, per blob, in its own order; a read that fails surfaces there, not as an unhandled rejection.
 */
export function prefetchClaimChecks(
  claimChecks: ClaimCheckStore,
  bodies: readonly unknown[],
  concurrency = PARK_CONCURRENCY,
): (blobName: string) => Promise<string> {
  const limit = pLimit(concurrency);
  const reads = new Map<string, Promise<string>>();
  const read = (blobName: string) => {
    let pending = reads.get(blobName);
    if (!pending) {
      pending = limit(() => claimChecks.get(blobName));
      pending.catch(() => undefined);
      reads.set(blobName, pending);
    }
    return pending;
  };
  for (const body of bodies) {
    const message = readChangeMessage(body);
    if (!('error' in message) && message.body.kind === 'claimCheck') read(message.body.blobName);
  }
  return read;
}
