/**
 * Instances copying from one organization split its Dataverse concurrency through their claims in a real
 * PostgreSQL control store. Each "instance" here is an OrganizationShares with its own read lanes; the clock,
 * the heartbeat and the linger are driven by the test, so nothing depends on timing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ReadLanes, shareOf } from '../../lib/dataverse/webapi/organization-limits.js';
import { silentLogger } from '../../lib/log.js';
import type { ControlStore } from '../../lib/profiles/control-store.js';
import { openPostgresControlStore } from '../../lib/profiles/postgres-control-store.js';
import { planInitialSync } from '../../lib/sync/initial-sync.js';
import { OrganizationShares, SHARE_HEARTBEAT_MS, shareKey } from '../../lib/sync/organization-share.js';
import { createTestDatabase, stopOwnServer, type TestDatabase } from '../support/postgres.js';
import { copyToEnd, startSyncStack } from '../support/sync-stack.js';

const URL_A = 'https://contoso-share.crm.dynamics.com/';

after(() => stopOwnServer());
const TOTAL = 52;

/** One instance: its lanes, its claims, and the waits and lingers it was asked for (run by the test). */
function instance(store: ControlStore) {
  const lanes = new ReadLanes(TOTAL, TOTAL);
  const waits: number[] = [];
  const lingering: Array<() => Promise<void>> = [];
  const shares = new OrganizationShares(store, {
    logger: silentLogger,
    every: () => () => {},
    after: (_ms, done) => {
      lingering.push(done);
      return () => lingering.splice(lingering.indexOf(done), 1);
    },
    wait: async (ms) => {
      waits.push(ms);
    },
    apply: (_url, holders) => {
      const share = shareOf(TOTAL, holders);
      lanes.setCap(share);
      return share;
    },
  });
  /** Starts a copy that holds the share until `finish()`; resolves `started` once it may read. */
  const copy = () => {
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => {
      finish = resolve;
    });
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    const done = shares.during(URL_A, async () => {
      started();
      await finished;
    });
    return {
      running,
      finish: () => {
        finish();
        return done;
      },
    };
  };
  const runLinger = () => Promise.all(lingering.splice(0).map((done) => done()));
  return { lanes, shares, waits, copy, runLinger };
}

