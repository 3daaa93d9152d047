/**
 * The parts the sync tests (initial sync, reconcile, resync) run against: the sample org as the source, a
 * PostgreSQL database as control store and target, an Azurite failure log, and an Active profile, wired as
 * the SyncDeps the orchestration's activities receive.
 */
import assert from 'node:assert/strict';
import type { GeneratedCounts } from '../../dev/sample-org/generate.js';
import { type SampleOrg, startSampleOrg } from '../../dev/sample-org/index.js';
import { createDataverseClient, type DataverseClient } from '../../lib/dataverse/webapi/client.js';
import type { RetryPolicy } from '../../lib/dataverse/webapi/http.js';
import { silentLogger } from '../../lib/log.js';
import type { ControlStore } from '../../lib/profiles/control-store.js';
import { openPostgresControlStore } from '../../lib/profiles/postgres-control-store.js';
import { type ExportProfile, type ProfileInput, withDefaults } from '../../lib/profiles/schema.js';
import { openSink, type Sink } from '../../lib/sink/index.js';
import { FailureLog } from '../../lib/storage/failure-log.js';
import { completeEntity, copyEntityPages, planInitialSync } from '../../lib/sync/initial-sync.js';
import type { PartitionSettings } from '../../lib/sync/partitioned-copy.js';
import type { DataverseSource, SyncDeps } from '../../lib/sync/ports.js';
import { createTestStorage } from './azurite.js';
import { createTestDatabase, type TestDatabase } from './postgres.js';

export interface SyncStackOptions {
  /** The profile's name, for logs. */
  name: string;
  entities: string[];
  relationships?: string[];
  /** The profile's options (`initialSync`, `retryCount`, …) where they differ from the defaults. */
  options?: ProfileInput['options'];
  /** Sample org size; its defaults otherwise. */
  counts?: Partial<Pick<GeneratedCounts, 'account' | 'contact'>>;
  /** Rows per page the copy asks for. */
  pageSize?: number;
  retry?: Partial<RetryPolicy>;
  /** Wraps the client the copy reads through (to count or disturb its reads). */
  source?: (client: DataverseClient) => DataverseSource;
  /** When and how large entities are read as id ranges; the defaults otherwise. */
  partitions?: PartitionSettings;
}

export interface SyncStack extends AsyncDisposable {
  org: SampleOrg;
  db: TestDatabase;
  store: ControlStore;
  sink: Sink;
  /** The plain client, for reading the source after the fact. */
  client: DataverseClient;
  failureLog: FailureLog;
  profile: ExportProfile;
  deps: SyncDeps;
}

/** Retries quick enough for tests that ride out injected faults. */
export const FAST_RETRY: RetryPolicy = { maxAttempts: 6, baseDelayMs: 10, maxDelayMs: 2_000 };

export async function startSyncStack(options: SyncStackOptions): Promise<SyncStack> {
  const org = await startSampleOrg(options.counts ? { counts: options.counts } : {});
  const db = await createTestDatabase();
  const storage = await createTestStorage();
  const store = await openPostgresControlStore(db.url);
  await store.migrate();
  const sink = await openSink({
    kind: 'postgres',
    connectionString: db.url,
    schema: 'public',
    tablePrefix: '',
    writeDeleteLog: true,
  });
  const client = createDataverseClient({ url: org.url, logger: silentLogger, retry: options.retry ?? FAST_RETRY });
  const created = await store.createProfile(
    withDefaults({
      name: options.name,
      organizationId: org.organizationId,
      source: { url: org.url },
      target: { kind: 'postgres', connectionSecret: 'target' },
      entities: options.entities,
      ...(options.relationships ? { relationships: options.relationships } : {}),
      ...(options.options ? { options: options.options } : {}),
    }),
  );
  const profile = (await store.setProfileState(created.id, 'Active'))!;
  const source = options.source?.(client) ?? client;
  const failureLog = new FailureLog({ blobs: storage.blobs, container: storage.container('failurelog') });
  const deps: SyncDeps = {
    store,
    dataverseFor: () => source,
    sinkFor: async () => sink,
    failureLog,
    logger: silentLogger,
    ...(options.pageSize ? { pageSize: options.pageSize } : {}),
    ...(options.partitions ? { partitions: options.partitions } : {}),
  };
  return {
    org,
    db,
    store,
    sink,
    client,
    failureLog,
    profile,
    deps,
    async [Symbol.asyncDispose]() {
      await org.stop();
      await sink.close();
      await store.close();
      await storage[Symbol.asyncDispose]();
      await db[Symbol.asyncDispose]();
    },
  };
}

/** Runs the copy of one entity to its end the way the lane orchestration does, a few pages per call. */
export async function copyToEnd(deps: SyncDeps, profileId: string, entity: string, pagesPerCall = 3): Promise<number> {
  let rows = 0;
  for (;;) {
    const result = await copyEntityPages(deps, profileId, entity, pagesPerCall);
    rows += result.rows;
    if (result.done) {
      await completeEntity(deps, profileId, entity);
      return rows;
    }
  }
}

/** What the initialSync orchestration does for a profile (plan, then every entity to its end), run inline. */
export async function copyAll(deps: SyncDeps, profileId: string, pagesPerCall = 2): Promise<void> {
  for (const entity of await planInitialSync(deps, profileId)) await copyToEnd(deps, profileId, entity, pagesPerCall);
}

/** A write through the sample org's Web API, as a user of Dataverse makes it; fails the test if refused. */
/** The store as a worker sees it that dies after `saves` partition pages are saved: later saves throw. */
export function dyingAfter(store: ControlStore, saves: number): ControlStore {
  let saved = 0;
  return {
    ...store,
    savePartitionProgress: async (progress, rows) => {
      if (++saved > saves) throw new Error('worker killed');
      return store.savePartitionProgress(progress, rows);
    },
  };
}

/**
 * After a crash and the resumed copy, from the range reads of both: the pages in flight at the crash were
 * read again, and at most one page per partition was.
 */
export function assertRereadsWithin(
  reads: ReadonlyArray<{ filter: string | null }>,
  readBeforeResume: number,
  partitions: number,
): void {
  const filters = reads.map((r) => r.filter ?? '');
  const twice = filters.filter((f, i) => filters.indexOf(f) !== i).length;
  assert.ok(twice >= 1, 'the pages in flight at the crash were read again');
  assert.ok(twice <= partitions, `${twice} pages read twice, more than one per partition (${partitions})`);
  assert.ok(reads.length > readBeforeResume);
}

export async function writeToOrg(org: SampleOrg, method: string, path: string, body?: unknown): Promise<void> {
  const res = await fetch(`${org.url}/api/data/v9.2/${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${await res.text()}`);
}
