import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { type SampleOrg, startSampleOrg } from '../../dev/sample-org/index.js';
import { createDataverseClient, type DataverseClient } from '../../lib/dataverse/webapi/client.js';
import { silentLogger } from '../../lib/log.js';
import type { ControlStore } from '../../lib/profiles/control-store.js';
import { openPostgresControlStore } from '../../lib/profiles/postgres-control-store.js';
import { type ExportProfile, withDefaults } from '../../lib/profiles/schema.js';
import { openSink, type Sink } from '../../lib/sink/index.js';
import { FailureLog } from '../../lib/storage/failure-log.js';
import { completeEntity, copyEntityPages, planInitialSync } from '../../lib/sync/initial-sync.js';
import type { SyncDeps } from '../../lib/sync/ports.js';
import { type ReconcileDeps, reconcileActiveProfiles, reconcileProfile } from '../../lib/sync/reconcile.js';
import { createTestStorage, stopOwnAzurite } from '../support/azurite.js';
import { createTestDatabase, stopOwnServer, type TestDatabase } from '../support/postgres.js';

interface Stack extends AsyncDisposable {
  org: SampleOrg;
  db: TestDatabase;
  store: ControlStore;
  client: DataverseClient;
  profile: ExportProfile;
  deps: ReconcileDeps;
  copiesStarted: string[];
}

/** Sample org → PostgreSQL target (and control store), the account table already copied. */
async function startCopiedStack(): Promise<Stack> {
  const org = await startSampleOrg({ counts: { account: 400, contact: 10 } });
  const db = await createTestDatabase();
  const storage = await createTestStorage();
  const store = await openPostgresControlStore(db.url);
  await store.migrate();
  const sink: Sink = await openSink({
    kind: 'postgres',
    connectionString: db.url,
    schema: 'public',
    tablePrefix: '',
    writeDeleteLog: true,
  });
  const client = createDataverseClient({
    url: org.url,
    logger: silentLogger,
    retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 500 },
  });
  const created = await store.createProfile(
    withDefaults({
      name: 'reconcile test',
      organizationId: org.organizationId,
      source: { url: org.url },
      target: { kind: 'postgres', connectionSecret: 'target' },
      entities: ['account'],
    }),
  );
  const profile = (await store.setProfileState(created.id, 'Active'))!;
  const copiesStarted: string[] = [];
  const deps: ReconcileDeps = {
    store,
    dataverseFor: () => client,
    sinkFor: async () => sink,
    failureLog: new FailureLog({ blobs: storage.blobs, container: storage.container('failurelog') }),
    logger: silentLogger,
    pageSize: 150,
    startInitialSync: async (p) => {
      copiesStarted.push(p.id);
    },
  };
  await copyAll(deps, profile.id);
  return {
    org,
    db,
    store,
    client,
    profile,
    deps,
    copiesStarted,
    async [Symbol.asyncDispose]() {
      await org.stop();
      await sink.close();
      await store.close();
      await storage[Symbol.asyncDispose]();
      await db[Symbol.asyncDispose]();
    },
  };
}

/** What the initialSync orchestration does for a profile, run inline. */
async function copyAll(deps: SyncDeps, profileId: string): Promise<void> {
  for (const entity of await planInitialSync(deps, profileId)) {
    while (!(await copyEntityPages(deps, profileId, entity, 2)).done);
    await completeEntity(deps, profileId, entity);
  }
}

async function write(org: SampleOrg, method: string, path: string, body?: unknown): Promise<void> {
  const res = await fetch(`${org.url}/api/data/v9.2/${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${await res.text()}`);
}

/** id → versionnumber of every account, in the source and in the target. */
async function versions(stack: Stack): Promise<{ source: Map<string, string>; target: Map<string, string> }> {
  const source = new Map<string, string>();
  for await (const page of stack.client.readPages('account', { pageSize: 5000 })) {
    for (const row of page.rows) source.set(row.recordId, row.version.rowVersion ?? '');
  }
  const { rows } = await stack.db.pool.query('SELECT id, versionnumber FROM public.account');
  return { source, target: new Map(rows.map((r) => [String(r.id), String(r.versionnumber)])) };
}

async function accountIds(stack: Stack, n: number): Promise<string[]> {
  const { rows } = await stack.db.pool.query('SELECT id FROM public.account ORDER BY id LIMIT $1', [n]);
  return rows.map((r) => String(r.id));
}

