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
import { accountContact, account as accountEntity, contact as contactEntity } from './schema.js';
import { type Faults, type RequestStats, SampleOrgHandler, type WriteEvent } from './server.js';
import { OrgStore } from './store.js';
import { type WebhookDelivery, WebhookDispatcher } from './webhook.js';

export const DEFAULT_ORGANIZATION_ID = '6f2d5c1e-8a4b-4c3d-9e2f-1a2b3c4d5e6f';
export const DEFAULT_SEED = 42;
export const DEFAULT_COUNTS = { account: 500, contact: 1500 } as const;

export interface SampleOrgOptions {
  port?: number;
  organizationId?: string;
  seed?: number;
  counts?: { account?: number; contact?: number };
  webhookUrl?: string;
  webhookKey?: string;
  /** Delay before every entity-set page (to test slow sources). */
  pageDelayMs?: number;
  /**
   * What a webhook carries for Create/Update: `full` = the row's non-null columns (a step with an all-columns
   * post-image), `changed` = only the columns the request set (Target only, no post-image).
   */
  webhookImages?: 'full' | 'changed';
}

export type SampleOrgCounts = { account: number; contact: number; new_accountcontact: number };

export interface SampleOrg {
  /** `http://127.0.0.1:<port>`; the Web API is under `${url}/api/data/v9.2/`. */
  url: string;
  organizationId: string;
  seed: number;
  /** Generated rows per table (writes since start not included). */
  counts: SampleOrgCounts;
  setWebhook(url: string | undefined, key?: string): void;
  faults: {
    /** The next n requests answer 429 with `Retry-After: retryAfterSeconds`. */
    throttleNext(n: number, retryAfterSeconds?: number): void;
    /** The next n requests answer `status` (default 503). */
    failNext(n: number, status?: number): void;
    /** The next n requests lose their connection without an answer (the client sees ECONNRESET). */
    resetNext(n: number): void;
    /** Every entity-set page waits this long first (0 turns it off). */
    slowPages(ms: number): void;
    /** Every delta token handed out so far answers "expired" (0x80044352). */
    expireDeltaTokens(): void;
    /** Clears all of the above. */
    reset(): void;
  };
  /** Webhook deliveries still in flight. */
  pendingWebhooks(): number;
  /** Resolves when every queued webhook delivery has finished (with its retries). */
  drain(): Promise<void>;
  /** Finished webhook deliveries, oldest first. */
  webhookDeliveries(): readonly WebhookDelivery[];
  /** Requests served since start, and how many of them a fault answered. */
  stats(): Readonly<RequestStats>;
  /** The current global row version (the last one handed out). */
  currentVersion(): string;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export async function startSampleOrg(options: SampleOrgOptions = {}): Promise<SampleOrg> {
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
  };
  const webhooks = new WebhookDispatcher();
  webhooks.setTarget(options.webhookUrl, options.webhookKey);
  const images = options.webhookImages ?? 'full';

  const onWrite = (event: WriteEvent) => {
    if (!webhooks.enabled) return;
    const correlationId = randomUUID();
    const attributes =
      event.messageName === 'Create' || event.messageName === 'Update'
        ? webhookAttributes(images === 'full' ? event.postImage : event.attributes, images === 'full')
        : undefined;
    const context = buildRemoteExecutionContext({
      organizationId,
      messageName: event.messageName,
      entity: event.entity.logicalName,
      id: event.id,
      attributes,
      includePostImage:
        event.messageName === 'Create' || event.messageName === 'Update' ? images === 'full' : undefined,
      versionNumber: event.messageName === 'Delete' ? undefined : event.versionNumber,
      modifiedOn: event.modifiedOn,
      operationTime: event.operationTime,
      correlationId,
      relationship: event.relationship,
    });
    webhooks.fire(serializeRemoteExecutionContext(context), {
      messageName: event.messageName,
      entity: event.entity.logicalName,
      id: event.id,
      organizationId,
      correlationId,
    });
  };

  const handler = new SampleOrgHandler(store, faults, organizationId, onWrite);
  const server = createServer((req, res) => {
    void handler.handle(req, res);
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  handler.baseUrl = url;

  const stop = async () => {
    await webhooks.drain();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };

  return {
    url,
    organizationId,
    seed,
    counts,
    setWebhook: (webhookUrl, key) => webhooks.setTarget(webhookUrl, key),
    faults: {
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
      expireDeltaTokens: () => store.expireDeltaTokens(),
      reset: () => {
        faults.throttle.remaining = 0;
        faults.fail.remaining = 0;
        faults.reset.remaining = 0;
        faults.pageDelayMs = 0;
      },
    },
    pendingWebhooks: () => webhooks.pendingCount,
    drain: () => webhooks.drain(),
    webhookDeliveries: () => webhooks.deliveries,
    stats: () => ({ ...handler.stats }),
    currentVersion: () => String(store.version),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** The columns a webhook carries: without versionnumber (sent separately), and without nulls for an image. */
function webhookAttributes(row: TypedRow | undefined, dropNulls: boolean): TypedRow | undefined {
  if (!row) return undefined;
  const out: TypedRow = {};
  for (const [k, v] of Object.entries(row)) {
    if (k === 'versionnumber' || (dropNulls && v.type === 'null')) continue;
    out[k] = v;
  }
  return out;
}
