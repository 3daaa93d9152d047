/**
 * The control store's behaviour on every engine (test/support/engines.ts): the same calls, the same
 * assertions, on PostgreSQL always and on SQL Server with MSSQL_TEST_URL (`npm run test:mssql`).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { AppError } from '../../../lib/errors.js';
import type { ControlStore } from '../../../lib/profiles/control-store.js';
import { openMssqlControlStore } from '../../../lib/profiles/mssql-control-store.js';
import { openPostgresControlStore } from '../../../lib/profiles/postgres-control-store.js';
import { type ProfileDefinition, withDefaults } from '../../../lib/profiles/schema.js';
import { describeEachEngine, type EngineDatabase } from '../../support/engines.js';
import { stopOwnServer } from '../../support/postgres.js';

after(() => stopOwnServer());

const ORG = '6F2D8A1C-3B4E-4F5A-9C7D-1E2F3A4B5C6D';
const OTHER_ORG = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';

function definition(overrides: Partial<Parameters<typeof withDefaults>[0]> = {}): ProfileDefinition {
  return withDefaults({
    name: 'Sales to SQL',
    organizationId: ORG,
    source: { url: 'https://contoso.crm.dynamics.com/' },
    target: { kind: 'postgres', connectionSecret: 'sales-db' },
    entities: ['account', 'contact'],
    ...overrides,
  });
}

type DisposableStore = ControlStore & AsyncDisposable;

/** The control schema of a test: PostgreSQL's default on its own database, the test's schema on SQL Server. */
const controlSchema = (db: EngineDatabase): string => (db.kind === 'postgres' ? 'dvexport' : db.schema);

/** A migrated store on the test database, closed when the test's scope ends. */
async function storeOn(db: EngineDatabase, options: { now?: () => Date } = {}): Promise<DisposableStore> {
  const settings = { ...options, schema: controlSchema(db) };
  const store =
    db.kind === 'postgres'
      ? await openPostgresControlStore(db.connectionString, settings)
      : await openMssqlControlStore(db.connectionString, settings);
  await store.migrate();
  return Object.assign(store, { [Symbol.asyncDispose]: () => store.close() });
}

/** A clock the test moves by hand, so created/modified times are exact. */
function manualClock(start = Date.parse('2026-11-25T10:00:00.000Z')) {
  let time = start;
  return {
    now: () => new Date(time),
    advance(ms: number) {
      time += ms;
    },
  };
}

