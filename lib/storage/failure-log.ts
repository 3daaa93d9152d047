import { randomUUID } from 'node:crypto';
import { stringify } from 'csv-stringify/sync';
import type { ChangeOperation } from '../change/change-event.js';
import { AppError } from '../errors.js';
import { type BlobStore, statusOf } from './blob-store.js';
import { compactTime, hourPath, spanOfPath } from './blob-time-path.js';

export const FAILURE_LOG_CONTAINER = 'failurelog';

/** One change that could not be applied after its retries (what DES showed as a failure-log line). */
export interface FailureEntry {
  profileId: string;
  entity: string;
  recordId: string;
  /** `unknown` when the change could not be read (a garbled or dead-lettered message). */
  changeType: ChangeOperation | 'unknown';
  /** When the change failed, ISO-8601 UTC. */
  time: string;
  reason: string;
  /** An {@link AppError} code, e.g. TARGET_PERMANENT. */
  code: string;
  attempts?: number;
  correlationId?: string;
}

export interface FailureRange {
  /** Inclusive. */
  from?: Date;
  /** Inclusive. */
  to?: Date;
}

export interface FailureLogOptions {
  blobs: BlobStore;
  /** Defaults to `failurelog`; tests pass their own. */
  container?: string;
}

const PROFILE_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/** Whether the failure log can file entries under this id (a folder name). */
export function isFailureLogProfileId(profileId: unknown): profileId is string {
  return typeof profileId === 'string' && PROFILE_ID.test(profileId);
}

/**
 * Where failures go that no profile can own: a queue message that is not a change or names no valid
 * profile id, at apply or after Service Bus dead-lettered it. Profile ids are server-assigned GUIDs, so
 * this never collides with one; the cleanup keeps it for the retention period like a profile's, and
 * admins read it at `GET /api/failures/unattributed`.
 */
export const UNATTRIBUTED_PROFILE_ID = 'unknown';
const READ_CONCURRENCY = 8;

/**
 * Failure entries as JSON blobs `<profileId>/yyyy/MM/dd/HH/<time>-<uuid>.json`, one blob per write and hour
 * of the entries' times. Blobs are written once and rewritten only to remove entries, so parallel writers
 * never contend (no append-blob races, no 50,000-block limit), and the hour folders let a time range or a
 * retention cut select blobs by name without reading them.
 */
export class FailureLog {
  readonly container: string;
  readonly #blobs: BlobStore;

  constructor(options: FailureLogOptions) {
    this.#blobs = options.blobs;
    this.container = options.container ?? FAILURE_LOG_CONTAINER;
  }

