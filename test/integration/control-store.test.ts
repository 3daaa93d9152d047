import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { AppError } from '../../lib/errors.js';
import type { ControlStore } from '../../lib/profiles/control-store.js';
import { postgresMigrations } from '../../lib/profiles/migrations/postgres.js';
import { openControlStore } from '../../lib/profiles/open-control-store.js';
import { openPostgresControlStore } from '../../lib/profiles/postgres-control-store.js';
import { type ProfileDefinition, withDefaults } from '../../lib/profiles/schema.js';
import { createTestDatabase, stopOwnServer, type TestDatabase } from '../support/postgres.js';

after(() => stopOwnServer());

const ORG = '6F2D8A1C-3B4E-4F5A-9C7D-1E2F3A4B5C6D';

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

/** Profiles, entity status and checkpoints run on every engine: test/integration/engines/control-store.test.ts. */

/** A migrated store on the test database, closed when the test's scope ends. */
async function storeOn(
  db: TestDatabase,
  options: { schema?: string; now?: () => Date } = {},
): Promise<DisposableStore> {
  const store = await openPostgresControlStore(db.url, options);
  await store.migrate();
  return Object.assign(store, { [Symbol.asyncDispose]: () => store.close() });
}

describe('PostgreSQL control store: migrations', () => {
  it('applies each migration once and records it; running migrate again changes nothing', async () => {
    await using db = await createTestDatabase();
    await using store = await storeOn(db);
    await store.migrate();
    const history = await db.pool.query('SELECT version, name FROM dvexport.schema_migrations ORDER BY version');
    assert.deepEqual(
      history.rows,
      postgresMigrations('dvexport').map((m) => ({ version: m.version, name: m.name })),
    );
    const tables = await db.pool.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'dvexport' ORDER BY table_name`,
    );
    assert.deepEqual(
      tables.rows.map((r) => r.table_name),
      [
        'audit_log',
        'checkpoints',
        'copy_partitions',
        'entity_status',
        'organization_shares',
        'profiles',
        'schema_migrations',
        'target_state',
      ],
    );
  });

  it('lets several instances migrate the same empty database at once', async () => {
    await using db = await createTestDatabase();
    const stores = await Promise.all([1, 2, 3, 4].map(() => openPostgresControlStore(db.url)));
    try {
      await Promise.all(stores.map((s) => s.migrate()));
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
    const history = await db.pool.query('SELECT count(*)::int AS n FROM dvexport.schema_migrations');
    assert.equal(history.rows[0].n, postgresMigrations('dvexport').length);
  });

  it('keeps its tables in the schema it is given', async () => {
    await using db = await createTestDatabase();
    await using store = await storeOn(db, { schema: 'export_control' });
    const created = await store.createProfile(definition());
    const stored = await db.pool.query('SELECT id FROM export_control.profiles');
    assert.deepEqual(
      stored.rows.map((r) => r.id),
      [created.id],
    );
    const dvexport = await db.pool.query(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'dvexport'`);
    assert.equal(dvexport.rows[0].n, 0);
  });

  it('refuses a schema name that is not a plain identifier, naming it', async () => {
    await assert.rejects(
      openPostgresControlStore('postgres://unused', { schema: 'dvexport"; DROP TABLE x; --' }),
      (err: unknown) =>
        err instanceof AppError && err.code === 'CONFIG_INVALID' && /schema "dvexport"; DROP/.test(err.message),
    );
  });
});

/** A clock the test moves by hand. */
function manualClock(start = Date.parse('2026-11-25T10:00:00.000Z')) {
  let time = start;
  return {
    now: () => new Date(time),
    advance(ms: number) {
      time += ms;
    },
  };
}

describe('PostgreSQL control store: target state', () => {
  it('keeps when a condition began while it lasts, restarts it for another, and clears it', async () => {
    await using db = await createTestDatabase();
    const clock = manualClock();
    await using store = await storeOn(db, { now: clock.now });
    const p = await store.createProfile(definition());
    assert.equal(await store.targetState(p.id), undefined);
    const full = { state: 'unavailable' as const, reason: 'disk full', action: 'free space' };
    await store.recordTargetState(p.id, full);
    clock.advance(5000);
    await store.recordTargetState(p.id, { ...full, reason: 'disk still full' });
    assert.deepEqual(await store.targetState(p.id), {
      ...full,
      reason: 'disk still full',
      since: '2026-11-25T10:00:00.000Z',
      updatedAt: '2026-11-25T10:00:05.000Z',
    });
    clock.advance(5000);
    await store.recordTargetState(p.id, { state: 'misconfigured', reason: 'no grant', action: 'GRANT' });
    assert.equal((await store.targetState(p.id))?.since, '2026-11-25T10:00:10.000Z');
    await store.recordTargetState(p.id, null);
    assert.equal(await store.targetState(p.id), undefined);
    await store.recordTargetState('00000000-0000-4000-8000-000000000000', full);
    assert.equal(await store.deleteProfile(p.id), true);
  });
});

describe('PostgreSQL control store: copy progress', () => {
  it("saves a copied page's checkpoint and its rows together", async () => {
    await using db = await createTestDatabase();
    await using store = await storeOn(db);
    const p = await store.createProfile(definition());
    await store.updateSyncState(p.id, 'account', { syncState: 'InProgress', rowsCopied: 0 });
    const page = (pagesDone: number) => ({
      profileId: p.id,
      entity: 'account',
      nextLink: 'n',
      deltaLink: null,
      pagesDone,
    });
    await store.saveCopyProgress(page(1), 5000);
    await store.saveCopyProgress(page(2), 1234);
    // An entity without a status row yet gets one.
    await store.saveCopyProgress({ ...page(1), entity: 'contact' }, 7);
    assert.equal((await store.getCheckpoint(p.id, 'account'))?.pagesDone, 2);
    const [account, contact] = await store.entityStatuses(p.id);
    assert.deepEqual([account.syncState, account.rowsCopied], ['InProgress', 6234]);
    assert.equal(contact.rowsCopied, 7);
    assert.equal((await store.getCheckpoint(p.id, 'contact'))?.pagesDone, 1);
    await assert.rejects(
      store.saveCopyProgress({ ...page(1), profileId: '00000000-0000-4000-8000-000000000000' }, 5),
      (err: unknown) => err instanceof AppError && err.code === 'PROFILE_NOT_FOUND',
    );
  });
});

describe('openControlStore', () => {
  it('opens the PostgreSQL store for kind postgres', async () => {
    await using db = await createTestDatabase();
    const store = await openControlStore('postgres', db.url);
    try {
      await store.migrate();
      const p = await store.createProfile(definition());
      assert.equal((await store.getProfile(p.id))?.name, 'Sales to SQL');
    } finally {
      await store.close();
    }
  });
});
