import { AppError, toAppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ClaimCheckStore } from '../storage/claim-check.js';
import { UNATTRIBUTED_PROFILE_ID } from '../storage/failure-log.js';
import { deleteBlobPage, type SweepTally } from './blob-sweep.js';
import {
  deleteExpiredFailureLogs,
  deleteProfileLogs,
  type FailureLogBlobs,
  failureLogProfileIds,
} from './failure-log-sweep.js';

/**
 * A claim check must outlive every message that can still refer to it. Apply deletes it as soon as its change
 * is applied or logged as failed, so what remains is orphaned: left by a dead-lettered or expired message, or
 * by an ingest that stored the blob and then failed to send. Changes waiting for their target are parked as
 * claim checks too; one still waiting after 12 hours is parked afresh, so a live one never reaches this age. The longest a live message can wait is the
 * `changes` queue's message time-to-live, 14 days (bicep/modules/service-bus.bicep, `defaultMessageTimeToLive:
 * 'P14D'`, after which it is dead-lettered): a backlog after a long outage or a stopped app is still applied
 * then. One day more covers clock skew and the drain of that dead letter. Orphans are rare and encrypted, so
 * keeping them 15 days costs little, while deleting a live one loses the change (CLAIM_CHECK_MISSING).
 */
export const DEFAULT_CLAIM_CHECK_GRACE_MINUTES = 15 * 24 * 60;

/**
 * A tombstone stops an older change from bringing a deleted row back, so it must outlive every older change
 * that can still arrive: a queued message (up to its 14-day time-to-live), a Dataverse webhook retry, an
 * initial-sync page or a reconcile delta read before the delete. 30 days is twice the longest of these.
 */
export const DEFAULT_TOMBSTONE_RETENTION_DAYS = 30;

export interface CleanupDeps extends FailureLogBlobs {
  claimChecks: Pick<ClaimCheckStore, 'listClaimChecks' | 'deleteClaimCheck'>;
  /** Ids of the profiles that exist; the failure logs of any other id are deleted. */
  knownProfileIds(): Promise<Set<string>>;
  /** Deletes tombstones older than `olderThan` in every target; returns how many. Absent: not purged. */
  purgeTombstones?(olderThan: Date): Promise<number>;
  now?(): Date;
  /** Setting FailureLogRetentionDays. */
  failureRetentionDays: number;
  claimCheckGraceMinutes?: number;
  tombstoneRetentionDays?: number;
  /** Blobs listed per request and deleted per round (default 500). */
  pageSize?: number;
  /** Deletes in flight at once (default 16). */
  concurrency?: number;
  logger: Logger;
}

export interface CleanupReport {
  claimChecksDeleted: number;
  failureLogBlobsDeleted: number;
  deletedProfileLogsDeleted: number;
  tombstonesPurged: number;
  /** Blobs that could not be deleted plus steps that failed; each was logged. The next run tries again. */
  failed: number;
  durationMs: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Removes orphaned claim checks, failure-log blobs past retention, the failure logs of deleted profiles, and
 * old tombstones. Each step and each blob fails alone: the rest still runs, and the report counts the
 * failures. Two runs may overlap (a slow run and the next timer tick): a blob the other run deleted first is
 * not an error, and each blob is counted by the run that deleted it.
 */
export async function runCleanup(deps: CleanupDeps): Promise<CleanupReport> {
  const started = Date.now();
  const now = deps.now?.() ?? new Date();
  const graceMinutes = positive(
    'claimCheckGraceMinutes',
    deps.claimCheckGraceMinutes ?? DEFAULT_CLAIM_CHECK_GRACE_MINUTES,
  );
  const retentionDays = positive('failureRetentionDays', deps.failureRetentionDays);
  const tombstoneDays = positive(
    'tombstoneRetentionDays',
    deps.tombstoneRetentionDays ?? DEFAULT_TOMBSTONE_RETENTION_DAYS,
  );
  const sweep = {
    pageSize: positive('pageSize', deps.pageSize ?? 500),
    concurrency: positive('concurrency', deps.concurrency ?? 16),
    logger: deps.logger,
  };
  const report: CleanupReport = {
    claimChecksDeleted: 0,
    failureLogBlobsDeleted: 0,
    deletedProfileLogsDeleted: 0,
    tombstonesPurged: 0,
    failed: 0,
    durationMs: 0,
  };
  const step = async (name: string, run: () => Promise<void>) => {
    try {
      await run();
    } catch (err) {
      report.failed++;
      deps.logger.error(`cleanup step '${name}' failed; the other steps still ran`, {
        step: name,
        error: toAppError(err),
      });
    }
  };

  await step('claimChecks', async () => {
    const olderThan = new Date(now.getTime() - graceMinutes * 60_000);
    const remove = (name: string) => deps.claimChecks.deleteClaimCheck(name);
    for await (const page of deps.claimChecks.listClaimChecks(olderThan, sweep.pageSize)) {
      const tally = await deleteBlobPage(
        page.map((c) => c.blobName),
        remove,
        sweep,
      );
      report.claimChecksDeleted += tally.deleted;
      report.failed += tally.failed;
    }
  });

  await step('failureLog', async () => {
    // Folders are listed before the profiles are read: a profile created in between cannot have a folder yet.
    const folders = await failureLogProfileIds(deps);
    const known = await deps.knownProfileIds().catch((err: unknown) => {
      report.failed++;
      deps.logger.error('cleanup could not read the profiles; no failure log is treated as a deleted profile’s', {
        error: toAppError(err),
      });
      return undefined;
    });
    const cutoff = new Date(now.getTime() - retentionDays * DAY_MS);
    for (const profileId of folders) {
      await step(`failureLog:${profileId}`, async () => {
        const deleted = known !== undefined && profileId !== UNATTRIBUTED_PROFILE_ID && !known.has(profileId);
        const tally: SweepTally = deleted
          ? await deleteProfileLogs(deps, profileId, sweep)
          : await deleteExpiredFailureLogs(deps, profileId, cutoff, sweep);
        if (deleted) report.deletedProfileLogsDeleted += tally.deleted;
        else report.failureLogBlobsDeleted += tally.deleted;
        report.failed += tally.failed;
      });
    }
  });

  if (deps.purgeTombstones) {
    const purge = deps.purgeTombstones;
    await step('tombstones', async () => {
      report.tombstonesPurged += await purge(new Date(now.getTime() - tombstoneDays * DAY_MS));
    });
  }

  report.durationMs = Date.now() - started;
  return report;
}

export { deleteProfileLogs };

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new AppError('CONFIG_INVALID', `Cleanup option ${name} must be a positive number, got ${value}.`, {
      details: [{ field: name, message: 'must be a positive number', value }],
    });
  }
  return value;
}
