import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, describe, it } from 'node:test';
import { createProfilesApi, type ProfilesApi } from '../../lib/api/profiles-api.js';
import type { ApiRequest } from '../../lib/api/request.js';
import type { HttpResult } from '../../lib/http/boundary.js';
import { silentLogger } from '../../lib/log.js';
import type { ControlStore } from '../../lib/profiles/control-store.js';
import { openPostgresControlStore } from '../../lib/profiles/postgres-control-store.js';
import type { ExportProfile } from '../../lib/profiles/schema.js';
import { LocalSecretProvider } from '../../lib/secrets/local-provider.js';
import { probeTarget } from '../../lib/sink/index.js';
import { type FailureEntry, FailureLog } from '../../lib/storage/failure-log.js';
import { createTestStorage, stopOwnAzurite } from '../support/azurite.js';
import { createTestDatabase, stopOwnServer } from '../support/postgres.js';
import { loopbackReach } from '../support/reach.js';

after(async () => {
  await stopOwnAzurite();
  await stopOwnServer();
});

const ORG = '6f2d1c3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f';
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';
const NOW = new Date('2026-11-05T10:00:00.000Z');
const PAYLOAD_KEY = 'q8Zr1mW0uXkT9vB2yN4pL6sD3fH5jK7a+/Qe1Rt2Yu0=';

function profileBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'Sales to SQL',
    organizationId: ORG,
    source: { url: 'https://contoso.crm.dynamics.com' },
    target: { kind: 'postgres', connectionSecret: 'sales-db' },
    entities: ['account', 'contact'],
    ...overrides,
  };
}

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface ApiContext extends AsyncDisposable {
  api: ProfilesApi;
  store: ControlStore;
  failureLog: FailureLog;
  started: { profile: ExportProfile; full: boolean }[];
  stopped: string[];
  dropped: string[];
}

/**
 * The API over a real control store (its own database), real secrets and the real target probe against a
 * second database, and the real failure log on Azurite. Only the orchestration is recorded, not run.
 */
async function apiContext(
  options: { failStart?: boolean; probeTarget?: typeof probeTarget } = {},
): Promise<ApiContext> {
  const control = await createTestDatabase();
  const target = await createTestDatabase();
  const storage = await createTestStorage();
  const store = await openPostgresControlStore(control.url);
  await store.migrate();
  const failureLog = new FailureLog({ blobs: storage.blobs, container: storage.container('failurelog') });
  const secrets = new LocalSecretProvider({
    'sales-db': target.url,
    'dead-db': `postgres://nobody:secret@127.0.0.1:${await closedPort()}/nothing`,
    'payload-encryption-key': PAYLOAD_KEY,
  });
  const context: ApiContext = {
    store,
    failureLog,
    started: [],
    stopped: [],
    dropped: [],
    api: createProfilesApi({
      store,
      reach: loopbackReach,
      secrets,
      probeTarget: options.probeTarget ?? probeTarget,
      startInitialSync: async (profile, { full }) => {
        if (options.failStart) throw new Error('the orchestration client is down');
        context.started.push({ profile, full });
        return `sync-${context.started.length}`;
      },
      stopSync: async (profile) => {
        context.stopped.push(profile.id);
      },
      dropTables: async (profile) => {
        context.dropped.push(profile.id);
      },
      failures: {
        list: (profileId, range) => failureLog.listFailures(profileId, range),
        purge: (profileId) => failureLog.deleteFailures(profileId),
      },
      logger: silentLogger,
      now: () => NOW,
    }),
    async [Symbol.asyncDispose]() {
      await store.close();
      await storage[Symbol.asyncDispose]();
      await target[Symbol.asyncDispose]();
      await control[Symbol.asyncDispose]();
    },
  };
  return context;
}

const request = (parts: ApiRequest = {}): ApiRequest => parts;
const withId = (id: string, parts: Omit<ApiRequest, 'params'> = {}): ApiRequest => ({ ...parts, params: { id } });
const json = (body: unknown): string => JSON.stringify(body);

async function created(api: ProfilesApi, overrides: Record<string, unknown> = {}): Promise<ExportProfile> {
  const result = await api.create(request({ body: json(profileBody(overrides)) }));
  assert.equal(result.status, 201, JSON.stringify(result.jsonBody));
  return result.jsonBody as ExportProfile;
}

