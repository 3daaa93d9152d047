import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildRemoteExecutionContext, serializeRemoteExecutionContext } from '../../dev/dataverse-payloads.js';
import { connectClient } from '../../lib/postgres-pool.js';
import { eventually, type StackProcess, startStackProcess } from './support/stack-process.js';

/**
 * Boots `npm start`'s entry point as a user would and drives the product over HTTP: the profile API, a live
 * change from the sample organization through webhook → Service Bus stand-in → PostgreSQL, and shutdown.
 */
describe('the local stack, driven over HTTP', { timeout: 240_000 }, () => {
  let stack: StackProcess;
  let api: (path: string, init?: RequestInit & { json?: unknown }) => Promise<Response>;

  before(async () => {
    // Signed out: this suite pins the function-key rules; the console's sign-in has its own browser tests.
    stack = await startStackProcess({ args: ['--no-sign-in'] });
    console.log(`[e2e] stack healthy ${stack.readyMs} ms after spawn`);
    api = (path, init = {}) =>
      fetch(`${stack.info.apiBaseUrl}${path}`, {
        ...init,
        headers: {
          'x-functions-key': stack.info.functionKey,
          ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(init.headers as Record<string, string>),
        },
        body: init.json !== undefined ? JSON.stringify(init.json) : init.body,
      });
  });

  after(async () => {
    await stack?.[Symbol.asyncDispose]();
  });

  const profileBody = (overrides: Record<string, unknown> = {}) => ({
    name: 'Sales to SQL',
    organizationId: stack.info.sampleOrg.organizationId,
    source: { url: stack.info.sampleOrg.url },
    target: { kind: 'postgres', connectionSecret: 'local-postgres', schema: 'public' },
    entities: ['account', 'contact'],
    options: { writeDeleteLog: true, retryCount: 3, retryIntervalSeconds: 1, initialSync: false },
    ...overrides,
  });

  it('serves health anonymously and everything else only with the function key', async () => {
    const health = await fetch(`${stack.info.apiBaseUrl}/health`);
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { status: string }).status, 'ok');

    const anonymous = await fetch(`${stack.info.apiBaseUrl}/profiles`);
    assert.equal(anonymous.status, 401);
    const wrongKey = await fetch(`${stack.info.apiBaseUrl}/profiles`, { headers: { 'x-functions-key': 'nope' } });
    assert.equal(wrongKey.status, 401);
    const webhookWrongKey = await fetch(`${stack.info.apiBaseUrl}/webhooks/dataverse?code=wrong`, {
      method: 'POST',
      body: '{}',
    });
    assert.equal(webhookWrongKey.status, 401, 'a webhook with the wrong WebhookKey is refused');
    const byQuery = await fetch(`${stack.info.apiBaseUrl}/profiles?code=${encodeURIComponent(stack.info.functionKey)}`);
    assert.equal(byQuery.status, 200);

    const openapi = await api('/openapi.json');
    assert.equal(openapi.status, 200);
    const doc = (await openapi.json()) as { openapi: string; paths: Record<string, unknown> };
    assert.match(doc.openapi, /^3\.1/);
    assert.ok(doc.paths['/api/profiles/{id}/activate'] ?? doc.paths['/profiles/{id}/activate']);
  });

  it('runs a profile through create → get → list → replace → activate → status → deactivate → delete', async () => {
    const created = await api('/profiles', { method: 'POST', json: profileBody() });
    assert.equal(created.status, 201, await created.clone().text());
    const profile = (await created.json()) as { id: string; state: string; target: { schema: string } };
    assert.equal(profile.state, 'Inactive');

    const got = await api(`/profiles/${profile.id}`);
    assert.equal(got.status, 200);
    assert.equal(((await got.json()) as { name: string }).name, 'Sales to SQL');

    const list = (await (await api('/profiles')).json()) as { id: string }[] | { profiles: { id: string }[] };
    const ids = (Array.isArray(list) ? list : list.profiles).map((p) => p.id);
    assert.ok(ids.includes(profile.id));

    const replaced = await api(`/profiles/${profile.id}`, { method: 'PUT', json: profileBody({ name: 'Renamed' }) });
    assert.equal(replaced.status, 200, await replaced.clone().text());
    assert.equal(((await replaced.json()) as { name: string }).name, 'Renamed');

    const activated = await api(`/profiles/${profile.id}/activate`, { method: 'POST' });
    assert.equal(activated.status, 200, await activated.clone().text());
    assert.equal(((await activated.json()) as { state: string }).state, 'Active');
    const again = await api(`/profiles/${profile.id}/activate`, { method: 'POST' });
    assert.equal(again.status, 200, 'activate is idempotent');

    const status = await api(`/profiles/${profile.id}/status`);
    assert.equal(status.status, 200);
    const statusBody = (await status.json()) as { state: string; entities: { entity: string }[] };
    assert.equal(statusBody.state, 'Active');
    assert.deepEqual(
      statusBody.entities.map((e) => e.entity),
      ['account', 'contact'],
    );

    for (let i = 0; i < 2; i++) {
      const deactivated = await api(`/profiles/${profile.id}/deactivate`, { method: 'POST' });
      assert.equal(deactivated.status, 200);
      assert.equal(((await deactivated.json()) as { state: string }).state, 'Inactive');
    }

    const deleted = await api(`/profiles/${profile.id}`, { method: 'DELETE' });
    assert.ok([200, 204].includes(deleted.status));
    assert.equal((await api(`/profiles/${profile.id}`)).status, 404);
  });

  it('rejects an unknown key and a bad entity name with a 400 naming the field', async () => {
    const unknownKey = await api('/profiles', { method: 'POST', json: profileBody({ colour: 'blue' }) });
    assert.equal(unknownKey.status, 400);
    assert.match(await unknownKey.text(), /colour/);

    const badEntity = await api('/profiles', { method: 'POST', json: profileBody({ entities: ['Account-1'] }) });
    assert.equal(badEntity.status, 400);
    assert.match(await badEntity.text(), /entities\/0|entities\[0\]/);

    const malformed = await api('/profiles', {
      method: 'POST',
      body: '{"name":',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(malformed.status, 400);
  });

  it('refuses to activate a profile whose secret is unknown, leaving it Inactive', async () => {
    const created = await api('/profiles', {
      method: 'POST',
      json: profileBody({ target: { kind: 'postgres', connectionSecret: 'no-such-secret' } }),
    });
    const { id } = (await created.json()) as { id: string };
    const activated = await api(`/profiles/${id}/activate`, { method: 'POST' });
    assert.equal(activated.status, 422);
    assert.match(await activated.text(), /no-such-secret/);
    assert.equal(((await (await api(`/profiles/${id}`)).json()) as { state: string }).state, 'Inactive');
    await api(`/profiles/${id}`, { method: 'DELETE' });
  });

  it('carries a change made in the sample organization into PostgreSQL, and its delete', async () => {
    const created = await api('/profiles', {
      method: 'POST',
      json: profileBody({
        entities: ['account'],
        target: { kind: 'postgres', connectionSecret: 'local-postgres', tablePrefix: 'live' },
      }),
    });
    const { id } = (await created.json()) as { id: string };
    assert.equal((await api(`/profiles/${id}/activate`, { method: 'POST' })).status, 200);
    // Nothing was registered by hand: activation put the webhook and its steps into the sample org.
    const registration = (await (await api(`/profiles/${id}/registration`)).json()) as {
      inSync: boolean;
      steps: { message: string; exists: boolean; enabled: boolean }[];
    };
    assert.equal(registration.inSync, true, JSON.stringify(registration));
    assert.deepEqual(
      registration.steps.map((s) => [s.message, s.exists, s.enabled]),
      [
        ['Create', true, true],
        ['Update', true, true],
        ['Delete', true, true],
      ],
    );

    const webApi = `${stack.info.sampleOrg.url}/api/data/v9.2`;
    const post = await fetch(`${webApi}/accounts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'return=representation' },
      body: JSON.stringify({ name: 'Fabrikam E2E', revenue: 1234.5 }),
    });
    assert.ok(post.status === 201 || post.status === 204, `sample org create answered ${post.status}`);
    const location = post.headers.get('odata-entityid') ?? post.headers.get('location') ?? '';
    const accountId = /\(([0-9a-f-]{36})\)/.exec(location)?.[1];
    assert.ok(accountId, `no record id in ${location}`);

    const db = await connectClient({ connectionString: stack.info.postgresUrl });
    try {
      const row = await eventually(
        async () => {
          const r = await db.query('SELECT name FROM live_account WHERE id = $1', [accountId]);
          return r.rows[0] as { name: string } | undefined;
        },
        30_000,
        'the created account in live_account',
      );
      assert.equal(row.name, 'Fabrikam E2E');

      await fetch(`${webApi}/accounts(${accountId})`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Fabrikam renamed' }),
      });
      await eventually(
        async () => {
          const r = await db.query('SELECT name FROM live_account WHERE id = $1', [accountId]);
          return r.rows[0]?.name === 'Fabrikam renamed' ? true : undefined;
        },
        30_000,
        'the update',
      );

      await fetch(`${webApi}/accounts(${accountId})`, { method: 'DELETE' });
      await eventually(
        async () => {
          const r = await db.query('SELECT count(*)::int AS n FROM live_account WHERE id = $1', [accountId]);
          return r.rows[0].n === 0 ? true : undefined;
        },
        30_000,
        'the delete',
      );
      const log = await db.query('SELECT entityname FROM live_deletelog WHERE recordid = $1', [accountId]);
      assert.equal(log.rows[0]?.entityname, 'account');

      const status = (await (await api(`/profiles/${id}/status`)).json()) as {
        entities: { entity: string; applied: number }[];
      };
      assert.ok(status.entities[0].applied >= 3, JSON.stringify(status));
    } finally {
      await db.end();
    }
  });

  it('logs a change the target refuses, lists it, and heals it by resync from the Web API', async () => {
    const created = await api('/profiles', {
      method: 'POST',
      json: profileBody({
        entities: ['account'],
        target: { kind: 'postgres', connectionSecret: 'local-postgres', tablePrefix: 'rs' },
      }),
    });
    const { id } = (await created.json()) as { id: string };
    assert.equal((await api(`/profiles/${id}/activate`, { method: 'POST' })).status, 200);
    const webApi = `${stack.info.sampleOrg.url}/api/data/v9.2`;
    const first = (await (await fetch(`${webApi}/accounts?$top=1&$select=accountid,name`)).json()) as {
      value: { accountid: string; name: string }[];
    };
    const accountId = first.value[0].accountid;
    const deliver = (version: number, revenue: { type: 'money'; value: string } | { type: 'string'; value: string }) =>
      fetch(`${stack.info.apiBaseUrl}/webhooks/dataverse?code=${encodeURIComponent(stack.info.functionKey)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: serializeRemoteExecutionContext(
          buildRemoteExecutionContext({
            organizationId: stack.info.sampleOrg.organizationId,
            messageName: 'Update',
            entity: 'account',
            id: accountId,
            versionNumber: String(version),
            attributes: { name: { type: 'string', value: 'before' }, revenue },
          }),
        ),
      });
    assert.equal((await deliver(1, { type: 'money', value: '10.00' })).status, 202);
    const db = await connectClient({ connectionString: stack.info.postgresUrl });
    try {
      await eventually(
        async () =>
          (await db.query('SELECT 1 FROM rs_account WHERE id = $1', [accountId])).rowCount ? true : undefined,
        30_000,
        'the first change',
      );
      // A value the numeric column cannot hold: a permanent failure, logged once.
      assert.equal((await deliver(2, { type: 'string', value: 'not a number' })).status, 202);
      const failures = await eventually(
        async () => {
          const list = (await (await api(`/profiles/${id}/failures`)).json()) as { recordId: string; code: string }[];
          return list.length ? list : undefined;
        },
        30_000,
        'the failure-log line',
      );
      assert.deepEqual(
        failures.map((f) => [f.recordId, f.code]),
        [[accountId, 'TARGET_PERMANENT']],
      );
      const csv = await api(`/profiles/${id}/failures`, { headers: { accept: 'text/csv' } });
      assert.match(csv.headers.get('content-type') ?? '', /text\/csv/);
      assert.match(await csv.text(), new RegExp(accountId));

      // Resync is durable work: 202 with a status URL, polled until the orchestration completes.
      const resync = await api(`/profiles/${id}/failures/resync`, { method: 'POST' });
      assert.equal(resync.status, 202, await resync.clone().text());
      const started = (await resync.json()) as { id: string; statusQueryGetUri: string };
      assert.equal(resync.headers.get('location'), started.statusQueryGetUri);
      const result = await eventually(
        async () => {
          const status = (await (await fetch(started.statusQueryGetUri)).json()) as {
            runtimeStatus: string;
            output: { stage: string; attempted: number; succeeded: number };
          };
          if (status.runtimeStatus === 'Failed') throw new Error(JSON.stringify(status));
          return status.runtimeStatus === 'Completed' ? status.output : undefined;
        },
        60_000,
        'the resync to complete',
      );
      assert.equal(result.stage, 'done');
      assert.equal(result.attempted, 1);
      assert.equal(result.succeeded, 1);
      assert.deepEqual(await (await api(`/profiles/${id}/failures`)).json(), []);
      const healed = await db.query('SELECT name FROM rs_account WHERE id = $1', [accountId]);
      assert.equal(healed.rows[0].name, first.value[0].name, 'the row now holds what Dataverse holds');
    } finally {
      await db.end();
    }
  });

  it("deletes an active profile with dropTables: its tables go, another profile's stay", async () => {
    const list = (await (await api('/profiles')).json()) as { id: string; target: { tablePrefix: string } }[];
    const live = list.find((p) => p.target.tablePrefix === 'live');
    assert.ok(live, 'the live profile from the earlier test');
    const deleted = await api(`/profiles/${live.id}?dropTables=true`, { method: 'DELETE' });
    assert.ok([200, 204].includes(deleted.status), await deleted.text());
    assert.equal((await api(`/profiles/${live.id}`)).status, 404);
    const db = await connectClient({ connectionString: stack.info.postgresUrl });
    try {
      const tables = await db.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
      const names = tables.rows.map((r) => r.tablename as string);
      assert.ok(!names.includes('live_account'), `live_account dropped: ${names.join(', ')}`);
      assert.ok(names.includes('rs_account'), 'the other profile keeps its table');
    } finally {
      await db.end();
    }
  });

  it('widens a column when Dataverse raises its MaxLength: a 300-character name arrives, nothing is failure-logged', async () => {
    const created = await api('/profiles', {
      method: 'POST',
      json: profileBody({
        entities: ['account'],
        target: { kind: 'postgres', connectionSecret: 'local-postgres', tablePrefix: 'wide' },
      }),
    });
    const { id } = (await created.json()) as { id: string };
    assert.equal((await api(`/profiles/${id}/activate`, { method: 'POST' })).status, 200);
    const webApi = `${stack.info.sampleOrg.url}/api/data/v9.2`;
    const first = (await (await fetch(`${webApi}/accounts?$top=1&$select=accountid`)).json()) as {
      value: { accountid: string }[];
    };
    const accountId = first.value[0].accountid;
    const rename = async (name: string) => {
      const res = await fetch(`${webApi}/accounts(${accountId})`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name }),
      });
      assert.ok(res.ok, `PATCH answered ${res.status}`);
    };
    const db = await connectClient({ connectionString: stack.info.postgresUrl });
    const nameIs = (name: string) =>
      eventually(
        async () => {
          const r = await db.query('SELECT name FROM wide_account WHERE id = $1', [accountId]);
          return r.rows[0]?.name === name ? true : undefined;
        },
        30_000,
        `the name of ${name.length} characters`,
      );
    const nameLength = async () =>
      (
        await db.query(
          "SELECT character_maximum_length AS n FROM information_schema.columns WHERE table_name = 'wide_account' AND column_name = 'name'",
        )
      ).rows[0].n;
    try {
      await rename('short');
      await nameIs('short');
      assert.equal(await nameLength(), 160, 'the webhook-made column has the metadata length');

      const widen = await fetch(`${stack.info.sampleOrg.url}/_sample/metadata`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ change: 'maxLength', entity: 'account', attribute: 'name', maxLength: 400 }),
      });
      assert.equal(widen.status, 204, await widen.text());
      const long = 'N'.repeat(300);
      await rename(long);
      await nameIs(long).catch(async (err) => {
        const failures = await (await api(`/profiles/${id}/failures`)).text();
        throw new Error(`${err}; failures: ${failures}; stack output: ${stack.output().slice(-4000)}`);
      });

      assert.equal(await nameLength(), 400);
      assert.deepEqual(await (await api(`/profiles/${id}/failures`)).json(), []);
    } finally {
      await db.end();
    }
  });

  it("writes a new option's label row in OptionSetMetadata when reconcile is run through the host's admin API", async () => {
    const created = await api('/profiles', {
      method: 'POST',
      json: profileBody({
        entities: ['account'],
        target: { kind: 'postgres', connectionSecret: 'local-postgres', tablePrefix: 'labels' },
        options: { retryCount: 3, retryIntervalSeconds: 1, initialSync: true },
      }),
    });
    const { id } = (await created.json()) as { id: string };
    const activated = await api(`/profiles/${id}/activate`, { method: 'POST' });
    assert.ok(activated.ok, `activate answered ${activated.status}`);
    const db = await connectClient({ connectionString: stack.info.postgresUrl });
    const label = async () =>
      (
        await db.query(
          "SELECT localizedlabel FROM labels_optionsetmetadata WHERE entityname = 'account' AND optionsetname = 'industrycode' AND option = 990001",
        )
      ).rows[0]?.localizedlabel as string | undefined;
    try {
      // The copy writes the metadata tables and leaves the delta link reconcile follows.
      await eventually(
        async () => {
          const status = (await (await api(`/profiles/${id}/status`)).json()) as {
            entities: { entity: string; syncState: string }[];
          };
          return status.entities.find((e) => e.entity === 'account')?.syncState === 'Completed' ? true : undefined;
        },
        120_000,
        'the initial sync of account',
      );
      assert.equal(await label(), undefined);

      const added = await fetch(`${stack.info.sampleOrg.url}/_sample/metadata`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          change: 'option',
          entity: 'account',
          attribute: 'industrycode',
          value: 990001,
          label: 'Robotics',
        }),
      });
      assert.equal(added.status, 204, await added.text());
      // Run the reconcile timer now, as an operator would in Azure, instead of waiting for its schedule.
      const origin = new URL(stack.info.apiBaseUrl).origin;
      const triggered = await fetch(`${origin}/admin/functions/reconcile`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-functions-key': stack.info.masterKey },
        body: JSON.stringify({ input: '' }),
      });
      assert.equal(triggered.status, 202, await triggered.text());
      const written = await eventually(async () => await label(), 60_000, 'the label row of the new option');
      assert.equal(written, 'Robotics');
    } finally {
      await db.end();
    }
  });

  it('refuses a second stack on the same data, without harming the running one', async () => {
    await assert.rejects(startStackProcess({ dataDir: stack.dataDir, fresh: false }), /already running/);
    assert.equal((await fetch(`${stack.info.apiBaseUrl}/health`)).status, 200);
  });

  it('stops every part cleanly on Ctrl-C', async () => {
    const code = await stack.stop('SIGINT');
    assert.equal(code, 0, stack.output());
    assert.match(stack.output(), /stopped cleanly/);
  });
});
