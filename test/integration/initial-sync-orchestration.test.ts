import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DevHost, loadFunctionApp } from '../../dev/host/index.js';
import { type SampleOrg, startSampleOrg } from '../../dev/sample-org/index.js';
import { createLogger } from '../../lib/log.js';
import type { ControlStore } from '../../lib/profiles/control-store.js';
import { openPostgresControlStore } from '../../lib/profiles/postgres-control-store.js';
import { type ExportProfile, withDefaults } from '../../lib/profiles/schema.js';
import { closeRuntime } from '../../lib/runtime.js';
import { type InitialSyncOutput, initialSyncInstanceId } from '../../lib/sync/initial-sync-orchestration.js';
import { stopOwnAzurite, testAzuriteConnectionString } from '../support/azurite.js';
import { createTestDatabase, stopOwnServer, type TestDatabase } from '../support/postgres.js';

const functionFile = (name: string) => fileURLToPath(new URL(`../../functions/${name}.js`, import.meta.url));
const SubOrchestrationInstanceCreated = 7;
const TaskScheduled = 4;

/**
 * The app's own registrations (functions/initial-sync.ts, functions/reconcile.ts) run by the development
 * host on durable-functions' replay engine, against the sample org and an embedded PostgreSQL.
 */
// Run on its own, a file starts private servers; stopping them lets the process end.
after(async () => {
  await stopOwnServer();
  await stopOwnAzurite();
});

