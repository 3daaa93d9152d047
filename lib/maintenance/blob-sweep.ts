import pLimit from 'p-limit';
import { toAppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { BlobStore } from '../storage/blob-store.js';

/** What one sweep did: blobs it deleted, and blobs it could not delete (logged one by one). */
export interface SweepTally {
  deleted: number;
  failed: number;
}

export interface SweepOptions {
  /** Deletes in flight at once. */
  concurrency: number;
  logger: Logger;
}

/**
 * Deletes a page of blobs, at most `concurrency` at a time. A blob that is already gone — deleted by a
 * cleanup running at the same time — counts as neither deleted nor failed; any other error is logged and
 * counted, and the rest of the page goes on.
 */
export async function deleteBlobPage(
  names: readonly string[],
  remove: (name: string) => Promise<boolean>,
  options: SweepOptions,
): Promise<SweepTally> {
  const limit = pLimit(options.concurrency);
  const tally: SweepTally = { deleted: 0, failed: 0 };
  await Promise.all(
    names.map((name) =>
      limit(async () => {
        try {
          if (await remove(name)) tally.deleted++;
        } catch (err) {
          tally.failed++;
          options.logger.warn('cleanup could not delete a blob; it is retried on the next run', {
            blob: name,
            error: toAppError(err),
          });
        }
      }),
    ),
  );
  return tally;
}

/**
 * Blob names under `prefix` in name order, `pageSize` at a time. The listing is lazy and resumes by
 * continuation marker, so deleting a page before asking for the next one neither skips nor repeats names.
 * `select` ends the listing at the first name it answers `'stop'` for (where names are time-ordered, the
 * rest are newer) and leaves out a name it answers `'skip'` for.
 */
export async function* blobNamePages(
  blobs: BlobStore,
  container: string,
  options: { prefix: string; pageSize: number; select?: (name: string) => 'take' | 'skip' | 'stop' },
): AsyncGenerator<string[]> {
  let page: string[] = [];
  for await (const blob of blobs.list(container, { prefix: options.prefix, pageSize: options.pageSize })) {
    const verdict = options.select?.(blob.name) ?? 'take';
    if (verdict === 'stop') break;
    if (verdict === 'skip') continue;
    page.push(blob.name);
    if (page.length >= options.pageSize) {
      yield page;
      page = [];
    }
  }
  if (page.length) yield page;
}

export function addTally(total: SweepTally, part: SweepTally): SweepTally {
  total.deleted += part.deleted;
  total.failed += part.failed;
  return total;
}
