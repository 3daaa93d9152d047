import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { withDefaults } from '../../lib/profiles/schema.js';
import { type ReconcileDeps, reconcileActiveProfiles, reconcileProfile } from '../../lib/sync/reconcile.js';
import { stopOwnAzurite } from '../support/azurite.js';
import { stopOwnServer } from '../support/postgres.js';
import { copyAll, type SyncStack, startSyncStack, writeToOrg } from '../support/sync-stack.js';

interface Stack extends SyncStack {
  deps: ReconcileDeps;
  copiesStarted: string[];
}

/** Sample org → PostgreSQL target (and control store), the account table already copied. */
async function startCopiedStack(): Promise<Stack> {
  const stack = await startSyncStack({
    name: 'reconcile test',
    entities: ['account'],
    counts: { account: 400, contact: 10 },
    pageSize: 150,
    retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 500 },
  });
  const copiesStarted: string[] = [];
  const deps: ReconcileDeps = {
    ...stack.deps,
    startInitialSync: async (p) => {
      copiesStarted.push(p.id);
    },
  };
  await copyAll(deps, stack.profile.id);
  return Object.assign(stack, { deps, copiesStarted });
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
    await writeToOrg(org, 'PATCH', `accounts(${updated})`, { name: 'Renamed without a webhook' });
    await writeToOrg(org, 'DELETE', `accounts(${deleted})`);
    await writeToOrg(org, 'POST', 'accounts', { name: 'Created without a webhook' });

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
    await writeToOrg(org, 'PATCH', `accounts(${updated})`, { name: 'Changed while the token expired' });

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

  it('heals a profile activated without an initial sync: a first delta link, then what webhooks missed', async () => {
    await using stack = await startSyncStack({
      name: 'changes only',
      entities: ['account'],
      options: { initialSync: false },
      counts: { account: 400, contact: 10 },
      pageSize: 150,
    });
    const { org, profile, db } = stack;
    const copiesStarted: string[] = [];
    const deps: ReconcileDeps = {
      ...stack.deps,
      startInitialSync: async (p) => void copiesStarted.push(p.id),
      baselinePagesPerRun: 2,
    };
    const ids = async (n: number): Promise<string[]> => {
      for await (const page of stack.client.readPages('account', { pageSize: n })) {
        return page.rows.map((r) => r.recordId);
      }
      return [];
    };
    const tableRows = async () =>
      (await db.pool.query('SELECT id, name FROM public.account ORDER BY name')).rows.map((r) => String(r.name));

    // The first runs take a delta link (3 pages of 150, at most 2 a run), copying nothing.
    const first = await reconcileProfile(deps, profile.id);
    assert.deepEqual(
      first.entities.map((e) => [e.entity, e.outcome, e.pages, e.applied]),
      [['account', 'baselining', 2, 0]],
    );
    const goesOn = await reconcileProfile(deps, profile.id);
    assert.deepEqual(
      goesOn.entities.map((e) => [e.entity, e.outcome, e.pages, e.applied]),
      [['account', 'baselined', 1, 0]],
    );
    assert.equal(first.copyStarted || goesOn.copyStarted, false);
    assert.match((await stack.store.getCheckpoint(profile.id, 'account'))?.deltaLink ?? '', /\$deltatoken=/);
    const [statusBefore] = await stack.store.entityStatuses(profile.id);
    assert.equal(statusBefore?.syncState ?? 'NotStarted', 'NotStarted');

    // Changes whose webhooks never arrived are healed by the next run; untouched rows stay uncopied.
    const [updated, deleted] = await ids(2);
    await writeToOrg(org, 'PATCH', `accounts(${updated})`, { name: 'Changed without a webhook' });
    await writeToOrg(org, 'DELETE', `accounts(${deleted})`);
    await writeToOrg(org, 'POST', 'accounts', { name: 'Created without a webhook' });
    const second = await reconcileProfile(deps, profile.id);
    assert.deepEqual(
      second.entities.map((e) => [e.outcome, e.applied, e.failed]),
      [['reconciled', 3, 0]],
    );
    assert.deepEqual(await tableRows(), ['Changed without a webhook', 'Created without a webhook']);
    const { rows: tombstones } = await db.pool.query(
      "SELECT count(*)::int AS n FROM public.tombstone WHERE entityname = 'account' AND recordid = $1",
      [deleted],
    );
    assert.equal(tombstones[0].n, 1, 'the delete left a tombstone');

    // An expired token is replaced by a new baseline, not by a copy nobody asked for.
    org.faults.expireDeltaTokens();
    const third = await reconcileProfile(deps, profile.id);
    assert.deepEqual(
      third.entities.map((e) => [e.outcome, e.applied]),
      [['baselining', 0]],
    );
    assert.match(third.entities[0].error ?? '', /expired/i);
    const fourth = await reconcileProfile(deps, profile.id);
    assert.deepEqual(
      fourth.entities.map((e) => [e.outcome, e.applied]),
      [['baselined', 0]],
    );
    assert.equal(third.copyStarted || fourth.copyStarted, false);
    assert.deepEqual(copiesStarted, []);
    assert.deepEqual(await tableRows(), ['Changed without a webhook', 'Created without a webhook']);
  });

  it('lets a copy started over a part-way baseline begin at the first page', async () => {
    await using stack = await startSyncStack({
      name: 'baseline, then a copy',
      entities: ['account'],
      options: { initialSync: false },
      counts: { account: 400, contact: 10 },
      pageSize: 150,
    });
    const deps: ReconcileDeps = { ...stack.deps, startInitialSync: async () => {}, baselinePagesPerRun: 1 };
    const partWay = await reconcileProfile(deps, stack.profile.id);
    assert.deepEqual(
      partWay.entities.map((e) => [e.outcome, e.pages]),
      [['baselining', 1]],
    );
    await copyAll(stack.deps, stack.profile.id);
    const { rows } = await stack.db.pool.query('SELECT count(*)::int AS n FROM public.account');
    assert.equal(rows[0].n, stack.org.counts.account);
    const [status] = await stack.store.entityStatuses(stack.profile.id);
    assert.deepEqual([status.syncState, status.rowsCopied], ['Completed', stack.org.counts.account]);
    assert.ok(status.syncStartedAt, 'the copy counts as started fresh');
  });

  it('fails only the table whose baseline Dataverse refuses; the others still get theirs', async () => {
    await using stack = await startSyncStack({
      name: 'one bad relationship',
      entities: ['account'],
      relationships: ['new_nosuchrelationship'],
      options: { initialSync: false },
      counts: { account: 100, contact: 10 },
      pageSize: 150,
    });
    const result = await reconcileProfile({ ...stack.deps, startInitialSync: async () => {} }, stack.profile.id);
    assert.deepEqual(
      result.entities.map((e) => [e.entity, e.outcome, e.code]),
      [
        ['account', 'baselined', undefined],
        ['new_nosuchrelationship', 'failed', 'DATAVERSE_REQUEST_FAILED'],
      ],
    );
    assert.match(result.entities[1].error ?? '', /new_nosuchrelationship/);
  });

  it('reconciles every active profile and leaves inactive ones alone', async () => {
    await using stack = await startCopiedStack();
    const { org, profile } = stack;
    const [updated] = await accountIds(stack, 1);
    await writeToOrg(org, 'PATCH', `accounts(${updated})`, { name: 'Healed by the timer' });
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