function errorOf(result: HttpResult): {
  code: string;
  message: string;
  details?: { field?: string; value?: unknown }[];
} {
  return result.jsonBody as { code: string; message: string; details?: { field?: string; value?: unknown }[] };
}

describe('profiles API', () => {
  it('creates, reads, lists, replaces, activates, reports, deactivates and deletes a profile', async () => {
    await using ctx = await apiContext();
    const { api, store } = ctx;

    const create = await api.create(request({ body: json(profileBody()) }));
    assert.equal(create.status, 201);
    const profile = create.jsonBody as ExportProfile;
    assert.equal(create.headers?.location, `/api/profiles/${profile.id}`);
    assert.equal(profile.state, 'Inactive');
    assert.deepEqual(profile.target, {
      kind: 'postgres',
      connectionSecret: 'sales-db',
      schema: 'public',
      tablePrefix: '',
    });
    assert.deepEqual(profile.options, {
      writeDeleteLog: true,
      retryCount: 12,
      retryIntervalSeconds: 5,
      initialSync: true,
      registerWebhook: true,
      enableChangeTracking: false,
    });

    const get = await api.get(withId(profile.id.toUpperCase()));
    assert.equal(get.status, 200);
    assert.deepEqual(get.jsonBody, profile);

    const list = await api.list(request());
    assert.deepEqual(
      (list.jsonBody as ExportProfile[]).map((p) => p.id),
      [profile.id],
    );

    const replace = await api.replace(
      withId(profile.id, {
        body: json(
          profileBody({
            name: 'Sales (EU)',
            target: { kind: 'postgres', connectionSecret: 'sales-db', tablePrefix: 'crm' },
          }),
        ),
      }),
    );
    assert.equal(replace.status, 200, JSON.stringify(replace.jsonBody));
    assert.equal((replace.jsonBody as ExportProfile).name, 'Sales (EU)');
    assert.equal((await store.getProfile(profile.id))?.target.tablePrefix, 'crm');

    const activate = await api.activate(withId(profile.id));
    assert.equal(activate.status, 200, JSON.stringify(activate.jsonBody));
    const active = activate.jsonBody as ExportProfile & { initialSync: { instanceId: string; entities: string[] } };
    assert.equal(active.state, 'Active');
    assert.deepEqual(active.initialSync, { instanceId: 'sync-1', full: false, entities: ['account', 'contact'] });
    assert.equal(ctx.started.length, 1);
    assert.equal(ctx.started[0].profile.id, profile.id);
    assert.equal(ctx.started[0].full, false);
    assert.deepEqual(
      (await store.entityStatuses(profile.id)).map((s) => [s.entity, s.syncState]),
      [
        ['account', 'Queued'],
        ['contact', 'Queued'],
      ],
    );

    // The copy of account is a quarter done after 100 s: 10 rows/s, 300 s to go.
    await store.updateSyncState(profile.id, 'account', {
      syncState: 'InProgress',
      syncStartedAt: new Date(NOW.getTime() - 100_000),
      rowsEstimated: 4000,
      rowsCopied: 0,
    });
    // Read as two id ranges: 600 and 400 rows so far, folded into the entity's 1,000.
    const mid = '00000000-0000-0000-0000-800000000000';
    await store.startPartitionedCopy(
      { profileId: profile.id, entity: 'account', nextLink: 'tracked', deltaLink: null, pagesDone: 1 },
      [
        { partition: 0, after: null, upTo: mid },
        { partition: 1, after: mid, upTo: null },
      ],
    );
    const page = { profileId: profile.id, entity: 'account', pagesDone: 1, done: false };
    await store.savePartitionProgress({ ...page, partition: 0, lastId: '00000000-0000-0000-0000-100000000000' }, 600);
    await store.savePartitionProgress({ ...page, partition: 1, lastId: '00000000-0000-0000-0000-900000000000' }, 400);
    await store.recordMetrics(profile.id, 'contact', {
      received: 5,
      applied: 4,
      failed: 1,
      lagMs: 250,
      lastAppliedAt: NOW,
    });
    const status = await api.status(withId(profile.id));
    assert.equal(status.status, 200);
    const view = status.jsonBody as {
      state: string;
      initialSync: string;
      totals: Record<string, unknown>;
      entities: Record<string, unknown>[];
    };
    assert.equal(view.state, 'Active');
    assert.equal(view.initialSync, 'InProgress');
    assert.equal(view.entities[0].entity, 'account');
    assert.equal(view.entities[0].rowsPerSecond, 10);
    assert.equal(view.entities[0].etaSeconds, 300);
    assert.equal(view.entities[0].estimatedCompletionAt, '2026-11-05T10:05:00.000Z');
    assert.equal(view.entities[1].etaSeconds, null, 'no ETA for an entity that is only queued');
    assert.deepEqual(view.entities[0].partitions, [
      { partition: 0, from: null, to: mid, rowsCopied: 600, pagesDone: 1, done: false },
      { partition: 1, from: mid, to: null, rowsCopied: 400, pagesDone: 1, done: false },
    ]);
    assert.deepEqual(view.entities[1].partitions, []);
    assert.equal(view.totals.received, 5);
    assert.equal(view.totals.applied, 4);
    assert.equal(view.totals.failed, 1);
    assert.equal(view.totals.rowsCopied, 1000);
    assert.deepEqual(view.totals.bySyncState, { NotStarted: 0, Queued: 1, InProgress: 1, Completed: 0, Failed: 0 });

    const deactivate = await api.deactivate(withId(profile.id));
    assert.equal(deactivate.status, 200);
    assert.equal((deactivate.jsonBody as ExportProfile).state, 'Inactive');
    assert.deepEqual(ctx.stopped, [profile.id]);

    const remove = await api.delete(withId(profile.id));
    assert.equal(remove.status, 204);
    assert.equal((await api.get(withId(profile.id))).status, 404);
    assert.deepEqual((await api.list(request())).jsonBody, []);
  });

  it('answers 400 naming the field for an unknown key, a bad entity name, a bad GUID and an out-of-range retry count', async () => {
    await using ctx = await apiContext();
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [
        profileBody({ options: { foo: true } }),
        '/options/foo',
        /unknown property `foo` at \/options — allowed: writeDeleteLog/,
      ],
      [profileBody({ entities: ['account', 'Bad-Name'] }), '/entities/1', /"Bad-Name" is not allowed/],
      [profileBody({ organizationId: 'not-a-guid' }), '/organizationId', /expected a GUID/],
      [profileBody({ options: { retryCount: 101 } }), '/options/retryCount', /101 is out of range — allowed: 0 to 100/],
    ];
    const existing = await created(ctx.api);
    for (const [body, field, message] of cases) {
      for (const result of [
        await ctx.api.create(request({ body: json(body) })),
        await ctx.api.replace(withId(existing.id, { body: json(body) })),
      ]) {
        assert.equal(result.status, 400);
        const error = errorOf(result);
        assert.equal(error.code, 'VALIDATION_FAILED');
        assert.ok(
          error.details?.some((d) => d.field === field),
          `${field} in ${JSON.stringify(error.details)}`,
        );
        assert.match(error.message, message);
      }
    }
    assert.equal(((await ctx.api.list(request())).jsonBody as unknown[]).length, 1, 'nothing invalid was stored');
    assert.equal((await ctx.store.getProfile(existing.id))?.name, 'Sales to SQL', 'nothing invalid was replaced');
  });

  it("refuses a profile naming the app's own payload-encryption-key (400 naming the field), never reading it", async () => {
    await using ctx = await apiContext();
    const existing = await created(ctx.api);
    const body = profileBody({ target: { kind: 'postgres', connectionSecret: 'payload-encryption-key' } });
    for (const result of [
      await ctx.api.create(request({ body: json(body) })),
      await ctx.api.replace(withId(existing.id, { body: json(body) })),
    ]) {
      assert.equal(result.status, 400);
      const error = errorOf(result);
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.deepEqual(
        error.details?.map((d) => [d.field, d.value]),
        [['/target/connectionSecret', 'payload-encryption-key']],
      );
      assert.match(error.message, /one of the app's own secrets/);
      assert.doesNotMatch(JSON.stringify(result.jsonBody), new RegExp(PAYLOAD_KEY.slice(0, 12)));
    }
    assert.equal(((await ctx.api.list(request())).jsonBody as unknown[]).length, 1, 'nothing refused was stored');

    // A profile stored before the rule is refused at activation, before its secret is read or tried.
    const stored = await ctx.store.createProfile({
      ...(await ctx.store.getProfile(existing.id))!,
      target: { kind: 'postgres', connectionSecret: 'payload-encryption-key', schema: 'public', tablePrefix: '' },
    });
    const activation = await ctx.api.activate(withId(stored.id));
    assert.equal(activation.status, 400);
    assert.equal(errorOf(activation).details?.[0]?.field, '/target/connectionSecret');
    assert.equal((await ctx.store.getProfile(stored.id))?.state, 'Inactive');
    assert.equal(ctx.started.length, 0);
  });

  it('refuses a source that is not https on a Dataverse host (400 naming /source/url, the value and what is allowed)', async () => {
    await using ctx = await apiContext();
    for (const url of ['http://169.254.169.254', 'http://evil.example.com', 'https://evil.example.com']) {
      const result = await ctx.api.create(request({ body: json(profileBody({ source: { url } })) }));
      assert.equal(result.status, 400, url);
      const error = errorOf(result);
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.deepEqual(
        error.details?.map((d) => [d.field, d.value]),
        [['/source/url', url]],
      );
      assert.match(error.message, /allowed: https:\/\/<org> on \*\.dynamics\.com/);
    }
    for (const url of ['https://contoso.crm4.dynamics.com', 'http://127.0.0.1:5123']) {
      assert.equal((await ctx.api.create(request({ body: json(profileBody({ source: { url } })) }))).status, 201, url);
    }
    assert.equal(((await ctx.api.list(request())).jsonBody as unknown[]).length, 2);
  });

  it("never answers with the connection string a target's driver echoed", async () => {
    await using ctx = await apiContext({
      probeTarget: async (_kind, connectionString) => {
        // A driver-level stand-in for one that repeats its input in its message.
        throw new Error(`cannot parse ${connectionString}`);
      },
    });
    const profile = await created(ctx.api, { target: { kind: 'postgres', connectionSecret: 'dead-db' } });
    const result = await ctx.api.activate(withId(profile.id));
    assert.equal(result.status, 422);
    assert.equal(errorOf(result).code, 'TARGET_UNREACHABLE');
    assert.match(errorOf(result).message, /cannot parse \[redacted\]/);
    assert.doesNotMatch(JSON.stringify(result.jsonBody), /nobody:secret/);
  });

  it('answers 400 MALFORMED_JSON for a body that is not JSON or is empty', async () => {
    await using ctx = await apiContext();
    for (const body of ['{"name": ', '', undefined]) {
      const result = await ctx.api.create(request({ body }));
      assert.equal(result.status, 400);
      assert.equal(errorOf(result).code, 'MALFORMED_JSON');
    }
  });

  it('answers 404 PROFILE_NOT_FOUND naming the id, for unknown and non-GUID ids alike', async () => {
    await using ctx = await apiContext();
    const { api } = ctx;
    const routes = [api.get, api.delete, api.activate, api.deactivate, api.status, api.failures];
    for (const id of [UNKNOWN_ID, 'not-a-guid', "1' OR '1'='1"]) {
      for (const route of routes) {
        const result = await route(withId(id));
        assert.equal(result.status, 404, `${route.name} ${id}`);
        assert.equal(errorOf(result).code, 'PROFILE_NOT_FOUND');
        assert.ok(errorOf(result).message.includes(id));
      }
      const replace = await api.replace(withId(id, { body: json(profileBody()) }));
      assert.equal(replace.status, 404);
    }
  });

  it('refuses to activate with an unknown secret (422 naming it) and leaves the profile inactive', async () => {
    await using ctx = await apiContext();
    const profile = await created(ctx.api, { target: { kind: 'postgres', connectionSecret: 'no-such-secret' } });
    const result = await ctx.api.activate(withId(profile.id));
    assert.equal(result.status, 422);
    const error = errorOf(result);
    assert.equal(error.code, 'SECRET_NOT_FOUND');
    assert.match(error.message, /'no-such-secret' does not exist\. Create a secret named 'no-such-secret'/);
    assert.equal((await ctx.store.getProfile(profile.id))?.state, 'Inactive');
    assert.equal(ctx.started.length, 0);
  });

  it('refuses to activate when the target does not answer (422 with the reason) and leaves the profile inactive', async () => {
    await using ctx = await apiContext();
    const profile = await created(ctx.api, { target: { kind: 'postgres', connectionSecret: 'dead-db' } });
    const result = await ctx.api.activate(withId(profile.id));
    assert.equal(result.status, 422);
    const error = errorOf(result);
    assert.equal(error.code, 'TARGET_UNREACHABLE');
    assert.match(
      error.message,
      /stays inactive: cannot connect to the PostgreSQL target: connect ECONNREFUSED 127\.0\.0\.1:\d+/,
    );
    assert.equal((await ctx.store.getProfile(profile.id))?.state, 'Inactive');
    assert.deepEqual(
      (await ctx.store.entityStatuses(profile.id)).map((s) => s.syncState),
      ['NotStarted', 'NotStarted'],
    );
    assert.equal(ctx.started.length, 0);
  });

  it('leaves the profile inactive when the initial sync cannot be started', async () => {
    await using ctx = await apiContext({ failStart: true });
    const profile = await created(ctx.api);
    const result = await ctx.api.activate(withId(profile.id));
    assert.equal(result.status, 500);
    assert.equal((await ctx.store.getProfile(profile.id))?.state, 'Inactive');
  });

  it('activates and deactivates idempotently, starting the initial sync once', async () => {
    await using ctx = await apiContext();
    const profile = await created(ctx.api);
    const first = await ctx.api.activate(withId(profile.id));
    const second = await ctx.api.activate(withId(profile.id));
    assert.equal(first.status, 200);
    assert.equal(second.status, 200);
    assert.equal((second.jsonBody as ExportProfile).state, 'Active');
    assert.equal(ctx.started.length, 1);

    for (let i = 0; i < 2; i++) {
      const result = await ctx.api.deactivate(withId(profile.id));
      assert.equal(result.status, 200);
      assert.equal((result.jsonBody as ExportProfile).state, 'Inactive');
    }
    assert.deepEqual(ctx.stopped, [profile.id], 'stopped once');
  });

  it('activates without a copy when initialSync is false, and copies everything on ?full=true', async () => {
    await using ctx = await apiContext();
    const profile = await created(ctx.api, { options: { initialSync: false } });
    const result = await ctx.api.activate(withId(profile.id));
    assert.equal(result.status, 200);
    assert.equal((result.jsonBody as ExportProfile).state, 'Active');
    assert.equal(ctx.started.length, 0);
    assert.deepEqual(
      (await ctx.store.entityStatuses(profile.id)).map((s) => s.syncState),
      ['NotStarted', 'NotStarted'],
    );

    await ctx.api.deactivate(withId(profile.id));
    const full = await ctx.api.activate(withId(profile.id, { query: { full: 'true' } }));
    assert.equal(full.status, 200);
    assert.equal(ctx.started.length, 1);
    assert.equal(ctx.started[0].full, true);
  });

  it('resumes on re-activation: completed entities are not copied again unless full', async () => {
    await using ctx = await apiContext();
    const profile = await created(ctx.api);
    await ctx.api.activate(withId(profile.id));
    await ctx.store.updateSyncState(profile.id, 'account', {
      syncState: 'Completed',
      rowsCopied: 70,
      rowsEstimated: 70,
    });
    await ctx.api.deactivate(withId(profile.id));

    const again = await ctx.api.activate(withId(profile.id));
    assert.deepEqual((again.jsonBody as { initialSync: { entities: string[] } }).initialSync.entities, ['contact']);
    const statuses = await ctx.store.entityStatuses(profile.id);
    assert.deepEqual(
      statuses.map((s) => [s.entity, s.syncState, s.rowsCopied]),
      [
        ['account', 'Completed', 70],
        ['contact', 'Queued', 0],
      ],
    );

    await ctx.api.deactivate(withId(profile.id));
    const full = await ctx.api.activate(withId(profile.id, { query: { full: 'true' } }));
    assert.deepEqual((full.jsonBody as { initialSync: { entities: string[] } }).initialSync.entities, [
      'account',
      'contact',
    ]);
    assert.deepEqual(
      (await ctx.store.entityStatuses(profile.id)).map((s) => [s.entity, s.syncState, s.rowsCopied]),
      [
        ['account', 'Queued', 0],
        ['contact', 'Queued', 0],
      ],
    );
    assert.deepEqual(
      ctx.started.map((s) => s.full),
      [false, false, true],
    );
  });

  it('lets an active profile change its name and options and add entities, but not move or drop them', async () => {
    await using ctx = await apiContext();
    const profile = await created(ctx.api);
    await ctx.api.activate(withId(profile.id));
    await ctx.store.updateSyncState(profile.id, 'account', { syncState: 'Completed' });
    await ctx.store.updateSyncState(profile.id, 'contact', { syncState: 'Completed' });

    const grown = await ctx.api.replace(
      withId(profile.id, {
        body: json(
          profileBody({ name: 'Renamed', entities: ['account', 'contact', 'lead'], options: { retryCount: 3 } }),
        ),
      }),
    );
    assert.equal(grown.status, 200, JSON.stringify(grown.jsonBody));
    const body = grown.jsonBody as ExportProfile & { initialSync: { entities: string[] } };
    assert.equal(body.state, 'Active');
    assert.equal(body.options.retryCount, 3);
    assert.deepEqual(body.initialSync.entities, ['lead'], 'only the new entity is copied');
    assert.equal(ctx.started.length, 2);

    const conflicts: [Record<string, unknown>, string][] = [
      [
        profileBody({
          entities: ['account', 'contact', 'lead'],
          organizationId: '11111111-2222-4333-8444-555555555555',
        }),
        '/organizationId',
      ],
      [
        profileBody({
          entities: ['account', 'contact', 'lead'],
          target: { kind: 'postgres', connectionSecret: 'dead-db' },
        }),
        '/target/connectionSecret',
      ],
      [
        profileBody({
          entities: ['account', 'contact', 'lead'],
          target: { kind: 'mssql', connectionSecret: 'sales-db' },
        }),
        '/target/kind',
      ],
      [profileBody({ entities: ['account'] }), '/entities'],
    ];
    for (const [conflicting, field] of conflicts) {
      const result = await ctx.api.replace(withId(profile.id, { body: json(conflicting) }));
      assert.equal(result.status, 409, field);
      const error = errorOf(result);
      assert.equal(error.code, 'CONFLICT');
      assert.match(error.message, /Deactivate first/);
      assert.ok(
        error.details?.some((d) => d.field === field),
        `${field} in ${JSON.stringify(error.details)}`,
      );
    }
    const stored = await ctx.store.getProfile(profile.id);
    assert.equal(stored?.organizationId, ORG);
    assert.deepEqual(stored?.target.connectionSecret, 'sales-db');
    assert.deepEqual(stored?.entities, ['account', 'contact', 'lead']);
  });

  it('deletes an active profile after deactivating it, dropping tables on request and purging its failures', async () => {
    await using ctx = await apiContext();
    const profile = await created(ctx.api);
    await ctx.api.activate(withId(profile.id));
    await ctx.failureLog.writeFailures(profile.id, [
      {
        profileId: profile.id,
        entity: 'account',
        recordId: 'r1',
        changeType: 'upsert',
        time: NOW.toISOString(),
        reason: 'x',
        code: 'TARGET_PERMANENT',
      },
    ]);

    const result = await ctx.api.delete(withId(profile.id, { query: { dropTables: 'true' } }));
    assert.equal(result.status, 204);
    assert.deepEqual(ctx.stopped, [profile.id]);
    assert.deepEqual(ctx.dropped, [profile.id]);
    assert.equal(await ctx.store.getProfile(profile.id), undefined);
    assert.deepEqual(await ctx.failureLog.listFailures(profile.id), []);

    const other = await created(ctx.api);
    assert.equal((await ctx.api.delete(withId(other.id))).status, 204);
    assert.deepEqual(ctx.dropped, [profile.id], 'tables are dropped only when asked');
  });

  it('lists failures newest first as JSON or CSV, filtered by time and limited', async () => {
    await using ctx = await apiContext();
    const profile = await created(ctx.api);
    const entry = (time: string, recordId: string): FailureEntry => ({
      profileId: profile.id,
      entity: 'account',
      recordId,
      changeType: 'upsert',
      time,
      reason: 'value too long for column "name", "x"',
      code: 'TARGET_PERMANENT',
      attempts: 12,
    });
    await ctx.failureLog.writeFailures(profile.id, [
      entry('2026-11-05T08:00:00.000Z', 'r1'),
      entry('2026-11-05T09:30:00.000Z', 'r2'),
    ]);
    await ctx.failureLog.writeFailures(profile.id, [entry('2026-11-05T09:45:00.000Z', 'r3')]);

    const all = await ctx.api.failures(withId(profile.id));
    assert.equal(all.status, 200);
    assert.deepEqual(
      (all.jsonBody as FailureEntry[]).map((e) => e.recordId),
      ['r3', 'r2', 'r1'],
    );

    const ranged = await ctx.api.failures(
      withId(profile.id, { query: { from: '2026-11-05T09:00:00Z', to: '2026-11-05T09:40:00Z' } }),
    );
    assert.deepEqual(
      (ranged.jsonBody as FailureEntry[]).map((e) => e.recordId),
      ['r2'],
    );
    const limited = await ctx.api.failures(withId(profile.id, { query: { limit: '2' } }));
    assert.deepEqual(
      (limited.jsonBody as FailureEntry[]).map((e) => e.recordId),
      ['r3', 'r2'],
    );

    const csv = await ctx.api.failures(withId(profile.id, { headers: { Accept: 'text/csv' } }));
    assert.equal(csv.status, 200);
    assert.match(csv.headers?.['content-type'] ?? '', /^text\/csv/);
    const lines = (csv.body ?? '').trimEnd().split('\r\n');
    assert.equal(lines[0], 'Time,ProfileId,Entity,RecordId,ChangeType,Code,Reason,Attempts,CorrelationId');
    assert.equal(lines.length, 4);
    assert.ok(lines[1].startsWith(`2026-11-05T09:45:00.000Z,${profile.id},account,r3,upsert,TARGET_PERMANENT,`));
    assert.ok(lines[1].includes('"value too long for column ""name"", ""x"""'), 'the reason is quoted (RFC 4180)');

    const badDate = await ctx.api.failures(withId(profile.id, { query: { from: 'yesterday' } }));
    assert.equal(badDate.status, 400);
    assert.equal(errorOf(badDate).details?.[0].field, 'from');
    assert.match(errorOf(badDate).message, /'from' is "yesterday", which is not an ISO-8601 date-time/);
    const reversed = await ctx.api.failures(
      withId(profile.id, { query: { from: '2026-11-06T00:00:00Z', to: '2026-11-05T00:00:00Z' } }),
    );
    assert.equal(reversed.status, 400);
    const badLimit = await ctx.api.failures(withId(profile.id, { query: { limit: '0' } }));
    assert.equal(badLimit.status, 400);
    assert.equal(errorOf(badLimit).details?.[0].field, 'limit');
  });
});

