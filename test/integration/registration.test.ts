import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { type SampleOrg, startSampleOrg } from '../../dev/sample-org/index.js';
import { createProfilesApi, type ProfilesApi } from '../../lib/api/profiles-api.js';
import type { ApiRequest } from '../../lib/api/request.js';
import { createDataverseClient } from '../../lib/dataverse/webapi/client.js';
import { parseWebhook } from '../../lib/dataverse/webhook/parse.js';
import type { HttpResult } from '../../lib/http/boundary.js';
import { silentLogger } from '../../lib/log.js';
import type { ControlStore } from '../../lib/profiles/control-store.js';
import { openPostgresControlStore } from '../../lib/profiles/postgres-control-store.js';
import type { ExportProfile } from '../../lib/profiles/schema.js';
import { type RegistrationView, WebhookRegistrar } from '../../lib/registration/registrar.js';
import { LocalSecretProvider } from '../../lib/secrets/local-provider.js';
import { probeTarget } from '../../lib/sink/index.js';
import { createTestDatabase, stopOwnServer } from '../support/postgres.js';
import { loopbackReach } from '../support/reach.js';

/**
 * Activation's Dataverse side against the sample organization over its Web API: the registration read back from
 * its entity sets, and its webhooks — which it fires only for registered, enabled steps — caught by a local
 * endpoint standing in for the app's webhook function.
 */
after(async () => {
  await stopOwnServer();
});

const FAST_RETRY = { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 };
const WEBHOOK_KEY = 'webhook-key-1';

interface Delivery {
  code: string | null;
  messageName: string;
  entity: string;
  body: string;
}