  /** Stores the entries (times normalised to UTC ISO); returns the blob names written. */
  async writeFailures(profileId: string, entries: FailureEntry[]): Promise<string[]> {
    assertProfileId(profileId);
    const byHour = new Map<string, FailureEntry[]>();
    for (const [index, entry] of entries.entries()) {
      const time = new Date(entry.time);
      if (Number.isNaN(time.getTime())) {
        throw new AppError('VALIDATION_FAILED', `Failure entry ${index} has an invalid time '${entry.time}'.`, {
          details: [{ field: `/${index}/time`, message: 'not an ISO-8601 date-time', value: entry.time }],
        });
      }
      if (entry.profileId !== profileId) {
        throw new AppError(
          'VALIDATION_FAILED',
          `Failure entry ${index} belongs to profile '${entry.profileId}', not '${profileId}'.`,
          {
            details: [{ field: `/${index}/profileId`, message: `must be '${profileId}'`, value: entry.profileId }],
          },
        );
      }
      const hour = hourPath(time);
      byHour.set(hour, [...(byHour.get(hour) ?? []), { ...entry, time: time.toISOString() }]);
    }
    const names: string[] = [];
    for (const [hour, group] of byHour) {
      const latest = new Date(
        group
          .map((e) => e.time)
          .sort()
          .at(-1) ?? group[0].time,
      );
      const name = `${profileId}/${hour}${compactTime(latest)}-${randomUUID()}.json`;
      await this.#blobs.upload(this.container, name, Buffer.from(JSON.stringify(group)), {
        contentType: 'application/json',
      });
      names.push(name);
    }
    return names;
  }

  /** Entries newest first; hour folders outside the range are never read, and reading stops at `limit`. */
  async listFailures(profileId: string, options: FailureRange & { limit?: number } = {}): Promise<FailureEntry[]> {
    assertProfileId(profileId);
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    const out: FailureEntry[] = [];
    for await (const hour of this.#hourFolders(profileId, options)) {
      const blobs = await this.#readFolder(hour);
      const entries = blobs.flatMap((b) => b.entries).filter((e) => inRange(e, options));
      out.push(...entries.sort(newestFirst));
      if (out.length >= limit) break;
    }
    return out.slice(0, limit);
  }

  /**
   * Removes entries older than `before` (all of the profile's entries without it). Hours wholly before the
   * cut are deleted by name; only the hour that straddles it is read and rewritten. Returns the blobs deleted.
   */
  async deleteFailures(profileId: string, options: { before?: Date } = {}): Promise<number> {
    assertProfileId(profileId);
    const { before } = options;
    let deleted = 0;
    if (!before) {
      for await (const blob of this.#blobs.list(this.container, { prefix: `${profileId}/` })) {
        if (await this.#blobs.delete(this.container, blob.name)) deleted++;
      }
      return deleted;
    }
    for await (const hour of this.#hourFolders(profileId, { to: before })) {
      const span = spanOfPath(hour.slice(profileId.length + 1))!;
      if (span.end <= before) {
        for await (const blob of this.#blobs.list(this.container, { prefix: hour })) {
          if (await this.#blobs.delete(this.container, blob.name)) deleted++;
        }
      } else {
        deleted += (await this.#removeEntries(hour, (e) => Date.parse(e.time) < before.getTime())).blobsDeleted;
      }
    }
    return deleted;
  }

  /** Removes the entries `predicate` selects (e.g. records a resync has now applied); returns how many. */
  async deleteFailureEntries(
    profileId: string,
    predicate: (entry: FailureEntry) => boolean,
    range: FailureRange = {},
  ): Promise<number> {
    assertProfileId(profileId);
    let removed = 0;
    for await (const hour of this.#hourFolders(profileId, range)) {
      removed += (await this.#removeEntries(hour, (e) => inRange(e, range) && predicate(e))).entries;
    }
    return removed;
  }

  async #removeEntries(
    hour: string,
    predicate: (entry: FailureEntry) => boolean,
  ): Promise<{ entries: number; blobsDeleted: number }> {
    const total = { entries: 0, blobsDeleted: 0 };
    for (const blob of await this.#readFolder(hour)) {
      const result = await this.#rewrite(blob.name, blob, predicate);
      total.entries += result.entries;
      if (result.blobDeleted) total.blobsDeleted++;
    }
    return total;
  }

  /** Rewrites one blob without the selected entries, conditional on its ETag; re-reads if it changed meanwhile. */
  async #rewrite(
    name: string,
    current: { entries: FailureEntry[]; etag: string } | undefined,
    predicate: (entry: FailureEntry) => boolean,
  ): Promise<{ entries: number; blobDeleted: boolean }> {
    for (let attempt = 0; attempt < 5; attempt++) {
      current ??= await this.#readBlob(name);
      if (!current) return { entries: 0, blobDeleted: false };
      const kept = current.entries.filter((e) => !predicate(e));
      const entries = current.entries.length - kept.length;
      if (entries === 0) return { entries, blobDeleted: false };
      try {
        if (kept.length === 0) {
          await this.#blobs.delete(this.container, name, { ifMatch: current.etag });
          return { entries, blobDeleted: true };
        }
        await this.#blobs.upload(this.container, name, Buffer.from(JSON.stringify(kept)), {
          contentType: 'application/json',
          ifMatch: current.etag,
        });
        return { entries, blobDeleted: false };
      } catch (err) {
        if (statusOf(err) !== 412) throw err;
        current = undefined;
      }
    }
    throw new AppError('CONFLICT', `Failure-log blob '${name}' kept changing while entries were being removed.`);
  }

  async #readFolder(hour: string): Promise<{ name: string; entries: FailureEntry[]; etag: string }[]> {
    const names: string[] = [];
    for await (const blob of this.#blobs.list(this.container, { prefix: hour })) names.push(blob.name);
    const out: { name: string; entries: FailureEntry[]; etag: string }[] = [];
    for (let i = 0; i < names.length; i += READ_CONCURRENCY) {
      const read = await Promise.all(
        names.slice(i, i + READ_CONCURRENCY).map(async (name) => {
          const blob = await this.#readBlob(name);
          return blob && { name, ...blob };
        }),
      );
      for (const blob of read) if (blob) out.push(blob);
    }
    return out;
  }

  async #readBlob(name: string): Promise<{ entries: FailureEntry[]; etag: string } | undefined> {
    const blob = await this.#blobs.download(this.container, name);
    if (!blob) return undefined;
    const entries: unknown = JSON.parse(blob.data.toString('utf8'));
    if (!Array.isArray(entries))
      throw new AppError('INTERNAL', `Failure-log blob '${name}' does not hold a JSON array.`);
    return { entries: entries as FailureEntry[], etag: blob.etag };
  }

  /** Hour folders (`<profileId>/yyyy/MM/dd/HH/`) overlapping the range, newest first, found level by level. */
  #hourFolders(profileId: string, range: FailureRange): AsyncGenerator<string> {
    return this.#walk(`${profileId}/`, `${profileId}/`, range);
  }

  async *#walk(root: string, prefix: string, range: FailureRange): AsyncGenerator<string> {
    const children = (await this.#blobs.folders(this.container, prefix)).sort().reverse();
    for (const child of children) {
      const path = child.slice(root.length);
      const span = spanOfPath(path);
      if (!span) continue;
      if (range.from && span.end.getTime() <= range.from.getTime()) continue;
      if (range.to && span.start.getTime() > range.to.getTime()) continue;
      if (path.split('/').length === 5) yield child;
      else yield* this.#walk(root, child, range);
    }
  }
}