// Run on its own, a file starts private servers; stopping them lets the process end.
after(async () => {
  await stopOwnServer();
  await stopOwnAzurite();
});

describe('reconcile', () => {
  it('heals creates, updates and deletes that no webhook delivered', async () => {
    await using stack = await startCopiedStack();
    const { org, profile } = stack;
    const [updated, deleted] = await accountIds(stack, 2);
    const before = await stack.store.getCheckpoint(profile.id, 'account');
    await write(org, 'PATCH', `accounts(${updated})`, { name: 'Renamed without a webhook' });
    await write(org, 'DELETE', `accounts(${deleted})`);
    await write(org, 'POST', 'accounts', { name: 'Created without a webhook' });

    const result = await reconcileProfile(stack.deps, profile.id);
    assert.deepEqual(
      result.entities.map((e) => [e.entity, e.outcome, e.applied, e.failed]),
      [['account', 'reconciled', 3, 0]],
    );
    assert.equal(result.copyStarted, false);
    const { source, target } = await versions(stack);
    assert.deepEqual(target, source);
    assert.equal(target.has(deleted), false);
    const { rows } = await stack.db.pool.query('SELECT name FROM public.account WHERE id = $1', [updated]);
    assert.equal(rows[0].name, 'Renamed without a webhook');
    const after = await stack.store.getCheckpoint(profile.id, 'account');
    assert.notEqual(after?.deltaLink, before?.deltaLink, 'the new delta link is stored');
    const [status] = await stack.store.entityStatuses(profile.id);
    assert.equal(status.received, 3);
    assert.equal(status.applied, 3);

    // Nothing new: the stored delta link returns nothing to apply.
    const again = await reconcileProfile(stack.deps, profile.id);
    assert.deepEqual(
      again.entities.map((e) => [e.outcome, e.applied, e.stale]),
      [['reconciled', 0, 0]],
    );
  });

  it('sends an entity whose delta token expired back to a full copy, which ends equal to the source', async () => {
    await using stack = await startCopiedStack();
    const { org, profile } = stack;
    const [updated] = await accountIds(stack, 1);
    org.faults.expireDeltaTokens();
    await write(org, 'PATCH', `accounts(${updated})`, { name: 'Changed while the token expired' });

    const result = await reconcileProfile(stack.deps, profile.id);
    assert.deepEqual(
      result.entities.map((e) => [e.entity, e.outcome]),
      [['account', 'recopy']],
    );
    assert.equal(result.copyStarted, true);
    assert.deepEqual(stack.copiesStarted, [profile.id]);
    const [queued] = await stack.store.entityStatuses(profile.id);
    assert.equal(queued.syncState, 'Queued');
    assert.match(queued.lastError ?? '', /expired/);
    assert.equal(await stack.store.getCheckpoint(profile.id, 'account'), undefined);

    // The copy the orchestration would run now.
    await copyAll(stack.deps, profile.id);
    const { source, target } = await versions(stack);
    assert.deepEqual(target, source);
    const [completed] = await stack.store.entityStatuses(profile.id);
    assert.equal(completed.syncState, 'Completed');
    assert.equal(completed.rowsCopied, org.counts.account);
    const again = await reconcileProfile(stack.deps, profile.id);
    assert.deepEqual(
      again.entities.map((e) => [e.outcome, e.applied]),
      [['reconciled', 0]],
    );
  });

  it('reconciles every active profile and leaves inactive ones alone', async () => {
    await using stack = await startCopiedStack();
    const { org, profile } = stack;
    const [updated] = await accountIds(stack, 1);
    await write(org, 'PATCH', `accounts(${updated})`, { name: 'Healed by the timer' });
    const inactive = await stack.store.createProfile(
      withDefaults({
        name: 'inactive',
        organizationId: org.organizationId,
        source: { url: org.url },
        target: { kind: 'postgres', connectionSecret: 'target' },
        entities: ['contact'],
      }),
    );
    const results = await reconcileActiveProfiles(stack.deps);
    assert.deepEqual(
      results.map((r) => r.profileId),
      [profile.id],
    );
    assert.notEqual(inactive.id, profile.id);
    const { rows } = await stack.db.pool.query('SELECT name FROM public.account WHERE id = $1', [updated]);
    assert.equal(rows[0].name, 'Healed by the timer');
  });
});
