import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DevHost, type FunctionRegistry, loadFunctionApp } from '../../dev/host/index.js';
import { methodsOf, ROUTES } from '../../lib/api/routes.js';
import { assertDescribesBindings } from '../support/dev-host-description.js';

const functionsDir = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'functions');
const SETTINGS = { CleanupSchedule: '0 */15 * * * *', ReconcileSchedule: '0 */5 * * * *' };
const KEY = 'registration-test-key';

/**
 * The app's own registrations (dist/functions/*.js), read through the @azure/functions-core stand-in: what the
 * Functions host would read from them is what the dev host serves, and it is the contract of docs/architecture.md §1–§3.
 */
describe('the app as the Functions host would read it', () => {
  let registry: FunctionRegistry;
  let host: DevHost;

  before(async () => {
    const files = readdirSync(functionsDir)
      .filter((f) => f.endsWith('.js'))
      .map((f) => join(functionsDir, f));
    registry = await loadFunctionApp(files, { env: SETTINGS });
    host = new DevHost(registry, { functionKey: KEY, env: SETTINGS, serviceBus: false, timers: false });
    await host.listen(0);
  });

  after(async () => {
    await host?.stop();
  });

  it('registers the four triggers of the design and the profile API, with their routes, keys, queue and schedules', () => {
    const byName = new Map(host.describe().map((d) => [d.name, d]));
    const http = [...byName.values()]
      .filter((d) => d.triggerType === 'httpTrigger')
      .map((d) => `${d.methods?.join(',')} /api/${d.route} ${d.authLevel}`)
      .sort();
    // Exactly the route table, each route under its own name, plus the console's own routes; the management
    // routes are anonymous at the host (the app admits principals by app role, or the key).
    const adminRoutes = [
      'GET /api/admin/{*path} anonymous',
      'GET /api/audit anonymous',
      'GET /api/me anonymous',
      'GET /api/organizations/catalog anonymous',
    ];
    assert.deepEqual(
      http,
      [...ROUTES.map((r) => `${methodsOf(r).join(',')} /api/${r.route} ${r.authLevel}`), ...adminRoutes].sort(),
    );
    for (const route of ROUTES) assert.equal(byName.get(route.name)?.route, route.route, route.name);
    assert.ok(http.includes('POST /api/profiles/{id}/failures/resync anonymous'));
    assert.ok(http.includes('POST /api/webhooks/dataverse function'));
    assert.ok(http.includes('GET /api/health anonymous'));
    assert.deepEqual(byName.get('applyChanges'), {
      name: 'applyChanges',
      triggerType: 'serviceBusTrigger',
      queueName: 'changes',
      connection: 'ServiceBusConnection',
      cardinality: 'many',
    });
    assert.deepEqual(byName.get('cleanup'), {
      name: 'cleanup',
      triggerType: 'timerTrigger',
      schedule: SETTINGS.CleanupSchedule,
    });
    assert.equal(byName.get('reconcile')?.schedule, SETTINGS.ReconcileSchedule);
    assert.equal(byName.get('initialSync')?.triggerType, 'orchestrationTrigger');
    assert.equal(byName.get('resyncFailures')?.triggerType, 'orchestrationTrigger');
    assert.equal(byName.get('resyncFailuresStep')?.triggerType, 'activityTrigger');
  });

  it('describes every registration exactly as its binding metadata says', () => {
    assertDescribesBindings(host, registry, SETTINGS);
  });

  it('serves each HTTP route: health and the console without a key, every other route only with one', async () => {
    const base = host.url!;
    assert.equal((await fetch(`${base}/api/health`)).status, 200);
    const open = new Set(['health', 'console']);
    for (const d of host.describe().filter((x) => x.triggerType === 'httpTrigger' && !open.has(x.name))) {
      const path = `/api/${d.route!.replace('{id}', '00000000-0000-4000-8000-000000000000')}`;
      const method = d.methods![0];
      const anonymous = await fetch(`${base}${path}`, { method });
      assert.equal(anonymous.status, 401, `${method} ${path} without a key`);
      const wrongMethod = await fetch(`${base}${path}?code=${KEY}`, { method: 'PATCH' });
      assert.equal(wrongMethod.status, 405, `PATCH ${path}`);
    }
  });

  it('answers a broken setting with the coded error body, naming the setting', async () => {
    // This host has no control store settings: the runtime cannot start, and every profile route says why.
    for (const path of ['/api/profiles', '/api/failures/unattributed']) {
      const res = await fetch(`${host.url}${path}?code=${KEY}`);
      assert.equal(res.status, 500, path);
      assert.match(res.headers.get('content-type') ?? '', /application\/json/);
      const body = (await res.json()) as { code: string; message: string; details: { field: string }[] };
      assert.equal(body.code, 'CONFIG_INVALID');
      assert.match(body.message, /ControlStoreKind/);
      assert.ok(
        body.details.some((d) => d.field === 'ControlStoreKind'),
        JSON.stringify(body.details),
      );
    }
  });
});