describe('initialSync orchestration in the development host', () => {
  let org: SampleOrg;
  let db: TestDatabase;
  let store: ControlStore;
  let host: DevHost;
  let profile: ExportProfile;
  const saved = { ...process.env };

  before(async () => {
    org = await startSampleOrg();
    db = await createTestDatabase();
    Object.assign(process.env, {
      ControlStoreKind: 'postgres',
      ControlStoreConnection: db.url,
      ServiceBusConnection:
        'Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=x;SharedAccessKey=y;UseDevelopmentEmulator=true',
      PayloadStorageConnection: await testAzuriteConnectionString(),
      LocalSecrets: JSON.stringify({ target: db.url, 'payload-encryption-key': randomBytes(32).toString('base64') }),
      DataverseCredential: 'none',
      AllowLoopbackDataverse: 'true',
      ReconcileSchedule: '0 0 0 1 1 *',
      LogLevel: 'error',
    });
    store = await openPostgresControlStore(db.url);
    await store.migrate();
    const created = await store.createProfile(
      withDefaults({
        name: 'orchestration test',
        organizationId: org.organizationId,
        source: { url: org.url },
        target: { kind: 'postgres', connectionSecret: 'target' },
        entities: ['account', 'contact'],
      }),
    );
    profile = (await store.setProfileState(created.id, 'Active'))!;
    const registry = await loadFunctionApp([functionFile('initial-sync'), functionFile('reconcile')]);
    host = new DevHost(registry, {
      functionKey: 'sync-test-key',
      logger: createLogger({ level: 'error', sink: () => {} }),
      timers: false,
      serviceBus: false,
    });
    await host.start();
  });

  after(async () => {
    await host?.stop();
    await closeRuntime();
    await store?.close();
    await org?.stop();
    await db?.[Symbol.asyncDispose]();
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
  });

  async function count(table: string): Promise<number> {
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM public.${table}`);
    return rows[0].n as number;
  }

  it('copies every entity in parallel lanes that continue as new, and reports progress', async () => {
    const instanceId = initialSyncInstanceId(profile.id);
    host.durable.startNew(
      'initialSync',
      instanceId,
      JSON.stringify({ profileId: profile.id, parallelism: 2, pagesPerCall: 2, callsPerGeneration: 2, pageSize: 100 }),
    );
    const status = await host.durable.waitForCompletion(instanceId, 60_000);
    assert.equal(status.runtimeStatus, 'Completed', JSON.stringify(status.output));
    const output = status.output as InitialSyncOutput;
    assert.deepEqual(output.completed.sort(), ['account', 'contact']);
    assert.deepEqual([output.failed, output.stopped], [[], []]);
    assert.deepEqual(status.customStatus, { stage: 'done', ...output });
    assert.equal(await count('account'), org.counts.account);
    assert.equal(await count('contact'), org.counts.contact);
    const statuses = await store.entityStatuses(profile.id);
    assert.deepEqual(
      statuses.map((s) => [s.entity, s.syncState, s.rowsCopied]),
      [
        ['account', 'Completed', org.counts.account],
        ['contact', 'Completed', org.counts.contact],
      ],
    );

    // 15 pages of contacts at 2 per call: the lane continued as new, so its last history is short.
    const history = host.durable.status(instanceId, { showHistory: true }).history as {
      EventType: number;
      InstanceId?: string;
    }[];
    const lanes = history.filter((e) => e.EventType === SubOrchestrationInstanceCreated).map((e) => e.InstanceId!);
    assert.equal(lanes.length, 2);
    for (const lane of lanes) {
      const laneHistory = host.durable.status(lane, { showHistory: true }).history as { EventType: number }[];
      assert.ok(laneHistory.filter((e) => e.EventType === TaskScheduled).length <= 3, JSON.stringify(laneHistory));
    }
  });

  it('restarts the copy from the reconcile timer when the delta tokens have expired', async () => {
    const patch = await fetch(`${org.url}/api/data/v9.2/accounts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Created while the tokens expired' }),
    });
    assert.equal(patch.status, 204);
    org.faults.expireDeltaTokens();
    await host.fireTimer('reconcile');
    const instanceId = initialSyncInstanceId(profile.id);
    const status = await host.durable.waitForCompletion(instanceId, 60_000);
    assert.equal(status.runtimeStatus, 'Completed', JSON.stringify(status.output));
    assert.deepEqual((status.output as InitialSyncOutput).completed.sort(), ['account', 'contact']);
    assert.equal(await count('account'), org.counts.account + 1);
    const statuses = await store.entityStatuses(profile.id);
    assert.deepEqual(
      statuses.map((s) => s.syncState),
      ['Completed', 'Completed'],
    );
  });
  it('marks a table Dataverse does not know Failed, naming it, and still copies the others', async () => {
    const created = await store.createProfile(
      withDefaults({
        name: 'with an unknown table',
        organizationId: org.organizationId,
        source: { url: org.url },
        target: { kind: 'postgres', connectionSecret: 'target', tablePrefix: 'second' },
        entities: ['account', 'nosuchtable'],
      }),
    );
    const second = (await store.setProfileState(created.id, 'Active'))!;
    const instanceId = initialSyncInstanceId(second.id);
    host.durable.startNew('initialSync', instanceId, JSON.stringify({ profileId: second.id }));
    const status = await host.durable.waitForCompletion(instanceId, 60_000);
    assert.equal(status.runtimeStatus, 'Completed', JSON.stringify(status.output));
    assert.deepEqual((status.output as InitialSyncOutput).completed, ['account']);
    const [account, unknown] = await store.entityStatuses(second.id);
    // The org has one account more than it was seeded with: the test before created it.
    assert.deepEqual([account.syncState, account.rowsCopied], ['Completed', org.counts.account + 1]);
    assert.equal(await count('second_account'), org.counts.account + 1);
    assert.equal(unknown.syncState, 'Failed');
    assert.match(unknown.lastError ?? '', /nosuchtable/);
  });
  it('ends at once, copying nothing, when every table is already copied', async () => {
    const instanceId = initialSyncInstanceId(profile.id);
    host.durable.startNew('initialSync', instanceId, JSON.stringify({ profileId: profile.id }));
    const status = await host.durable.waitForCompletion(instanceId, 10_000);
    assert.equal(status.runtimeStatus, 'Completed', JSON.stringify(status.output));
    assert.deepEqual(status.output, { profileId: profile.id, completed: [], failed: [], stopped: [] });
  });

  it('copies large entities by partitions inside the lane activities, with a bounded history', async () => {
    const created = await store.createProfile(
      withDefaults({
        name: 'partitioned',
        organizationId: org.organizationId,
        source: { url: org.url },
        target: { kind: 'postgres', connectionSecret: 'target', tablePrefix: 'parts' },
        entities: ['account', 'contact'],
      }),
    );
    const parts = (await store.setProfileState(created.id, 'Active'))!;
    const instanceId = initialSyncInstanceId(parts.id);
    host.durable.startNew(
      'initialSync',
      instanceId,
      JSON.stringify({
        profileId: parts.id,
        parallelism: 2,
        pagesPerCall: 2,
        callsPerGeneration: 2,
        pageSize: 100,
        partitionMinRows: 500,
      }),
    );
    const status = await host.durable.waitForCompletion(instanceId, 60_000);
    assert.equal(status.runtimeStatus, 'Completed', JSON.stringify(status.output));
    assert.deepEqual((status.output as InitialSyncOutput).completed.sort(), ['account', 'contact']);
    const accounts = await count('parts_account');
    assert.equal(await count('parts_contact'), org.counts.contact);
    const statuses = await store.entityStatuses(parts.id);
    assert.deepEqual(
      statuses.map((s) => [s.entity, s.syncState, s.rowsCopied]),
      [
        ['account', 'Completed', accounts],
        ['contact', 'Completed', org.counts.contact],
      ],
    );
    const partitions = await store.copyPartitions(parts.id, 'contact');
    assert.ok(partitions.length > 2 && partitions.every((p) => p.done), JSON.stringify(partitions));
    assert.equal(
      partitions.reduce((n, p) => n + p.rowsCopied, 0),
      org.counts.contact,
    );
    // The change-tracked id read started at the plan: it ends in a delta link here or in reconcile.
    const tracked = await store.getCheckpoint(parts.id, 'contact');
    assert.ok(tracked && (tracked.deltaLink || tracked.nextLink) && tracked.pagesDone >= 1);
    const history = host.durable.status(instanceId, { showHistory: true }).history as {
      EventType: number;
      InstanceId?: string;
    }[];
    for (const lane of history.filter((e) => e.EventType === SubOrchestrationInstanceCreated)) {
      const laneHistory = host.durable.status(lane.InstanceId!, { showHistory: true }).history as {
        EventType: number;
      }[];
      assert.ok(laneHistory.filter((e) => e.EventType === TaskScheduled).length <= 3, JSON.stringify(laneHistory));
    }
  });
});
