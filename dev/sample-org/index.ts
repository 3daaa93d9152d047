/**
 * A local stand-in for a Dataverse organization (docs/architecture.md §6): the Web API subset the exporter calls,
 * seeded with deterministic accounts, contacts and account–contact associations, taking writes and firing
 * the RemoteExecutionContext webhook like an asynchronous plug-in step. See README.md in this folder.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildRemoteExecutionContext, serializeRemoteExecutionContext } from '../dataverse-payloads.js';
import { associationCount, type TypedRow } from './generate.js';
import { checkLatency, type PageLatency } from './latency.js';
import { type ProtectionStats, ServiceProtection, type ServiceProtectionLimits } from './limits.js';
import {
  METADATA_CHANGE_PATH,
  type MetadataChanges,
  metadataChanges,
  serveMetadataChange,
} from './metadata-changes.js';
import { RegistrationStore, type StepDelivery } from './registrations.js';
import {
  accountContact,
  account as accountEntity,
  contact as contactEntity,
  entities,
  type SampleEntity,
} from './schema.js';
import { type Faults, type RangeReadStats, type RequestStats, SampleOrgHandler, type WriteEvent } from './server.js';
import { OrgStore } from './store.js';
import { type WebhookDelivery, WebhookDispatcher } from './webhook.js';

export type { PageLatency } from './latency.js';
export { DATAVERSE_LIMITS, type ServiceProtectionLimits } from './limits.js';

/** `GET <url>/_sample/stats` answers `stats()` as JSON. */
export const STATS_PATH = '/_sample/stats';
export const DEFAULT_ORGANIZATION_ID = '6f2d5c1e-8a4b-4c3d-9e2f-1a2b3c4d5e6f';
export const DEFAULT_SEED = 42;
export const DEFAULT_COUNTS = { account: 500, contact: 1500 } as const;

export interface SampleOrgOptions {
  port?: number;
  organizationId?: string;
  seed?: number;
  counts?: { account?: number; contact?: number };
  /**
   * Registers a webhook at this URL by hand, as an administrator would in the Plug-in Registration Tool (steps
   * for every table). Without it, only what the app registers through the Web API fires.
   */
  webhookUrl?: string;
  webhookKey?: string;
  /** Tables that start with change tracking off. */
  changeTrackingOff?: string[];
  /** A file that keeps the plug-in registration across restarts (as an organization keeps its steps). */
  registrationFile?: string;
  /** Delay before every entity-set page (to test slow sources). */
  pageDelayMs?: number;
  /**
   * The images of the hand registration (`webhookUrl`): `full` = an all-columns post-image on Create/Update,
   * `changed` = none, so the webhook carries only the columns the request set (the Target).
   */
  webhookImages?: 'full' | 'changed';
  /**
   * Dataverse's service protection limits (each one off unless set; `DATAVERSE_LIMITS` holds Dataverse's own):
   * requests and execution seconds per sliding window, requests in flight. Beyond one: 429 + Retry-After.
   */
  limits?: ServiceProtectionLimits;
  /** Time each page of rows takes: fixedMs plus perThousandRowsMs per 1,000 rows (counted as execution time). */
  latency?: PageLatency;
}

export type SampleOrgCounts = { account: number; contact: number; new_accountcontact: number };