describeEachEngine('control store', (engine) => {
  describe('profiles', () => {
    it('round-trips a profile with every default and assigns id, state and times', async () => {
      await using db = await engine.createDatabase();
      const clock = manualClock();
      await using store = await storeOn(db, clock);
      const created = await store.createProfile(definition());
      assert.match(created.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.deepEqual(created, {
        id: created.id,
        name: 'Sales to SQL',
        organizationId: ORG.toLowerCase(),
        source: { url: 'https://contoso.crm.dynamics.com' },
        target: { kind: 'postgres', connectionSecret: 'sales-db', schema: 'public', tablePrefix: '' },
        entities: ['account', 'contact'],
        relationships: [],
        options: {
          writeDeleteLog: true,
          retryCount: 12,
          retryIntervalSeconds: 5,
          initialSync: true,
          registerWebhook: true,
          enableChangeTracking: false,
        },
        state: 'Inactive',
        createdOn: '2026-11-25T10:00:00.000Z',
        modifiedOn: '2026-11-25T10:00:00.000Z',
      });
      assert.deepEqual(await store.getProfile(created.id), created);
      assert.deepEqual(await store.getProfile(created.id.toUpperCase()), created);
      assert.deepEqual(await store.listProfiles(), [created]);
    });

    it('replaces the definition but keeps id, state and createdOn', async () => {
      await using db = await engine.createDatabase();
      const clock = manualClock();
      await using store = await storeOn(db, clock);
      const created = await store.createProfile(definition());
      clock.advance(1000);
      await store.setProfileState(created.id, 'Active');
      clock.advance(1000);
      const replaced = await store.replaceProfile(
        created.id,
        definition({ name: 'Renamed', entities: ['contact', 'lead'], options: { retryCount: 3 } }),
      );
      assert.deepEqual(replaced, {
        ...created,
        name: 'Renamed',
        entities: ['contact', 'lead'],
        options: { ...created.options, retryCount: 3 },
        state: 'Active',
        modifiedOn: '2026-11-25T10:00:02.000Z',
      });
      assert.deepEqual(await store.getProfile(created.id), replaced);
    });

    it('answers undefined or false for an id that does not exist or is not a GUID', async () => {
      await using db = await engine.createDatabase();
      await using store = await storeOn(db);
      for (const id of ['5b0c7a0e-0000-4000-8000-000000000000', 'not-a-guid', "x' OR '1'='1"]) {
        assert.equal(await store.getProfile(id), undefined);
        assert.equal(await store.replaceProfile(id, definition()), undefined);
        assert.equal(await store.setProfileState(id, 'Active'), undefined);
        assert.equal(await store.deleteProfile(id), false);
        assert.deepEqual(await store.entityStatuses(id), []);
      }
    });

    it('switches state and stamps modifiedOn', async () => {
      await using db = await engine.createDatabase();
      const clock = manualClock();
      await using store = await storeOn(db, clock);
      const created = await store.createProfile(definition());
      clock.advance(5000);
      const active = await store.setProfileState(created.id, 'Active');
      assert.equal(active?.state, 'Active');
      assert.equal(active?.modifiedOn, '2026-11-25T10:00:05.000Z');
      assert.equal(active?.createdOn, created.createdOn);
      clock.advance(5000);
      assert.equal((await store.setProfileState(created.id, 'Inactive'))?.state, 'Inactive');
      assert.equal((await store.getProfile(created.id))?.state, 'Inactive');
    });

    it('routes an organization to its active profiles only, whatever the GUID case', async () => {
      await using db = await engine.createDatabase();
      const clock = manualClock();
      await using store = await storeOn(db, clock);
      const first = await store.createProfile(definition({ name: 'first' }));
      clock.advance(1);
      const inactive = await store.createProfile(definition({ name: 'inactive' }));
      clock.advance(1);
      const second = await store.createProfile(definition({ name: 'second' }));
      const elsewhere = await store.createProfile(definition({ name: 'elsewhere', organizationId: OTHER_ORG }));
      for (const p of [first, second, elsewhere]) await store.setProfileState(p.id, 'Active');

      for (const org of [ORG, ORG.toLowerCase()]) {
        const routed = await store.activeProfilesFor(org);
        assert.deepEqual(
          routed.map((p) => p.name),
          ['first', 'second'],
        );
      }
      assert.ok(!(await store.activeProfilesFor(ORG)).some((p) => p.id === inactive.id));
      assert.deepEqual(await store.activeProfilesFor('11111111-2222-4333-8444-555555555555'), []);
    });

    it('deletes a profile together with its status rows and checkpoints', async () => {
      await using db = await engine.createDatabase();
      await using store = await storeOn(db);
      const doomed = await store.createProfile(definition());
      const kept = await store.createProfile(definition({ name: 'kept' }));
      for (const p of [doomed, kept]) {
        await store.recordMetrics(p.id, 'account', { received: 1 });
        await store.updateSyncState(p.id, 'contact', { syncState: 'InProgress' });
        await store.saveCheckpoint({
          profileId: p.id,
          entity: 'account',
          nextLink: null,
          deltaLink: 'd',
          pagesDone: 1,
        });
      }
      assert.equal(await store.deleteProfile(doomed.id), true);
      assert.equal(await store.getProfile(doomed.id), undefined);
      assert.equal(await db.count('entity_status', controlSchema(db)), 2);
      assert.equal(await db.count('checkpoints', controlSchema(db)), 1);
      assert.deepEqual(
        (await store.listDeltaCheckpoints()).map((c) => c.profileId),
        [kept.id],
      );
      assert.equal(await store.deleteProfile(doomed.id), false);
    });

    it('forgets status and checkpoints of entities a replacement drops', async () => {
      await using db = await engine.createDatabase();
      await using store = await storeOn(db);
      const p = await store.createProfile(definition({ entities: ['account', 'contact'] }));
      for (const entity of ['account', 'contact']) {
        await store.recordMetrics(p.id, entity, { applied: 2 });
        await store.saveCheckpoint({ profileId: p.id, entity, nextLink: null, deltaLink: 'd', pagesDone: 1 });
      }
      await store.replaceProfile(p.id, definition({ entities: ['contact', 'lead'] }));
      const statuses = await store.entityStatuses(p.id);
      assert.deepEqual(
        statuses.map((s) => [s.entity, s.applied]),
        [
          ['contact', 2],
          ['lead', 0],
        ],
      );
      assert.equal(await store.getCheckpoint(p.id, 'account'), undefined);
      assert.ok(await store.getCheckpoint(p.id, 'contact'));
      assert.equal(await db.count('entity_status', controlSchema(db)), 1);
    });
  });

  describe('entity status', () => {
    it('lists every entity in profile order, NotStarted where nothing was recorded, relationships last', async () => {
      await using db = await engine.createDatabase();
      await using store = await storeOn(db);
      const p = await store.createProfile(
        definition({ entities: ['contact', 'account', 'lead'], relationships: ['accountleads'] }),
      );
      await store.updateSyncState(p.id, 'account', { syncState: 'Completed', rowsCopied: 40, rowsEstimated: 40 });
      const statuses = await store.entityStatuses(p.id);
      assert.deepEqual(
        statuses.map((s) => s.entity),
        ['contact', 'account', 'lead', 'accountleads'],
      );
      assert.deepEqual(statuses[0], {
        entity: 'contact',
        syncState: 'NotStarted',
        rowsCopied: 0,
        rowsEstimated: null,
        syncStartedAt: null,
        syncCompletedAt: null,
        lastError: null,
        received: 0,
        applied: 0,
        stale: 0,
        failed: 0,
        lastAppliedAt: null,
        lastLagMs: null,
        meanLagMs: null,
      });
      assert.equal(statuses[1].syncState, 'Completed');
      assert.equal(statuses[1].rowsCopied, 40);
    });

    it('patches only the sync fields given; null clears a field', async () => {
      await using db = await engine.createDatabase();
      await using store = await storeOn(db);
      const p = await store.createProfile(definition());
      const started = new Date('2026-11-25T09:00:00.000Z');
      await store.updateSyncState(p.id, 'account', {
        syncState: 'InProgress',
        rowsEstimated: 5000,
        syncStartedAt: started,
        lastError: 'throttled once',
      });
      await store.updateSyncState(p.id, 'account', { rowsCopiedDelta: 500, lastError: null });
      const [account] = await store.entityStatuses(p.id);
      assert.equal(account.syncState, 'InProgress');
      assert.equal(account.rowsEstimated, 5000);
      assert.equal(account.rowsCopied, 500);
      assert.equal(account.syncStartedAt, started.toISOString());
      assert.equal(account.lastError, null);

      // A restarted copy overwrites the count, then adds the first page.
      await store.updateSyncState(p.id, 'account', { rowsCopied: 0, rowsCopiedDelta: 100, rowsEstimated: null });
      const [restarted] = await store.entityStatuses(p.id);
      assert.equal(restarted.rowsCopied, 100);
      assert.equal(restarted.rowsEstimated, null);
      assert.equal(restarted.syncStartedAt, started.toISOString());
    });

    it('adds concurrent rowsCopied deltas without losing any', async () => {
      await using db = await engine.createDatabase();
      await using store = await storeOn(db);
      const p = await store.createProfile(definition());
      await Promise.all(
        Array.from({ length: 40 }, (_, i) => store.updateSyncState(p.id, 'contact', { rowsCopiedDelta: i + 1 })),
      );
      const contact = (await store.entityStatuses(p.id)).find((s) => s.entity === 'contact');
      assert.equal(contact?.rowsCopied, (40 * 41) / 2);
    });

    it('refuses sync state and checkpoints for a profile that does not exist', async () => {
      await using db = await engine.createDatabase();
      await using store = await storeOn(db);
      const missing = '5b0c7a0e-0000-4000-8000-000000000000';
      const notFound = (err: unknown) => err instanceof AppError && err.code === 'PROFILE_NOT_FOUND';
      await assert.rejects(store.updateSyncState(missing, 'account', { syncState: 'Queued' }), notFound);
      await assert.rejects(
        store.saveCheckpoint({ profileId: missing, entity: 'account', nextLink: 'n', deltaLink: null, pagesDone: 0 }),
        notFound,
      );
      // Counters are reporting: a late report for a deleted profile is dropped quietly.
      await store.recordMetrics(missing, 'account', { applied: 1 });
      assert.equal(await db.count('entity_status', controlSchema(db)), 0);
    });

    it('keeps exact totals under 20 parallel writers × 50 reports each', async () => {
      await using db = await engine.createDatabase();
      await using store = await storeOn(db);
      const p = await store.createProfile(definition());
      const base = Date.parse('2026-11-25T10:00:00.000Z');
      const appliedAt = (writer: number, i: number) => new Date(base + writer * 1000 + i);
      // The report with the latest apply time carries a distinctive lag.
      const lag = (writer: number, i: number) => (writer === 19 && i === 49 ? 777 : 100 + (i % 2) * 100);
      await Promise.all(
        Array.from({ length: 20 }, async (_, writer) => {
          for (let i = 0; i < 50; i++) {
            await store.recordMetrics(p.id, 'account', {
              received: 3,
              applied: 2,
              stale: 1,
              failed: i % 10 === 0 ? 1 : 0,
              lastAppliedAt: appliedAt(writer, i),
              lagMs: lag(writer, i),
            });
          }
        }),
      );
      let lagSum = 0;
      for (let writer = 0; writer < 20; writer++) for (let i = 0; i < 50; i++) lagSum += lag(writer, i);
      const [account] = await store.entityStatuses(p.id);
      assert.equal(account.received, 3000);
      assert.equal(account.applied, 2000);
      assert.equal(account.stale, 1000);
      assert.equal(account.failed, 100);
      assert.equal(account.lastAppliedAt, appliedAt(19, 49).toISOString());
      assert.equal(account.lastLagMs, 777, 'the last lag is the one reported with the latest apply time');
      assert.equal(account.meanLagMs, Math.round(lagSum / 1000));
    });

    it('never moves lastAppliedAt or the last lag backwards on a late report', async () => {
      await using db = await engine.createDatabase();
      await using store = await storeOn(db);
      const p = await store.createProfile(definition());
      await store.recordMetrics(p.id, 'account', {
        applied: 1,
        lastAppliedAt: new Date('2026-11-25T10:00:05Z'),
        lagMs: 50,
      });
      await store.recordMetrics(p.id, 'account', {
        applied: 1,
        lastAppliedAt: new Date('2026-11-25T10:00:01Z'),
        lagMs: 900,
      });
      await store.recordMetrics(p.id, 'account', { received: 4 });
      const [account] = await store.entityStatuses(p.id);
      assert.equal(account.lastAppliedAt, '2026-11-25T10:00:05.000Z');
      assert.equal(account.lastLagMs, 50);
      assert.equal(account.meanLagMs, 475);
      assert.equal(account.applied, 2);
      assert.equal(account.received, 4);
    });
  });

  describe('checkpoints', () => {
    it('saves, reads, lists delta links and clears checkpoints', async () => {
      await using db = await engine.createDatabase();
      const clock = manualClock();
      await using store = await storeOn(db, clock);
      const p = await store.createProfile(definition());
      const q = await store.createProfile(definition({ name: 'other' }));
      const next =
        'https://contoso.crm.dynamics.com/api/data/v9.2/accounts?$skiptoken=%3Ccookie%20pagenumber=%222%22/%3E';
      await store.saveCheckpoint({ profileId: p.id, entity: 'account', nextLink: next, deltaLink: null, pagesDone: 1 });
      clock.advance(1000);
      await store.saveCheckpoint({
        profileId: p.id,
        entity: 'account',
        nextLink: null,
        deltaLink: 'delta-a',
        pagesDone: 2,
      });
      await store.saveCheckpoint({ profileId: p.id, entity: 'contact', nextLink: next, deltaLink: null, pagesDone: 1 });
      await store.saveCheckpoint({
        profileId: q.id,
        entity: 'account',
        nextLink: null,
        deltaLink: 'delta-q',
        pagesDone: 3,
      });

      assert.deepEqual(await store.getCheckpoint(p.id, 'account'), {
        profileId: p.id,
        entity: 'account',
        nextLink: null,
        deltaLink: 'delta-a',
        pagesDone: 2,
        updatedAt: '2026-11-25T10:00:01.000Z',
      });
      assert.equal((await store.getCheckpoint(p.id, 'contact'))?.nextLink, next);
      assert.equal(await store.getCheckpoint(p.id, 'lead'), undefined);
      assert.deepEqual(
        (await store.listDeltaCheckpoints()).map((c) => [c.profileId, c.entity, c.deltaLink]).sort(),
        [
          [p.id, 'account', 'delta-a'],
          [q.id, 'account', 'delta-q'],
        ].sort(),
      );

      await store.clearCheckpoints(p.id, 'contact');
      assert.equal(await store.getCheckpoint(p.id, 'contact'), undefined);
      assert.ok(await store.getCheckpoint(p.id, 'account'));
      await store.clearCheckpoints(p.id);
      assert.equal(await store.getCheckpoint(p.id, 'account'), undefined);
      assert.ok(await store.getCheckpoint(q.id, 'account'), "another profile's checkpoint stays");
    });
  });

  describe('copy partitions', () => {
    it("plans, advances and splits an entity's partitions; the entity's rows copied are their sum", async () => {
      await using db = await engine.createDatabase();
      const clock = manualClock();
      await using store = await storeOn(db, clock);
      const p = await store.createProfile(definition());
      await store.updateSyncState(p.id, 'account', { syncState: 'InProgress', rowsCopied: 0 });
      const mid = '00000000-0000-0000-0000-800000000000';
      await store.startPartitionedCopy(
        { profileId: p.id, entity: 'account', nextLink: 'tracked-2', deltaLink: null, pagesDone: 1 },
        [
          { partition: 0, after: null, upTo: mid },
          { partition: 1, after: mid, upTo: null },
        ],
      );
      assert.equal((await store.getCheckpoint(p.id, 'account'))?.nextLink, 'tracked-2');
      const progress = { profileId: p.id, entity: 'account', done: false };
      await store.savePartitionProgress({ ...progress, partition: 0, lastId: 'a', pagesDone: 1 }, 5000);
      await store.savePartitionProgress({ ...progress, partition: 1, lastId: 'b', pagesDone: 1 }, 5000);
      await store.savePartitionProgress({ ...progress, partition: 0, lastId: 'c', pagesDone: 2, done: true }, 17);
      const at = '00000000-0000-0000-0000-c00000000000';
      await store.splitPartition({ profileId: p.id, entity: 'account', partition: 1, upTo: null, at, added: 2 });

      const parts = await store.copyPartitions(p.id, 'account');
      assert.deepEqual(
        parts.map((x) => [x.partition, x.after, x.upTo, x.lastId, x.pagesDone, x.rowsCopied, x.done]),
        [
          [0, null, mid, 'c', 2, 5017, true],
          [1, mid, at, 'b', 1, 5000, false],
          [2, at, null, null, 0, 0, false],
        ],
      );
      const [account] = await store.entityStatuses(p.id);
      assert.equal(account.rowsCopied, 10017);
      assert.equal(
        parts.reduce((n, x) => n + x.rowsCopied, 0),
        account.rowsCopied,
      );
      assert.deepEqual(await store.copyPartitions(p.id), parts);

      await assert.rejects(
        store.savePartitionProgress({ ...progress, partition: 9, lastId: 'x', pagesDone: 1 }, 5),
        (err: unknown) => err instanceof AppError && err.code === 'PROFILE_NOT_FOUND',
      );
      // Partitions belong to the checkpoint: clearing it (a full copy, an expired token) clears them.
      await store.clearCheckpoints(p.id, 'account');
      assert.deepEqual(await store.copyPartitions(p.id, 'account'), []);
      await assert.rejects(
        store.startPartitionedCopy(
          {
            profileId: '00000000-0000-4000-8000-000000000000',
            entity: 'account',
            nextLink: null,
            deltaLink: null,
            pagesDone: 1,
          },
          [{ partition: 0, after: null, upTo: null }],
        ),
        (err: unknown) => err instanceof AppError && err.code === 'PROFILE_NOT_FOUND',
      );
    });
  });
});