describe('organization shares across instances', () => {
  let db: TestDatabase;
  let store: ControlStore;
  let clock = Date.parse('2026-12-01T08:00:00Z');

  before(async () => {
    db = await createTestDatabase();
    store = await openPostgresControlStore(db.url, { now: () => new Date(clock) });
    await store.migrate();
  });
  after(async () => {
    await store.close();
    await db[Symbol.asyncDispose]();
  });

  const claims = async () =>
    Number(
      (
        await db.pool.query('SELECT count(*) AS n FROM dvexport.organization_shares WHERE organization = $1', [
          shareKey(URL_A),
        ])
      ).rows[0].n,
    );

  it('splits the cap when a second instance copies, and gives it back when that one is done', async () => {
    const a = instance(store);
    const b = instance(store);
    const copyA = a.copy();
    await copyA.running;
    assert.equal(a.shares.holders(URL_A), 1);
    assert.deepEqual(a.waits, [], 'the first instance reads at once');

    const copyB = b.copy();
    await copyB.running;
    assert.equal(b.shares.holders(URL_A), 2);
    assert.deepEqual(b.waits, [SHARE_HEARTBEAT_MS + 1_000], 'the newcomer waits until the others have seen it');
    assert.ok(b.lanes.limit <= 26, `B reads on ${b.lanes.limit} lanes`);

    await a.shares.beatAll();
    assert.equal(a.shares.holders(URL_A), 2);
    // The lanes A and B may have open together stay within the organization's cap.
    assert.ok(a.lanes.limit + b.lanes.limit <= TOTAL, `A ${a.lanes.limit} + B ${b.lanes.limit} lanes`);
    assert.equal(a.lanes.limit, 26);

    await copyB.finish();
    assert.equal(await claims(), 2, 'a finished copy keeps its claim while it lingers');
    await b.runLinger();
    assert.equal(await claims(), 1, 'after the linger the claim is released');
    await a.shares.beatAll();
    assert.equal(a.shares.holders(URL_A), 1);

    await copyA.finish();
    await a.runLinger();
    assert.equal(await claims(), 0);
  });

  it("gives a crashed instance's part back once its claim expires", async () => {
    const a = instance(store);
    const b = instance(store);
    const copyA = a.copy();
    await copyA.running;
    const copyB = b.copy();
    await copyB.running;
    await a.shares.beatAll();
    assert.equal(a.shares.holders(URL_A), 2);

    // B stops beating (it crashed). Within three heartbeats it still counts; after them it does not.
    clock += 2 * SHARE_HEARTBEAT_MS;
    await a.shares.beatAll();
    assert.equal(a.shares.holders(URL_A), 2);
    clock += 2 * SHARE_HEARTBEAT_MS;
    await a.shares.beatAll();
    assert.equal(a.shares.holders(URL_A), 1);
    assert.equal(await claims(), 1, 'the expired claim is removed, not only ignored');

    await copyA.finish();
    await a.shares.close();
    await copyB.finish();
    await b.shares.close();
    assert.equal(await claims(), 0);
  });

  // The timeout only ends a hang: a claim that skipped the newcomer's wait would never ask for it.
  it('makes one claim for copies that start together, and holds them all through the wait', {
    timeout: 30_000,
  }, async () => {
    const other = instance(store);
    const first = other.copy();
    await first.running;

    let made = 0;
    const counting: ControlStore = Object.assign(Object.create(store) as ControlStore, {
      claimOrganizationShare: (...args: Parameters<ControlStore['claimOrganizationShare']>) => {
        made++;
        return store.claimOrganizationShare(...args);
      },
    });
    let waiting!: () => void;
    const waitAsked = new Promise<void>((resolve) => {
      waiting = resolve;
    });
    let endWait!: () => void;
    const shares = new OrganizationShares(counting, {
      logger: silentLogger,
      every: () => () => {},
      after: () => () => {},
      wait: () => {
        waiting();
        return new Promise<void>((resolve) => {
          endWait = resolve;
        });
      },
      apply: (_url, holders) => shareOf(TOTAL, holders),
    });
    const started: string[] = [];
    const copies = ['x', 'y', 'z'].map((name) =>
      shares.during(URL_A, async () => {
        started.push(name);
      }),
    );
    await waitAsked;
    assert.equal(made, 1);
    assert.deepEqual(started, [], 'no copy reads during the newcomer wait');
    endWait();
    await Promise.all(copies);
    assert.deepEqual(started.sort(), ['x', 'y', 'z']);
    assert.equal(shares.holders(URL_A), 2);
    await shares.close();
    await first.finish();
    await other.shares.close();
  });
});

describe('a partitioned copy holding its share', () => {
  it('copies every row exactly once and leaves no claim behind', async () => {
    await using stack = await startSyncStack({
      name: 'shared-copy',
      entities: ['account'],
      counts: { account: 3_000 },
      pageSize: 500,
      partitions: { minRows: 1_000 },
    });
    const holders: number[] = [];
    const shares = new OrganizationShares(stack.store, {
      logger: silentLogger,
      apply: (_url, n) => {
        holders.push(n);
        return shareOf(TOTAL, n);
      },
    });
    const deps = { ...stack.deps, partitions: { ...stack.deps.partitions, shares } };
    await planInitialSync(deps, stack.profile.id);
    await copyToEnd(deps, stack.profile.id, 'account');
    const rows = await stack.db.pool.query('SELECT count(*) AS n, count(DISTINCT id) AS d FROM public.account');
    assert.equal(Number(rows.rows[0].n), 3_000);
    assert.equal(Number(rows.rows[0].d), 3_000);
    assert.ok(holders.length >= 1 && holders.every((n) => n === 1), `alone, so the whole cap: ${holders}`);
    await shares.close();
    const left = await stack.db.pool.query('SELECT count(*) AS n FROM dvexport.organization_shares');
    assert.equal(Number(left.rows[0].n), 0);
  });
});
