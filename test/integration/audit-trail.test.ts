/**
 * The audit trail at the API, over the real PostgreSQL control store: who may do what (principals by app
 * role, the management key, nobody), and every change recorded with the profile before and after it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createAdminApi } from '../../lib/api/admin-api.js';
import { guardProfilesApi } from '../../lib/api/guarded.js';
import { createProfilesApi } from '../../lib/api/profiles-api.js';
import type { ApiRequest } from '../../lib/api/request.js';
import { encodePrincipal } from '../../lib/auth/principal.js';
import { createLogger } from '../../lib/log.js';
import { openPostgresControlStore } from '../../lib/profiles/postgres-control-store.js';
import { createTestDatabase } from '../support/postgres.js';
import { loopbackReach } from '../support/reach.js';

const KEY = 'automation-key';
const logger = createLogger({ level: 'error' });
const admin = { 'x-ms-client-principal': encodePrincipal({ name: 'ada@contoso.com', roles: ['Export.Admin'] }) };
const reader = { 'x-ms-client-principal': encodePrincipal({ name: 'rita@contoso.com', roles: ['Export.Reader'] }) };
const noRole = { 'x-ms-client-principal': encodePrincipal({ name: 'nora@contoso.com', roles: [] }) };

const body = (overrides: Record<string, unknown> = {}) =>
  JSON.stringify({
    name: 'Sales',
    organizationId: '6f2d8a1c-3b4e-4f5a-9c7d-1e2f3a4b5c6d',
    source: { url: 'https://contoso.crm.dynamics.com' },
    target: { kind: 'postgres', connectionSecret: 'sales-db' },
    entities: ['account'],
    options: { initialSync: false },
    ...overrides,
  });

async function setup(options: { key?: string } = { key: KEY }) {
  const db = await createTestDatabase();
  const store = await openPostgresControlStore(db.url);
  await store.migrate();
  const access = { managementKey: async () => options.key };
  const api = guardProfilesApi(
    createProfilesApi({
      store,
      reach: loopbackReach,
      secrets: { getSecret: async () => 'postgres://unused' },
      probeTarget: async () => undefined,
      startInitialSync: async () => 'instance-1',
      failures: {
        list: async () => [],
        resync: async () => ({ id: 'resync-1', statusQueryGetUri: 'http://127.0.0.1/status/resync-1' }),
      },
      logger,
    }),
    { access, audit: store, getProfile: (id) => store.getProfile(id), logger },
  );
  const admins = createAdminApi({
    access,
    audit: store,
    catalogFor: async () => ({ organizationId: 'x', entities: [], relationships: [] }),
    reach: loopbackReach,
    logger,
  });
  return {
    api,
    admins,
    store,
    async [Symbol.asyncDispose]() {
      await store.close();
      await db[Symbol.asyncDispose]();
    },
  };
}

const as = (headers: Record<string, string>, extra: Partial<ApiRequest> = {}): ApiRequest => ({ headers, ...extra });

describe('who may do what at the management API', () => {
  it('answers 401 to nobody and to a wrong key, 403 to a principal without the role', async () => {
    await using ctx = await setup();
    assert.equal((await ctx.api.list(as({}))).status, 401);
    assert.equal((await ctx.api.list(as({ 'x-functions-key': 'wrong' }))).status, 401);
    assert.equal((await ctx.api.list(as({ 'x-ms-client-principal': 'not base64 json' }))).status, 401);
    const refused = await ctx.api.list(as(noRole));
    assert.equal(refused.status, 403);
    assert.match(JSON.stringify(refused.jsonBody), /FORBIDDEN.*Export.Reader or Export.Admin/);
  });

  it('lets a reader read profiles and the audit trail, and refuses every change with 403', async () => {
    await using ctx = await setup();
    const created = await ctx.api.create(as(admin, { body: body() }));
    const id = (created.jsonBody as { id: string }).id;
    assert.equal((await ctx.api.list(as(reader))).status, 200);
    assert.equal((await ctx.api.get(as(reader, { params: { id } }))).status, 200);
    assert.equal((await ctx.api.status(as(reader, { params: { id } }))).status, 200);
    assert.equal((await ctx.admins.audit(as(reader))).status, 200);
    for (const name of ['activate', 'deactivate', 'delete', 'resyncFailures'] as const) {
      assert.equal((await ctx.api[name](as(reader, { params: { id } }))).status, 403, name);
    }
    assert.equal((await ctx.api.create(as(reader, { body: body() }))).status, 403);
    assert.equal((await ctx.api.replace(as(reader, { params: { id }, body: body() }))).status, 403);
    assert.equal((await ctx.admins.catalog(as(reader, { query: { url: 'https://x.crm.dynamics.com' } }))).status, 403);
    assert.equal((await ctx.store.getProfile(id))?.state, 'Inactive', 'nothing changed');
    assert.equal((await ctx.store.listAudit({ limit: 10, offset: 0 })).length, 1, 'only the admin create');
  });

  it('accepts the management key for automation, and not once the key is turned off', async () => {
    await using on = await setup();
    assert.equal((await on.api.create(as({ 'x-functions-key': KEY }, { body: body() }))).status, 201);
    assert.equal((await on.api.list(as({}, { query: { code: KEY } }))).status, 200);
    await using off = await setup({});
    const refused = await off.api.list(as({ 'x-functions-key': KEY }));
    assert.equal(refused.status, 401);
    assert.match(JSON.stringify(refused.jsonBody), /does not accept a function key/);
  });

  it('tells the console who is calling and what it may do', async () => {
    await using ctx = await setup();
    assert.deepEqual((await ctx.admins.me(as(reader))).jsonBody, {
      name: 'rita@contoso.com',
      kind: 'principal',
      roles: ['Export.Reader'],
      canRead: true,
      canWrite: false,
    });
    assert.equal((await ctx.admins.me(as({}))).status, 401);
  });
});

describe('the audit trail', () => {
  it('records create, replace, activate, resync, deactivate and delete with who and before/after, newest first', async () => {
    await using ctx = await setup();
    const created = await ctx.api.create(as(admin, { body: body() }));
    const id = (created.jsonBody as { id: string }).id;
    const params = { id };
    assert.equal((await ctx.api.replace(as(admin, { params, body: body({ name: 'Sales v2' }) }))).status, 200);
    assert.equal((await ctx.api.activate(as(admin, { params }))).status, 200);
    assert.equal((await ctx.api.activate(as(admin, { params }))).status, 200, 'already active: no new entry');
    assert.equal((await ctx.api.resyncFailures(as({ 'x-functions-key': KEY }, { params }))).status, 202);
    assert.equal((await ctx.api.deactivate(as(admin, { params }))).status, 200);
    assert.equal((await ctx.api.delete(as(admin, { params, query: { dropTables: 'false' } }))).status, 204);
    assert.equal((await ctx.api.delete(as(admin, { params }))).status, 404, 'a refused change leaves no entry');

    const page = (await ctx.admins.audit(as(reader, { query: { profileId: id } }))).jsonBody as {
      entries: {
        action: string;
        actor: string;
        actorKind: string;
        before: Record<string, unknown>;
        after: Record<string, unknown>;
        details: Record<string, unknown>;
      }[];
      nextOffset: number | null;
    };
    assert.deepEqual(
      page.entries.map((e) => [e.action, e.actor]),
      [
        ['delete', 'ada@contoso.com'],
        ['deactivate', 'ada@contoso.com'],
        ['resync', 'function key'],
        ['activate', 'ada@contoso.com'],
        ['replace', 'ada@contoso.com'],
        ['create', 'ada@contoso.com'],
      ],
    );
    const [deleted, deactivated, resynced, activated, replaced, createdEntry] = page.entries;
    assert.equal(createdEntry.before, null);
    assert.equal(createdEntry.after.name, 'Sales');
    assert.equal(replaced.before.name, 'Sales');
    assert.equal(replaced.after.name, 'Sales v2');
    assert.deepEqual([activated.before.state, activated.after.state], ['Inactive', 'Active']);
    assert.deepEqual(resynced.details, { instanceId: 'resync-1' });
    assert.equal(resynced.actorKind, 'functionKey');
    assert.deepEqual([deactivated.before.state, deactivated.after.state], ['Active', 'Inactive']);
    assert.equal(deleted.after, null);
    assert.deepEqual(deleted.details, { dropTables: false });
    assert.equal(page.nextOffset, null);
    assert.equal(await ctx.store.getProfile(id), undefined, 'the profile is gone, its trail stays');
  });

  it('filters by time and pages with nextOffset', async () => {
    await using ctx = await setup();
    for (const name of ['a', 'b', 'c']) await ctx.api.create(as(admin, { body: body({ name }) }));
    const first = (await ctx.admins.audit(as(admin, { query: { limit: '2' } }))).jsonBody as {
      entries: { profileName: string; at: string }[];
      nextOffset: number | null;
    };
    assert.deepEqual(
      first.entries.map((e) => e.profileName),
      ['c', 'b'],
    );
    assert.equal(first.nextOffset, 2);
    const second = (await ctx.admins.audit(as(admin, { query: { limit: '2', offset: '2' } }))).jsonBody as {
      entries: { profileName: string }[];
      nextOffset: number | null;
    };
    assert.deepEqual(
      second.entries.map((e) => e.profileName),
      ['a'],
    );
    assert.equal(second.nextOffset, null);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const none = (await ctx.admins.audit(as(admin, { query: { from: future } }))).jsonBody as { entries: unknown[] };
    assert.deepEqual(none.entries, []);
    const bad = await ctx.admins.audit(as(admin, { query: { profileId: 'nope' } }));
    assert.equal(bad.status, 400);
  });
});
