/**
 * Database-wide conditions on a real PostgreSQL target: a sign-in without the right to create tables, and a
 * database switched to read-only. Changes wait (nothing failure-logged), the profile's status says why and what
 * to do, and everything applies once the condition clears; activation refuses such a target with the fix.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { buildRemoteExecutionContext, serializeRemoteExecutionContext } from '../../dev/dataverse-payloads.js';
import { profileStatus } from '../../lib/api/profile-status.js';
import { createProfilesApi } from '../../lib/api/profiles-api.js';
import { silentLogger } from '../../lib/log.js';
import { ingestWebhook } from '../../lib/pipeline/ingest.js';
import type { ExportProfile } from '../../lib/profiles/schema.js';
import { LocalSecretProvider } from '../../lib/secrets/local-provider.js';
import { probeTarget } from '../../lib/sink/index.js';
import { stopOwnAzurite } from '../support/azurite.js';
import { startPipelineStack } from '../support/pipeline-stack.js';
import { createTestDatabase, stopOwnServer, type TestDatabase, testServerUrl } from '../support/postgres.js';
import { loopbackReach } from '../support/reach.js';

after(async () => {
  await stopOwnAzurite();
  await stopOwnServer();
});

/** Runs SQL as the server's superuser, in `database` (default: the server's own). */
async function asAdmin(sql: string, database?: string): Promise<void> {
  const url = await testServerUrl();
  const client = new pg.Client({ connectionString: database ? url.replace(/\/[^/?]*(\?|$)/, `/${database}$1`) : url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A login role that may connect to `db` and use, but not create in, its public schema; its connection string. */
async function limitedRole(db: TestDatabase): Promise<{ role: string; url: string }> {
  const role = `r_${randomBytes(5).toString('hex')}`;
  await asAdmin(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'; GRANT CONNECT ON DATABASE ${db.name} TO ${role}`);
  await asAdmin(`REVOKE CREATE ON SCHEMA public FROM PUBLIC; GRANT USAGE ON SCHEMA public TO ${role}`, db.name);
  return { role, url: db.url.replace(/\/\/[^@]*@/, `//${role}:pw@`) };
}

/** Ends every session on `db`, as a failover does: the pool reconnects and sees the new settings. */
async function dropSessions(db: TestDatabase): Promise<void> {
  await asAdmin(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${db.name}' AND pid <> pg_backend_pid()`,
  );
  await new Promise((r) => setTimeout(r, 300));
}

const webhook = (organizationId: string, n: number, entity = 'account') =>
  serializeRemoteExecutionContext(
    buildRemoteExecutionContext({
      organizationId,
      messageName: 'Update',
      entity,
      id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
      attributes: { name: { type: 'string', value: `account ${n}` } },
      versionNumber: String(1000 + n),
    }),
  );

describe('database-wide conditions on a real PostgreSQL target', { timeout: 120_000 }, () => {
  it('waits with a status reason while the sign-in may not create tables, and applies everything once granted', async () => {
    await using target = await createTestDatabase();
    const { role, url } = await limitedRole(target);
    await using stack = await startPipelineStack({ secrets: { limited: url } });
    const profile = await stack.createProfile({ target: { kind: 'postgres', connectionSecret: 'limited' } });
    for (let n = 1; n <= 5; n++) await ingestWebhook(stack.runtime.ingestDeps(), webhook(stack.organizationId, n), {});

    await assert.rejects(stack.drain({ timeoutMs: 4_000 }), /did not drain/, 'the changes keep waiting');
    const waiting = await stack.runtime.store.targetState(profile.id);
    assert.equal(waiting?.state, 'misconfigured');
    assert.match(waiting?.reason ?? '', /permission denied for schema public/);
    assert.match(waiting?.action ?? '', /GRANT USAGE, CREATE ON SCHEMA "public"/);
    const view = profileStatus(profile as ExportProfile, [], new Date(), waiting);
    assert.equal(view.targetState, 'misconfigured');
    assert.deepEqual(await stack.runtime.failureLog.listFailures(profile.id), [], 'a missing grant is nobody’s row');

    await asAdmin(`GRANT CREATE ON SCHEMA public TO ${role}`, target.name);
    await stack.drain();
    const rows = await target.pool.query('SELECT count(*)::int AS n FROM account');
    assert.equal(rows.rows[0].n, 5);
    assert.equal(await stack.runtime.store.targetState(profile.id), undefined, 'status clears');
    assert.deepEqual(await stack.runtime.failureLog.listFailures(profile.id), []);
  });

  it('waits while the database is read-only and applies the changes once it is writable again', async () => {
    await using target = await createTestDatabase();
    await using stack = await startPipelineStack({ secrets: { ro: target.url } });
    const profile = await stack.createProfile({ target: { kind: 'postgres', connectionSecret: 'ro' } });
    await ingestWebhook(stack.runtime.ingestDeps(), webhook(stack.organizationId, 1), {});
    await stack.drain();

    await asAdmin(`ALTER DATABASE ${target.name} SET default_transaction_read_only = on`);
    await dropSessions(target);
    for (let n = 2; n <= 6; n++) await ingestWebhook(stack.runtime.ingestDeps(), webhook(stack.organizationId, n), {});
    await assert.rejects(stack.drain({ timeoutMs: 4_000 }), /did not drain/);
    const waiting = await stack.runtime.store.targetState(profile.id);
    assert.equal(waiting?.state, 'unavailable');
    assert.match(waiting?.reason ?? '', /read-only transaction/);
    assert.deepEqual(
      await stack.runtime.failureLog.listFailures(profile.id),
      [],
      'a read-only database is nobody’s row',
    );

    await asAdmin(`ALTER DATABASE ${target.name} SET default_transaction_read_only = off`);
    await dropSessions(target);
    await stack.drain();
    const rows = await target.pool.query('SELECT count(*)::int AS n FROM account');
    assert.equal(rows.rows[0].n, 6);
    assert.equal(await stack.runtime.store.targetState(profile.id), undefined);
    assert.deepEqual(await stack.runtime.failureLog.listFailures(profile.id), []);
  });

  it('lets one entity wait on status while its table cannot fit, applies the others, and drops it once removed', async () => {
    await using target = await createTestDatabase();
    const fillers = Array.from({ length: 1_599 }, (_, i) => `f${i + 1} integer`);
    await target.pool.query(`CREATE TABLE contact (id uuid PRIMARY KEY, ${fillers.join(', ')})`);
    await using stack = await startPipelineStack({ secrets: { wide: target.url } });
    const profile = await stack.createProfile({
      target: { kind: 'postgres', connectionSecret: 'wide' },
      entities: ['account', 'contact'],
    });
    for (let n = 1; n <= 3; n++) {
      await ingestWebhook(stack.runtime.ingestDeps(), webhook(stack.organizationId, n), {});
      await ingestWebhook(stack.runtime.ingestDeps(), webhook(stack.organizationId, n, 'contact'), {});
    }
    const draining = stack.drain({ timeoutMs: 60_000 });
    const contactError = async () =>
      (await stack.runtime.store.entityStatuses(profile.id)).find((s) => s.entity === 'contact')?.lastError;
    for (const deadline = Date.now() + 30_000; !(await contactError()); ) {
      assert.ok(Date.now() < deadline, 'the entity status names why contact waits');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match((await contactError()) ?? '', /^TABLE_LIMIT_EXCEEDED: table contact would have 1605 columns/);
    const view = profileStatus(
      profile as ExportProfile,
      await stack.runtime.store.entityStatuses(profile.id),
      new Date(),
    );
    assert.equal(view.targetState, 'ready', 'the target itself is fine');
    assert.match(
      view.entities.find((e) => e.entity === 'contact')?.lastError ?? '',
      /remove the entity from the profile/,
    );
    assert.equal((await target.pool.query('SELECT count(*)::int AS n FROM account')).rows[0].n, 3);
    assert.deepEqual(
      await stack.runtime.failureLog.listFailures(profile.id),
      [],
      'a table that cannot fit is nobody’s row',
    );

    // The administrator takes contact out of the profile: its waiting changes are dropped, its status goes.
    const { id, state, createdOn, modifiedOn, ...definition } = profile;
    await stack.runtime.store.replaceProfile(profile.id, { ...definition, entities: ['account'] });
    await draining;
    assert.equal(await contactError(), undefined);
    assert.deepEqual(await stack.runtime.failureLog.listFailures(profile.id), []);
  });

  it('refuses to activate a target the sign-in may not create tables in, naming the GRANT that fixes it', async () => {
    await using control = await createTestDatabase();
    await using target = await createTestDatabase();
    const { role, url } = await limitedRole(target);
    const { openPostgresControlStore } = await import('../../lib/profiles/postgres-control-store.js');
    const store = await openPostgresControlStore(control.url);
    try {
      await store.migrate();
      const api = createProfilesApi({
        store,
        reach: loopbackReach,
        secrets: new LocalSecretProvider({ limited: url }),
        probeTarget,
        startInitialSync: async () => 'sync',
        logger: silentLogger,
      });
      const created = await api.create({
        body: JSON.stringify({
          name: 'limited',
          organizationId: '6f2d1c3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f',
          source: { url: 'https://contoso.crm.dynamics.com' },
          target: { kind: 'postgres', connectionSecret: 'limited' },
          entities: ['account'],
        }),
      });
      const id = (created.jsonBody as ExportProfile).id;
      const refused = await api.activate({ params: { id } });
      assert.equal(refused.status, 422);
      const body = refused.jsonBody as { code: string; message: string; details: { value?: unknown }[] };
      assert.equal(body.code, 'TARGET_MISCONFIGURED');
      assert.match(body.message, /lacks CREATE on schema "public"/);
      assert.deepEqual(
        body.details.map((d) => d.value),
        [`GRANT CREATE ON SCHEMA "public" TO "${role}";`],
      );
      assert.equal((await store.getProfile(id))?.state, 'Inactive', 'nothing half-done');

      await asAdmin(`GRANT CREATE ON SCHEMA public TO ${role}`, target.name);
      assert.equal((await api.activate({ params: { id } })).status, 200);

      await asAdmin(`ALTER DATABASE ${target.name} SET default_transaction_read_only = on`);
      const readOnly = await probeTarget('postgres', url).catch(
        (err: Error & { details?: { value?: unknown }[] }) => err,
      );
      assert.ok(readOnly instanceof Error);
      assert.deepEqual(
        readOnly.details?.map((d) => d.value),
        [`ALTER DATABASE "${target.name}" SET default_transaction_read_only = off;`],
      );
    } finally {
      await store.close();
    }
  });
});