/** The entries as CSV (RFC 4180: header row, CRLF, fields quoted when they hold a comma, quote or line break). */
export function failuresToCsv(entries: FailureEntry[]): string {
  return stringify(entries, {
    header: true,
    record_delimiter: 'windows',
    columns: [
      { key: 'time', header: 'Time' },
      { key: 'profileId', header: 'ProfileId' },
      { key: 'entity', header: 'Entity' },
      { key: 'recordId', header: 'RecordId' },
      { key: 'changeType', header: 'ChangeType' },
      { key: 'code', header: 'Code' },
      { key: 'reason', header: 'Reason' },
      { key: 'attempts', header: 'Attempts' },
      { key: 'correlationId', header: 'CorrelationId' },
    ],
  });
}

function inRange(entry: FailureEntry, range: FailureRange): boolean {
  const t = Date.parse(entry.time);
  return (!range.from || t >= range.from.getTime()) && (!range.to || t <= range.to.getTime());
}

function newestFirst(a: FailureEntry, b: FailureEntry): number {
  return a.time < b.time ? 1 : a.time > b.time ? -1 : 0;
}

/** A malformed id must never widen a prefix (an empty id would select the whole container). */
export function assertProfileId(profileId: string): void {
  if (!isFailureLogProfileId(profileId)) {
    throw new AppError('VALIDATION_FAILED', `'${profileId}' is not a valid profile id for the failure log.`, {
      details: [{ field: 'profileId', message: 'letters, digits, - and _ only (1-128)', value: profileId }],
    });
  }
}
