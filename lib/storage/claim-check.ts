import { randomUUID } from 'node:crypto';
import { AppError } from '../errors.js';
import type { BlobStore } from './blob-store.js';
import { hourPath } from './blob-time-path.js';
import type { PayloadCipher } from './payload-crypto.js';

export const CLAIM_CHECK_CONTAINER = 'claimchecks';

/** What a claim check's blob metadata records about it: never any of the payload. */
export interface ClaimCheckMeta {
  organizationId: string;
  entity: string;
}

export interface ClaimCheckRef {
  /** `yyyy/MM/dd/HH/<uuid>` in the claim-check container. */
  blobName: string;
  /** Size of the stored (encrypted) blob. */
  bytes: number;
}

export interface ClaimCheckInfo extends Partial<ClaimCheckMeta> {
  blobName: string;
  createdOn: Date;
  bytes: number;
}

export interface ClaimCheckStoreOptions {
  blobs: BlobStore;
  cipher: PayloadCipher;
  /** Defaults to `claimchecks`; tests pass their own. */
  container?: string;
  now?: () => Date;
}

const BLOB_NAME = /^\d{4}\/\d{2}\/\d{2}\/\d{2}\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Large changes travel as an encrypted blob plus a reference in the queue message (the claim-check pattern). */
export class ClaimCheckStore {
  readonly container: string;
  readonly #blobs: BlobStore;
  readonly #cipher: PayloadCipher;
  readonly #now: () => Date;

  constructor(options: ClaimCheckStoreOptions) {
    this.#blobs = options.blobs;
    this.#cipher = options.cipher;
    this.container = options.container ?? CLAIM_CHECK_CONTAINER;
    this.#now = options.now ?? (() => new Date());
  }

  async putClaimCheck(json: string, meta: ClaimCheckMeta): Promise<ClaimCheckRef> {
    const created = this.#now();
    const blobName = `${hourPath(created)}${randomUUID()}`;
    const sealed = await this.#cipher.encrypt(json);
    await this.#blobs.upload(this.container, blobName, sealed, {
      metadata: {
        createdon: created.toISOString(),
        organizationid: encodeURIComponent(meta.organizationId),
        entity: encodeURIComponent(meta.entity),
      },
    });
    return { blobName, bytes: sealed.length };
  }

  /** The payload as it was put; CLAIM_CHECK_MISSING when the blob is gone or cannot be decrypted. */
  async getClaimCheck(blobName: string): Promise<string> {
    assertBlobName(blobName);
    const blob = await this.#blobs.download(this.container, blobName);
    if (!blob) {
      throw new AppError(
        'CLAIM_CHECK_MISSING',
        `Claim check '${blobName}' is not in container '${this.container}': it was already applied and removed, or deleted by retention. The change must be re-read from Dataverse (resync).`,
        { details: [{ message: 'blob not found', value: blobName }] },
      );
    }
    return (await this.#cipher.decrypt(blob.data)).toString('utf8');
  }

  /** Removes the blob; true when it existed. Deleting twice is not an error. */
  async deleteClaimCheck(blobName: string): Promise<boolean> {
    assertBlobName(blobName);
    return this.#blobs.delete(this.container, blobName);
  }

  /**
   * Claim checks created before `olderThan`, in pages of at most `pageSize`, hour by hour (oldest hour first;
   * within an hour in name order). Names start with their hour, so the listing stops at the first hour
   * folder that is not older.
   */
  async *listClaimChecks(olderThan: Date, pageSize = 500): AsyncGenerator<ClaimCheckInfo[]> {
    const lastHour = hourPath(olderThan);
    let page: ClaimCheckInfo[] = [];
    for await (const blob of this.#blobs.list(this.container, { pageSize, metadata: true })) {
      if (blob.name.slice(0, lastHour.length) > lastHour) break;
      const createdOn = parseDate(blob.metadata.createdon) ?? blob.createdOn;
      if (!createdOn || createdOn >= olderThan) continue;
      page.push({
        blobName: blob.name,
        createdOn,
        bytes: blob.size,
        organizationId: decodeOptional(blob.metadata.organizationid),
        entity: decodeOptional(blob.metadata.entity),
      });
      if (page.length >= pageSize) {
        yield page;
        page = [];
      }
    }
    if (page.length) yield page;
  }
}

function assertBlobName(blobName: string): void {
  if (!BLOB_NAME.test(blobName)) {
    throw new AppError(
      'CLAIM_CHECK_MISSING',
      `'${blobName}' is not a claim-check reference (expected yyyy/MM/dd/HH/<uuid>). The message was not written by this app or was altered.`,
      { details: [{ message: 'malformed claim-check blob name', value: blobName }] },
    );
  }
}

function parseDate(value: string | undefined): Date | undefined {
  if (!value) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function decodeOptional(value: string | undefined): string | undefined {
  return value === undefined ? undefined : decodeURIComponent(value);
}