async function startWebhookEndpoint() {
  const received: Delivery[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        code: new URL(req.url ?? '/', 'http://localhost').searchParams.get('code'),
        messageName: String(req.headers['x-ms-dynamics-request-name']),
        entity: String(req.headers['x-ms-dynamics-entity-name']),
        body: Buffer.concat(chunks).toString('utf8'),
      });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/webhooks/dataverse`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

interface Context extends AsyncDisposable {
  org: SampleOrg;
  api: ProfilesApi;
  store: ControlStore;
  webhook: Awaited<ReturnType<typeof startWebhookEndpoint>>;
  registrar(): WebhookRegistrar;
  create(overrides?: Record<string, unknown>): Promise<ExportProfile>;
  /** Reads an entity set of the sample org through its Web API. */
  read(path: string): Promise<Record<string, unknown>[]>;
  /** Our steps in the organization by name → enabled. */
  steps(): Promise<Map<string, boolean>>;
}

async function context(options: { changeTrackingOff?: string[] } = {}): Promise<Context> {
  const control = await createTestDatabase();
  const target = await createTestDatabase();
  const store = await openPostgresControlStore(control.url);
  await store.migrate();
  const webhook = await startWebhookEndpoint();
  const org = await startSampleOrg({
    counts: { account: 5, contact: 5 },
    changeTrackingOff: options.changeTrackingOff,
  });
  const client = createDataverseClient({ url: org.url, logger: silentLogger, retry: FAST_RETRY });
  const registrar = () =>
    new WebhookRegistrar({
      listProfiles: () => store.listProfiles(),
      dataverseFor: () => client,
      webhook: { url: webhook.url, key: WEBHOOK_KEY },
      logger: silentLogger,
    });
  const api = createProfilesApi({
    store,
    reach: loopbackReach,
    secrets: new LocalSecretProvider({ 'sales-db': target.url }),
    probeTarget,
    startInitialSync: async () => 'sync',
    registration: registrar(),
    logger: silentLogger,
  });
  const read = async (path: string) => {
    const res = await fetch(`${org.url}/api/data/v9.2/${path}`);
    assert.equal(res.status, 200, `GET ${path}`);
    return ((await res.json()) as { value: Record<string, unknown>[] }).value;
  };
  return {
    org,
    api,
    store,
    webhook,
    registrar,
    read,
    async create(overrides = {}) {
      const result = await api.create({
        body: JSON.stringify({
          name: 'Sales',
          organizationId: org.organizationId,
          source: { url: org.url },
          target: { kind: 'postgres', connectionSecret: 'sales-db' },
          entities: ['account', 'contact'],
          options: { initialSync: false },
          ...overrides,
        }),
      });
      assert.equal(result.status, 201, JSON.stringify(result.jsonBody));
      return result.jsonBody as ExportProfile;
    },
    async steps() {
      const endpoints = await read(`serviceendpoints?$filter=${encodeURIComponent("name eq 'Dataverse Export'")}`);
      if (!endpoints.length) return new Map();
      const id = endpoints[0].serviceendpointid as string;
      const rows = await read(
        `sdkmessageprocessingsteps?$filter=${encodeURIComponent(`_eventhandler_value eq ${id}`)}`,
      );
      return new Map(rows.map((r) => [String(r.name), r.statecode === 0]));
    },
    async [Symbol.asyncDispose]() {
      await org.stop();
      await webhook.close();
      await store.close();
      await target[Symbol.asyncDispose]();
      await control[Symbol.asyncDispose]();
    },
  };
}

const withId = (id: string, parts: Omit<ApiRequest, 'params'> = {}): ApiRequest => ({ ...parts, params: { id } });

function ok(result: HttpResult, status = 200): Record<string, unknown> {
  assert.equal(result.status, status, JSON.stringify(result.jsonBody));
  return result.jsonBody as Record<string, unknown>;
}

async function write(org: SampleOrg, method: string, path: string, body?: unknown): Promise<string> {
  const res = await fetch(`${org.url}/api/data/v9.2/${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${await res.text()}`);
  return /\(([0-9a-f-]{36})\)/.exec(res.headers.get('odata-entityid') ?? '')?.[1] ?? '';
}

const account = (n: string) => `Dataverse Export: ${n} of account`;
const contact = (n: string) => `Dataverse Export: ${n} of contact`;

describe('webhook registration on activation', () => {
  it('registers one endpoint and async post-operation steps with their images, and the org then fires them', async () => {
    await using ctx = await context();
    const profile = await ctx.create();
    assert.deepEqual(await ctx.steps(), new Map(), 'nothing is registered before activation');
    await write(ctx.org, 'POST', 'accounts', { name: 'Before activation' });
    await ctx.org.drain();
    assert.equal(ctx.webhook.received.length, 0, 'a write without a step fires no webhook');

    ok(await ctx.api.activate(withId(profile.id)));
    const [endpoint, ...others] = await ctx.read('serviceendpoints');
    assert.equal(others.length, 0);
    assert.equal(endpoint.name, 'Dataverse Export');
    assert.equal(endpoint.contract, 8);
    assert.equal(endpoint.authtype, 4);
    assert.equal(endpoint.url, ctx.webhook.url);
    assert.equal(endpoint.authvalue, undefined, 'authvalue is write-only');

    const steps = await ctx.read('sdkmessageprocessingsteps');
    assert.deepEqual(
      steps.map((s) => s.name).sort(),
      [
        account('Create'),
        account('Delete'),
        account('Update'),
        contact('Create'),
        contact('Delete'),
        contact('Update'),
      ].sort(),
    );
    assert.ok(steps.every((s) => s.stage === 40 && s.mode === 1 && s.statecode === 0));
    assert.ok(steps.every((s) => s._eventhandler_value === endpoint.serviceendpointid));
    const images = await ctx.read('sdkmessageprocessingstepimages');
    const imageOf = (name: string) => {
      const step = steps.find((s) => s.name === name)!;
      return images.filter((i) => i._sdkmessageprocessingstepid_value === step.sdkmessageprocessingstepid);
    };
    assert.deepEqual(
      imageOf(account('Create')).map((i) => [i.imagetype, i.messagepropertyname, i.attributes]),
      [[1, 'Id', null]],
    );
    assert.deepEqual(
      imageOf(account('Update')).map((i) => [i.imagetype, i.messagepropertyname, i.attributes]),
      [[1, 'Target', null]],
    );
    assert.deepEqual(
      imageOf(contact('Delete')).map((i) => [i.imagetype, i.messagepropertyname, i.attributes]),
      [[0, 'Target', 'versionnumber']],
    );

    const id = await write(ctx.org, 'POST', 'accounts', { name: 'Fabrikam' });
    await write(ctx.org, 'PATCH', `accounts(${id})`, { numberofemployees: 7 });
    await write(ctx.org, 'DELETE', `accounts(${id})`);
    await ctx.org.drain();
    assert.deepEqual(
      ctx.webhook.received.map((d) => [d.messageName, d.code]),
      [
        ['Create', WEBHOOK_KEY],
        ['Update', WEBHOOK_KEY],
        ['Delete', WEBHOOK_KEY],
      ],
    );
    const [created, updated, deleted] = ctx.webhook.received.map((d) => parseWebhook(d.body, {}).changes[0]);
    assert.equal(created.attributes?.name?.type, 'string', 'the post-image carries the whole row');
    assert.ok(updated.attributes?.name, 'the Update post-image carries columns the request did not set');
    assert.ok(deleted.version.rowVersion, 'the Delete pre-image carries versionnumber');
  });

  it('shares steps between two profiles; deactivating one keeps the other stream; deletion removes what no one uses', async () => {
    await using ctx = await context();
    const sales = await ctx.create({ name: 'Sales', entities: ['account', 'contact'] });
    const finance = await ctx.create({ name: 'Finance', entities: ['account'] });
    ok(await ctx.api.activate(withId(sales.id)));
    ok(await ctx.api.activate(withId(finance.id)));
    assert.equal((await ctx.read('serviceendpoints')).length, 1, 'one endpoint per organization');
    assert.equal((await ctx.steps()).size, 6, 'account steps are shared, not doubled');

    ok(await ctx.api.deactivate(withId(sales.id)));
    const afterDeactivate = await ctx.steps();
    assert.equal(afterDeactivate.get(account('Update')), true, "Finance's account stream keeps flowing");
    assert.equal(afterDeactivate.get(contact('Update')), false, 'contact steps only Sales used are disabled');
    ctx.webhook.received.length = 0;
    const accountId = await write(ctx.org, 'POST', 'accounts', { name: 'Still exported' });
    await write(ctx.org, 'POST', 'contacts', { lastname: 'No longer exported' });
    await ctx.org.drain();
    assert.deepEqual(
      ctx.webhook.received.map((d) => [d.messageName, d.entity]),
      [['Create', 'account']],
    );

    ok(await ctx.api.delete(withId(sales.id)), 204);
    const afterDelete = await ctx.steps();
    assert.deepEqual([...afterDelete.keys()].sort(), [account('Create'), account('Delete'), account('Update')]);

    ok(await ctx.api.deactivate(withId(finance.id)));
    assert.ok(
      [...(await ctx.steps()).values()].every((enabled) => !enabled),
      'no active profile: all disabled',
    );
    ctx.webhook.received.length = 0;
    await write(ctx.org, 'PATCH', `accounts(${accountId})`, { name: 'Nobody listens' });
    await ctx.org.drain();
    assert.equal(ctx.webhook.received.length, 0, 'a write after deactivation no longer fires');

    ok(await ctx.api.delete(withId(finance.id)), 204);
    assert.equal((await ctx.read('serviceendpoints')).length, 0, 'the last profile takes the endpoint with it');
    assert.equal((await ctx.read('sdkmessageprocessingsteps')).length, 0);
    assert.equal((await ctx.read('sdkmessageprocessingstepimages')).length, 0);
  });

  it('creates nothing twice: again, two profiles at once, and two instances at once', async () => {
    await using ctx = await context();
    const a = await ctx.create({ name: 'A', entities: ['account'] });
    const b = await ctx.create({ name: 'B', entities: ['account', 'contact'] });
    const [first, second] = await Promise.all([ctx.api.activate(withId(a.id)), ctx.api.activate(withId(b.id))]);
    ok(first);
    ok(second);
    // Two instances of the app (separate registrars, no shared lock) reconciling the same organization at once.
    const profile = (await ctx.store.getProfile(b.id))!;
    await Promise.all([
      ctx.registrar().repair(profile),
      ctx.registrar().repair(profile),
      ctx.registrar().repair(profile),
    ]);
    ok(await ctx.api.activate(withId(a.id)), 200);

    assert.equal((await ctx.read('serviceendpoints')).length, 1);
    const steps = await ctx.read('sdkmessageprocessingsteps');
    assert.equal(steps.length, 6);
    assert.equal(new Set(steps.map((s) => s.name)).size, 6);
    const images = await ctx.read('sdkmessageprocessingstepimages');
    assert.equal(images.length, 6, 'one image per step');
    await write(ctx.org, 'POST', 'accounts', { name: 'Once' });
    await ctx.org.drain();
    assert.equal(ctx.webhook.received.length, 1, 'one write, one delivery');
  });

  it('two instances creating the endpoint at the same moment converge on one', async () => {
    await using ctx = await context();
    const profile = await ctx.create({ entities: ['account'] });
    const stored = (await ctx.store.setProfileState(profile.id, 'Active'))!;
    const reports = await Promise.all([ctx.registrar().repair(stored), ctx.registrar().repair(stored)]);
    assert.equal(new Set(reports.map((r) => r.endpointId)).size, 1, 'both name the same endpoint');
    assert.equal((await ctx.read('serviceendpoints')).length, 1);
    assert.equal((await ctx.read('sdkmessageprocessingsteps')).length, 3);
  });

  it('shows a step disabled or deleted by hand as drift, and the repair route restores it', async () => {
    await using ctx = await context();
    const profile = await ctx.create({ entities: ['account'] });
    ok(await ctx.api.activate(withId(profile.id)));
    const status = ok(await ctx.api.status(withId(profile.id)));
    assert.equal((status.registration as RegistrationView).inSync, true);

    const steps = await ctx.read('sdkmessageprocessingsteps');
    const update = steps.find((s) => s.name === account('Update'))!;
    const remove = steps.find((s) => s.name === account('Delete'))!;
    const images = await ctx.read('sdkmessageprocessingstepimages');
    const createImage = images.find(
      (i) =>
        i._sdkmessageprocessingstepid_value ===
        steps.find((s) => s.name === account('Create'))!.sdkmessageprocessingstepid,
    )!;
    const api = `${ctx.org.url}/api/data/v9.2`;
    const patch = await fetch(`${api}/sdkmessageprocessingsteps(${update.sdkmessageprocessingstepid})`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ statecode: 1, statuscode: 2 }),
    });
    assert.equal(patch.status, 204);
    assert.equal(
      (await fetch(`${api}/sdkmessageprocessingsteps(${remove.sdkmessageprocessingstepid})`, { method: 'DELETE' }))
        .status,
      204,
    );
    assert.equal(
      (
        await fetch(`${api}/sdkmessageprocessingstepimages(${createImage.sdkmessageprocessingstepimageid})`, {
          method: 'DELETE',
        })
      ).status,
      204,
    );

    const drifted = ok(await ctx.api.registration(withId(profile.id))) as unknown as RegistrationView;
    assert.equal(drifted.inSync, false);
    assert.deepEqual(
      drifted.steps.map((s) => [s.message, s.exists, s.enabled, s.drift]),
      [
        ['Create', true, true, 'image missing'],
        ['Update', true, false, 'disabled'],
        ['Delete', false, false, 'missing'],
      ],
    );
    const viaStatus = ok(await ctx.api.status(withId(profile.id))).registration as RegistrationView;
    assert.equal(viaStatus.inSync, false, 'status shows the same drift');

    const repaired = ok(await ctx.api.repairRegistration(withId(profile.id))) as unknown as RegistrationView;
    assert.equal(repaired.inSync, true);
    assert.ok(repaired.steps.every((s) => s.exists && s.enabled && s.imageOk));
    const id = await write(ctx.org, 'POST', 'accounts', { name: 'Repaired' });
    await write(ctx.org, 'DELETE', `accounts(${id})`);
    await ctx.org.drain();
    assert.deepEqual(
      ctx.webhook.received.map((d) => d.messageName),
      ['Create', 'Delete'],
    );
  });

  it('registers Associate and Disassociate when a profile exports an N:N relationship', async () => {
    await using ctx = await context();
    const profile = await ctx.create({ entities: ['account', 'contact'], relationships: ['new_accountcontact'] });
    ok(await ctx.api.activate(withId(profile.id)));
    const steps = await ctx.steps();
    assert.equal(steps.get('Dataverse Export: Associate'), true);
    assert.equal(steps.get('Dataverse Export: Disassociate'), true);
    const accountId = await write(ctx.org, 'POST', 'accounts', { name: 'Parent' });
    const contactId = await write(ctx.org, 'POST', 'contacts', { lastname: 'Child' });
    await write(ctx.org, 'POST', `accounts(${accountId})/new_accountcontact/$ref`, {
      '@odata.id': `${ctx.org.url}/api/data/v9.2/contacts(${contactId})`,
    });
    await ctx.org.drain();
    assert.deepEqual(
      ctx.webhook.received.map((d) => d.messageName),
      ['Create', 'Create', 'Associate'],
    );
  });

  it('leaves registration to the admin with options.registerWebhook false', async () => {
    await using ctx = await context();
    const profile = await ctx.create({ options: { initialSync: false, registerWebhook: false } });
    ok(await ctx.api.activate(withId(profile.id)));
    assert.equal((await ctx.read('serviceendpoints')).length, 0);
    const view = ok(await ctx.api.registration(withId(profile.id))) as unknown as RegistrationView;
    assert.equal(view.managed, false);
    assert.equal(view.inSync, true);
  });
});

describe('entity checks on activation', () => {
  it('refuses an unknown entity and relationship with 422 naming them, leaving the profile Inactive', async () => {
    await using ctx = await context();
    const profile = await ctx.create({ entities: ['account', 'new_nosuchtable'], relationships: ['new_nosuchlink'] });
    const result = await ctx.api.activate(withId(profile.id));
    assert.equal(result.status, 422);
    const error = result.jsonBody as { code: string; message: string; details: { field: string; value: string }[] };
    assert.equal(error.code, 'ENTITY_NOT_EXPORTABLE');
    assert.match(error.message, /new_nosuchtable/);
    assert.deepEqual(
      error.details.map((d) => [d.field, d.value]),
      [
        ['/entities', 'new_nosuchtable'],
        ['/relationships', 'new_nosuchlink'],
      ],
    );
    assert.equal((await ctx.store.getProfile(profile.id))?.state, 'Inactive');
    assert.equal((await ctx.read('serviceendpoints')).length, 0, 'nothing half-done');
  });

  it('refuses activitypointer with the reason', async () => {
    await using ctx = await context();
    const profile = await ctx.create({ entities: ['activitypointer'] });
    const result = await ctx.api.activate(withId(profile.id));
    assert.equal(result.status, 422);
    assert.match((result.jsonBody as { message: string }).message, /activitypointer.*export the activity tables/);
  });

  it('refuses a table with change tracking off, and switches it on with options.enableChangeTracking', async () => {
    await using ctx = await context({ changeTrackingOff: ['contact'] });
    const refused = await ctx.create({ name: 'Refused' });
    const result = await ctx.api.activate(withId(refused.id));
    assert.equal(result.status, 422);
    const error = result.jsonBody as { message: string; details: { value: string }[] };
    assert.match(error.message, /contact has change tracking off/);
    assert.deepEqual(
      error.details.map((d) => d.value),
      ['contact'],
    );

    const allowed = await ctx.create({ name: 'Allowed', options: { initialSync: false, enableChangeTracking: true } });
    ok(await ctx.api.activate(withId(allowed.id)));
    const [definition] = await ctx.read(
      `EntityDefinitions?$select=LogicalName,ChangeTrackingEnabled&$filter=${encodeURIComponent("LogicalName eq 'contact'")}`,
    );
    assert.equal(definition.ChangeTrackingEnabled, true);
    ok(await ctx.api.activate(withId(refused.id)), 200);
  });

  it('keeps the profile Inactive with the reason when Dataverse refuses the registration (403)', async () => {
    await using ctx = await context();
    const profile = await ctx.create();
    ctx.org.faults.refuseRegistration(403);
    const result = await ctx.api.activate(withId(profile.id));
    assert.equal(result.status, 422);
    const error = result.jsonBody as { code: string; message: string };
    assert.equal(error.code, 'REGISTRATION_REFUSED');
    assert.match(error.message, /missing prvCreateSdkMessageProcessingStep privilege|missing prvCreate/);
    assert.match(error.message, /registerWebhook/);
    assert.equal((await ctx.store.getProfile(profile.id))?.state, 'Inactive');

    ctx.org.faults.reset();
    ok(await ctx.api.activate(withId(profile.id)));
  });
});
