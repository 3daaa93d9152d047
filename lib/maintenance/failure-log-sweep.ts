import type { Logger } from '../log.js';
import type { BlobStore } from '../storage/blob-store.js';
import { spanOfPath } from '../storage/blob-time-path.js';
import { assertProfileId, isFailureLogProfileId } from '../storage/failure-log.js';
import { addTally, blobNamePages, deleteBlobPage, type SweepTally } from './blob-sweep.js';

/** The failure log as blobs: the store it lives in and its container (`FailureLog.container`). */
export interface FailureLogBlobs {
  blobs: BlobStore;
  failureLog: { container: string };
}

export interface FailureLogSweepOptions {
  pageSize: number;
  concurrency: number;
  logger: Logger;
}

/** `yyyy/MM/dd/HH/` right after `<profileId>/`. */
const HOUR_PREFIX = /^\d{4}\/\d{2}\/\d{2}\/\d{2}\//;

/** Profile ids that have a folder in the failure log. */
export async function failureLogProfileIds(log: FailureLogBlobs): Promise<string[]> {
  const folders = await log.blobs.folders(log.failureLog.container, '');
  return folders.map((folder) => folder.slice(0, -1)).filter(isFailureLogProfileId);
}

/**
 * Deletes the profile's failure-log blobs whose whole hour lies before `cutoff`. The hour that straddles
 * the cut is kept whole, so an entry outlives its retention by at most an hour. Names are time-ordered, so
 * the listing ends at the first hour that is not old enough; names that are not ours are never deleted.
 */
export async function deleteExpiredFailureLogs(
  log: FailureLogBlobs,
  profileId: string,
  cutoff: Date,
  options: FailureLogSweepOptions,
): Promise<SweepTally> {
  assertProfileId(profileId);
  const prefix = `${profileId}/`;
  const pages = blobNamePages(log.blobs, log.failureLog.container, {
    prefix,
    pageSize: options.pageSize,
    select: (name) => {
      const rest = name.slice(prefix.length);
      if (!HOUR_PREFIX.test(rest)) return 'skip';
      const span = spanOfPath(rest.slice(0, 14));
      if (!span) return 'skip';
      return span.end.getTime() <= cutoff.getTime() ? 'take' : 'stop';
    },
  });
  return deletePages(log, pages, options);
}

/**
 * Deletes every failure-log blob of a profile: on profile deletion, and by the cleanup for profiles the
 * control store no longer knows. Safe to repeat or to run alongside another deletion of the same profile.
 */
export async function deleteProfileLogs(
  log: FailureLogBlobs,
  profileId: string,
  options: Partial<FailureLogSweepOptions> & { logger: Logger },
): Promise<SweepTally> {
  assertProfileId(profileId);
  const pageSize = options.pageSize ?? 500;
  const pages = blobNamePages(log.blobs, log.failureLog.container, { prefix: `${profileId}/`, pageSize });
  return deletePages(log, pages, { pageSize, concurrency: options.concurrency ?? 16, logger: options.logger });
}

async function deletePages(
  log: FailureLogBlobs,
  pages: AsyncGenerator<string[]>,
  options: FailureLogSweepOptions,
): Promise<SweepTally> {
  const total: SweepTally = { deleted: 0, failed: 0 };
  const remove = (name: string) => log.blobs.delete(log.failureLog.container, name);
  for await (const page of pages) addTally(total, await deleteBlobPage(page, remove, options));
  return total;
}