describe('profile API: activating again after a deactivation', () => {
  it('resumes from the stored delta link instead of copying a completed entity again, unless ?full=true', async () => {
    await using ctx = await apiContext();
    const profile = await created(ctx.api);
    assert.equal((await ctx.api.activate(withId(profile.id))).status, 200);
    // The first copy finished for account (its delta link stored for reconcile) but not for contact.
    await ctx.store.updateSyncState(profile.id, 'account', { syncState: 'Completed', rowsCopied: 500 });
    await ctx.store.saveCheckpoint({
      profileId: profile.id,
      entity: 'account',
      nextLink: null,
      deltaLink: 'https://contoso.crm.dynamics.com/api/data/v9.2/accounts?$deltatoken=919042%2108%2f22%2f2017',
      pagesDone: 1,
    });
    assert.equal((await ctx.api.deactivate(withId(profile.id))).status, 200);

    const again = await ctx.api.activate(withId(profile.id));
    assert.equal(again.status, 200);
    assert.deepEqual((again.jsonBody as { initialSync?: { entities: string[] } }).initialSync?.entities, ['contact']);
    const account = (await ctx.store.entityStatuses(profile.id)).find((s) => s.entity === 'account');
    assert.equal(account?.syncState, 'Completed');
    assert.match((await ctx.store.getCheckpoint(profile.id, 'account'))?.deltaLink ?? '', /deltatoken/);

    assert.equal((await ctx.api.deactivate(withId(profile.id))).status, 200);
    const full = await ctx.api.activate(withId(profile.id, { query: { full: 'true' } }));
    assert.deepEqual((full.jsonBody as { initialSync?: { entities: string[] } }).initialSync?.entities, [
      'account',
      'contact',
    ]);
    assert.equal(ctx.started.at(-1)?.full, true);
    assert.equal(await ctx.store.getCheckpoint(profile.id, 'account'), undefined, 'a full copy starts from scratch');
  });
});