export interface SampleOrg {
  /** `http://127.0.0.1:<port>`; the Web API is under `${url}/api/data/v9.2/`. */
  url: string;
  organizationId: string;
  seed: number;
  /** Generated rows per table (writes since start not included). */
  counts: SampleOrgCounts;
  /** Replaces the hand registration (see `webhookUrl`); undefined removes it. What the app registered stays. */
  setWebhook(url: string | undefined, key?: string): void;
  faults: {
    /** Every registration write (steps, endpoints, table definitions) answers `status` until reset (403: no privilege). */
    refuseRegistration(status?: number): void;
    /** The next n requests answer 429 with `Retry-After: retryAfterSeconds`. */
    throttleNext(n: number, retryAfterSeconds?: number): void;
    /** The next n requests answer `status` (default 503). */
    failNext(n: number, status?: number): void;
    /** The next n requests lose their connection without an answer (the client sees ECONNRESET). */
    resetNext(n: number): void;
    /** Every entity-set page waits this long first (0 turns it off). */
    slowPages(ms: number): void;
    /** RetrieveTotalRecordCount answers 400 for these tables, so a count comes from `$count` (5,000 at most). */
    noSnapshotCount(...tables: string[]): void;
    /** Every delta token handed out so far answers "expired" (0x80044352). */
    expireDeltaTokens(): void;
    /**
     * Delta tokens handed out from now on keep the `$select` of the tracked read they end, and a delta read
     * answers with those columns whatever `$select` its link has: the strict reading of Dataverse's opaque
     * delta links, under which a link's `$select` cannot be changed.
     */
    deltaKeepsTrackedSelect(): void;
    /** Admitted requests wait, in flight, until the returned function is called (or `reset()`). */
    holdRequests(): () => void;
    /** Clears all of the above. */
    reset(): void;
  };
  /** Changes to the org's metadata at run time (widen an attribute, add an option); undone on stop. */
  metadata: MetadataChanges;
  /** Webhook deliveries still in flight. */
  pendingWebhooks(): number;
  /** Resolves when every queued webhook delivery has finished (with its retries). */
  drain(): Promise<void>;
  /** Finished webhook deliveries, oldest first. */
  webhookDeliveries(): readonly WebhookDelivery[];
  /**
   * Requests served since start, how many a fault answered, and the service protection figures: in flight now,
   * peak in flight (refused ones counted as they arrived), refusals per limit, execution time used.
   */
  stats(): Readonly<RequestStats & ProtectionStats>;
  /** Keyset reads (`$filter`/`$orderby`/`$top` on the primary id) served, in flight, and their log. */
  rangeReads(): Readonly<RangeReadStats>;
  /** The current global row version (the last one handed out). */
  currentVersion(): string;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export async function startSampleOrg(options: SampleOrgOptions = {}): Promise<SampleOrg> {
  const protection = new ServiceProtection(options.limits);
  if (options.latency) checkLatency(options.latency);
  const organizationId = (options.organizationId ?? DEFAULT_ORGANIZATION_ID).toLowerCase();
  const seed = options.seed ?? DEFAULT_SEED;
  const account = options.counts?.account ?? DEFAULT_COUNTS.account;
  const contact = options.counts?.contact ?? DEFAULT_COUNTS.contact;
  const counts: SampleOrgCounts = { account, contact, new_accountcontact: associationCount(account, contact) };
  const store = new OrgStore(seed, counts, {
    account: accountEntity,
    contact: contactEntity,
    new_accountcontact: accountContact,
  });
  const faults: Faults = {
    throttle: { remaining: 0, retryAfterSeconds: 1 },
    fail: { remaining: 0, status: 503 },
    reset: { remaining: 0 },
    pageDelayMs: options.pageDelayMs ?? 0,
    noSnapshotCount: new Set(),
    deltaKeepsTrackedSelect: false,
  };
  let releaseHold = () => {};
  const webhooks = new WebhookDispatcher();
  const images = options.webhookImages ?? 'full';
  let apiBase = '';
  const registrations = new RegistrationStore(() => apiBase, entities, options.registrationFile);
  registrations.registerByHand(options.webhookUrl, options.webhookKey, images);

  /** One delivery per registered, enabled step, carrying the images that step asks for. */
  const deliver = (event: WriteEvent, step: StepDelivery) => {
    const correlationId = randomUUID();
    const upsert = event.messageName === 'Create' || event.messageName === 'Update';
    const postImage = upsert && step.postImage !== undefined;
    const attributes = upsert
      ? postImage
        ? only(webhookAttributes(event.entity, event.postImage, true), step.postImage ?? null)
        : webhookAttributes(event.entity, event.attributes, false)
      : undefined;
    // A Delete's pre-image here holds the deleted row's version (the row itself is gone from the store).
    const preImageVersion =
      event.messageName === 'Delete' &&
      step.preImage !== undefined &&
      (step.preImage === null || step.preImage.includes('versionnumber'));
    const context = buildRemoteExecutionContext({
      organizationId,
      messageName: event.messageName,
      entity: event.entity.logicalName,
      id: event.id,
      attributes,
      includePostImage: upsert ? postImage : undefined,
      versionNumber:
        event.messageName === 'Delete'
          ? preImageVersion
            ? event.versionNumber
            : undefined
          : imageHas(step.postImage, 'versionnumber')
            ? event.versionNumber
            : undefined,
      modifiedOn: upsert && imageHas(step.postImage, 'modifiedon') ? event.modifiedOn : undefined,
      operationTime: event.operationTime,
      correlationId,
      relationship: event.relationship,
      stepId: step.stepId,
    });
    webhooks.fire({ url: step.url, key: step.key }, serializeRemoteExecutionContext(context), {
      messageName: event.messageName,
      entity: event.entity.logicalName,
      id: event.id,
      organizationId,
      correlationId,
    });
  };
  const onWrite = (event: WriteEvent) => {
    for (const step of registrations.deliveriesFor(event.messageName, event.entity.logicalName)) deliver(event, step);
  };

  const handler = new SampleOrgHandler(
    store,
    faults,
    organizationId,
    onWrite,
    registrations,
    new Set(options.changeTrackingOff ?? []),
  );
  handler.protection = protection;
  handler.latency = options.latency;
  const metadata = metadataChanges();
  const stats = () => ({ ...handler.stats, ...protection.stats() });
  const server = createServer((req, res) => {
    if (req.url === METADATA_CHANGE_PATH) void serveMetadataChange(metadata, req, res);
    else if (req.url === STATS_PATH && req.method === 'GET') {
      // Outside the Web API and its limits: how a bench reads the figures of an org in another process.
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(stats()));
    } else void handler.handle(req, res);
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  handler.baseUrl = url;
  apiBase = `${url}/api/data/v9.2/`;

  const stop = async () => {
    metadata.reset();
    releaseHold();
    await webhooks.drain();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };

  return {
    url,
    organizationId,
    seed,
    counts,
    setWebhook: (webhookUrl, key) => registrations.registerByHand(webhookUrl, key, images),
    faults: {
      refuseRegistration: (status = 403) => {
        registrations.refuseWrites = status;
      },
      throttleNext: (n, retryAfterSeconds = 1) => {
        faults.throttle = { remaining: n, retryAfterSeconds };
      },
      failNext: (n, status = 503) => {
        faults.fail = { remaining: n, status };
      },
      resetNext: (n) => {
        faults.reset.remaining = n;
      },
      slowPages: (ms) => {
        faults.pageDelayMs = ms;
      },
      noSnapshotCount: (...tables) => {
        for (const table of tables) faults.noSnapshotCount.add(table);
      },
      expireDeltaTokens: () => store.expireDeltaTokens(),
      deltaKeepsTrackedSelect: () => {
        faults.deltaKeepsTrackedSelect = true;
      },
      holdRequests: () => {
        let release = () => {};
        faults.hold = new Promise<void>((resolve) => {
          release = () => {
            faults.hold = undefined;
            resolve();
          };
        });
        releaseHold = release;
        return release;
      },
      reset: () => {
        releaseHold();
        faults.throttle.remaining = 0;
        faults.fail.remaining = 0;
        faults.reset.remaining = 0;
        faults.pageDelayMs = 0;
        faults.noSnapshotCount.clear();
        faults.deltaKeepsTrackedSelect = false;
        registrations.refuseWrites = undefined;
      },
    },
    metadata,
    pendingWebhooks: () => webhooks.pendingCount,
    drain: () => webhooks.drain(),
    webhookDeliveries: () => webhooks.deliveries,
    stats,
    rangeReads: () => ({ ...handler.rangeReads, log: [...handler.rangeReads.log] }),
    currentVersion: () => String(store.version),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** Whether an image of these columns (null: all; undefined: no image, so the Target decides) holds the column. */
function imageHas(image: string[] | null | undefined, column: string): boolean {
  return image === undefined || image === null || image.includes(column);
}

/** Only the named columns (null: all of them). */
function only(row: TypedRow | undefined, names: string[] | null): TypedRow | undefined {
  if (!row || names === null) return row;
  return Object.fromEntries(Object.entries(row).filter(([k]) => names.includes(k)));
}

/** The columns a webhook carries: without versionnumber (sent separately), and without nulls for an image. */
function webhookAttributes(entity: SampleEntity, row: TypedRow | undefined, dropNulls: boolean): TypedRow | undefined {
  if (!row) return undefined;
  // A stored row still holds the value of an attribute deleted since; Dataverse no longer sends it.
  const current = new Set(entity.attributes.map((a) => a.logicalName));
  const out: TypedRow = {};
  for (const [k, v] of Object.entries(row)) {
    if (k === 'versionnumber' || !current.has(k) || (dropNulls && v.type === 'null')) continue;
    out[k] = v;
  }
  return out;
}
