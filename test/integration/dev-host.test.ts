import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CronExpressionParser } from 'cron-parser';
import { DevHost, type FunctionRegistry, loadFunctionApp } from '../../dev/host/index.js';
import { AppError } from '../../lib/errors.js';
import { createLogger, type Logger } from '../../lib/log.js';
import { observed } from '../fixtures/functions-app/state.js';
import { assertDescribesBindings } from '../support/dev-host-description.js';

const KEY = 'test-function-key';
const appFile = (name: string) => fileURLToPath(new URL(`../fixtures/functions-app/${name}.js`, import.meta.url));
const APP = ['http', 'timer', 'durable', 'servicebus'].map(appFile);
const SETTINGS = {
  CleanupSchedule: '0 */5 * * * *',
  ChangesQueue: 'changes-dev-host',
  ServiceBusConnection: 'Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=x;SharedAccessKey=y;UseDevelopmentEmulator=true',
};

/** A logger whose lines the test can read. */
function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { logger: createLogger({ level: 'debug', sink: (_l, line) => lines.push(JSON.parse(line)) }), lines };
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

let registry: FunctionRegistry;
before(async () => {
  registry = await loadFunctionApp(APP, { env: SETTINGS });
});

describe('dev host: HTTP triggers', () => {
  let host: DevHost;
  let base: string;
  const log = capturingLogger();
  before(async () => {
    host = new DevHost(registry, { functionKey: KEY, logger: log.logger, serviceBus: false, timers: false });
    base = `${(await host.listen(0)).url}/api`;
  });
  after(() => host.stop());

  it('serves an anonymous route without a key', async () => {
    const res = await fetch(`${base}/health`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
  });

  it('answers 401 JSON on a function-level route without a key or with a wrong one', async () => {
    for (const init of [{}, { headers: { 'x-functions-key': 'wrong' } }]) {
      const res = await fetch(`${base}/items/7`, init);
      assert.equal(res.status, 401);
      const body = (await res.json()) as { code: string; message: string };
      assert.equal(body.code, 'UNAUTHORIZED');
      assert.match(body.message, /x-functions-key/);
    }
    assert.equal((await fetch(`${base}/items/7?code=wrong`)).status, 401);
  });

  it('accepts the key in the x-functions-key header and passes route params and query', async () => {
    const res = await fetch(`${base}/items/abc-42?view=full`, { headers: { 'x-functions-key': KEY } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-item-id'), 'abc-42');
    assert.deepEqual(await res.json(), {
      id: 'abc-42',
      query: { view: 'full' },
      functionName: 'getItem',
      hasInvocationId: true,
    });
  });

  it('accepts the key as ?code= (how Dataverse sends a WebhookKey)', async () => {
    const res = await fetch(`${base}/items/9?code=${KEY}`, { method: 'POST', body: JSON.stringify({ name: 'n' }) });
    assert.equal(res.status, 201);
    const body = (await res.json()) as { id: string; body: unknown; query: Record<string, string> };
    assert.equal(body.id, '9');
    assert.deepEqual(body.body, { name: 'n' });
    assert.equal(body.query.code, KEY);
  });

  it('treats an admin-level route like a function-level one: the key opens it', async () => {
    assert.equal((await fetch(`${base}/admin/ping`)).status, 401);
    const res = await fetch(`${base}/admin/ping`, { headers: { 'x-functions-key': KEY } });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'pong');
  });

  it('matches an optional route parameter present or absent, and returns bytes as sent', async () => {
    assert.equal(await (await fetch(`${base}/files`)).text(), 'file:index');
    assert.equal(await (await fetch(`${base}/FILES/readme`)).text(), 'file:readme');
    const binary = await fetch(`${base}/files/binary`);
    assert.equal(binary.headers.get('content-type'), 'application/octet-stream');
    assert.deepEqual([...new Uint8Array(await binary.arrayBuffer())], [0, 1, 2, 255]);
  });

  it('answers 404 for an unknown route and for a path outside the route prefix', async () => {
    for (const path of [`${base}/nothing-here`, `${base}/items/1/extra`, base.replace(/\/api$/, '/health')]) {
      const res = await fetch(`${path}?code=${KEY}`);
      assert.equal(res.status, 404, path);
      assert.equal(((await res.json()) as { code: string }).code, 'NOT_FOUND');
    }
  });

  it('answers 405 with Allow for a method the route does not accept, before checking the key', async () => {
    const res = await fetch(`${base}/items/1`, { method: 'DELETE' });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'GET, POST');
    assert.equal(((await res.json()) as { code: string }).code, 'METHOD_NOT_ALLOWED');
  });

  it('answers 500 when the handler throws, and logs the error', async () => {
    const res = await fetch(`${base}/files/boom`);
    assert.equal(res.status, 500);
    const failed = log.lines.find((l) => l.function === 'files' && l.level === 'error');
    assert.ok(failed, 'the failed invocation is logged');
    assert.match(JSON.stringify(failed.error), /handler exploded/);
  });

  it('routes context.log from a handler to the host logger with the function name', async () => {
    await fetch(`${base}/health`);
    assert.ok(log.lines.some((l) => l.message === 'health checked' && l.function === 'health'));
  });

  it('keeps a JSON log line written through context.log as one entry with its fields', async () => {
    await fetch(`${base}/items/json-7?code=${KEY}`);
    const entry = log.lines.find((l) => l.message === 'item served' && l.itemId === 'json-7');
    assert.ok(entry, 'the JSON line became an entry of its own');
    assert.equal(entry.function, 'getItem');
    assert.equal(entry.level, 'info');
  });
});

describe('dev host: describe()', () => {
  it('lists each function as the host reads its trigger, with %settings% resolved', () => {
    const host = new DevHost(registry, { functionKey: KEY, env: SETTINGS });
    const byName = new Map(host.describe().map((d) => [d.name, d]));
    assert.deepEqual(byName.get('health'), {
      name: 'health',
      triggerType: 'httpTrigger',
      route: 'health',
      methods: ['GET'],
      authLevel: 'anonymous',
    });
    assert.deepEqual(byName.get('orchestrationStatus'), {
      name: 'orchestrationStatus',
      triggerType: 'httpTrigger',
      route: 'instances/{id}',
      methods: ['GET', 'POST', 'DELETE'],
      authLevel: 'function',
    });
    assert.deepEqual(byName.get('applyChanges'), {
      name: 'applyChanges',
      triggerType: 'serviceBusTrigger',
      queueName: 'changes-dev-host',
      connection: 'ServiceBusConnection',
      cardinality: 'many',
    });
    assert.deepEqual(byName.get('cleanup'), {
      name: 'cleanup',
      triggerType: 'timerTrigger',
      schedule: '0 */5 * * * *',
    });
    assert.deepEqual(byName.get('warmup'), {
      name: 'warmup',
      triggerType: 'timerTrigger',
      schedule: '0 0 0 1 1 *',
      runOnStartup: true,
    });
    assert.deepEqual(byName.get('fanOut'), { name: 'fanOut', triggerType: 'orchestrationTrigger' });
    assert.deepEqual(byName.get('flaky'), { name: 'flaky', triggerType: 'activityTrigger' });
  });

  it('agrees with the binding metadata each registration handed to @azure/functions-core', () => {
    assertDescribesBindings(new DevHost(registry, { functionKey: KEY, env: SETTINGS }), registry, SETTINGS);
  });

  it('refuses a %setting% that resolves to nothing, naming the setting', () => {
    assert.throws(
      () => new DevHost(registry, { functionKey: KEY, env: { ...SETTINGS, ChangesQueue: undefined as never } }),
      (err: unknown) => err instanceof AppError && /ChangesQueue/.test(err.message) && /applyChanges/.test(err.message),
    );
  });

  it('refuses a five-field cron schedule: NCRONTAB has six', () => {
    assert.throws(
      () => new DevHost(registry, { functionKey: KEY, env: { ...SETTINGS, CleanupSchedule: '*/5 * * * *' } }),
      (err: unknown) => err instanceof AppError && /cleanup/.test(err.message) && /six fields/.test(err.message),
    );
  });
});

describe('dev host: timers', () => {
  it('fireTimer runs the function now with the TimerInfo the host passes', async () => {
    const host = new DevHost(registry, { functionKey: KEY, env: SETTINGS, logger: capturingLogger().logger });
    const before = observed.calls.cleanup ?? 0;
    const firedAt = new Date();
    await host.fireTimer('cleanup');
    assert.equal(observed.calls.cleanup, before + 1);
    const timer = observed.timerInputs.at(-1) as {
      isPastDue: boolean;
      scheduleStatus: { next: string; last: string };
    };
    assert.equal(timer.isPastDue, false);
    const expectedNext = CronExpressionParser.parse(SETTINGS.CleanupSchedule, { currentDate: firedAt, tz: 'UTC' })
      .next()
      .toDate();
    assert.equal(timer.scheduleStatus.next, expectedNext.toISOString());
    await assert.rejects(host.fireTimer('health'), /No timer function named "health"/);
    await host.stop();
  });

  it('retries a failing timer by its function-level retry policy, passing the retry count', async () => {
    const host = new DevHost(registry, { functionKey: KEY, env: SETTINGS, logger: capturingLogger().logger });
    await host.fireTimer('retriedTimer');
    assert.deepEqual(observed.timerRetries, [0, 1, 2]);
    await host.stop();
  });

  it('fires a timer on its schedule and a runOnStartup timer at start', async () => {
    const host = new DevHost(registry, {
      functionKey: KEY,
      env: { ...SETTINGS, CleanupSchedule: '*/1 * * * * *' },
      logger: capturingLogger().logger,
      serviceBus: false,
    });
    const cleanups = observed.calls.cleanup ?? 0;
    const warmups = observed.calls.warmup ?? 0;
    await host.start();
    try {
      await waitFor('the runOnStartup timer', () => (observed.calls.warmup ?? 0) === warmups + 1, 2000);
      await waitFor('two scheduled runs', () => (observed.calls.cleanup ?? 0) >= cleanups + 2, 3500);
    } finally {
      await host.stop();
    }
    const stoppedAt = observed.calls.cleanup;
    await new Promise((resolve) => setTimeout(resolve, 1200));
    assert.equal(observed.calls.cleanup, stoppedAt, 'no run after stop()');
  });
});

describe('dev host: admin API (POST /admin/functions/{name})', () => {
  const MASTER = 'test-master-key';
  let host: DevHost;
  let origin: string;
  before(async () => {
    host = new DevHost(registry, {
      functionKey: KEY,
      masterKey: MASTER,
      env: SETTINGS,
      logger: capturingLogger().logger,
      serviceBus: false,
      timers: false,
    });
    origin = (await host.listen(0)).url;
  });
  after(() => host.stop());

  const runNow = (name: string, key: string | undefined, body: string = JSON.stringify({ input: '' })) =>
    fetch(`${origin}/admin/functions/${name}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { 'x-functions-key': key }) },
      body,
    });

  it('answers 202 and runs a timer function with a TimerInfo that is not past due', async () => {
    const before = observed.calls.cleanup ?? 0;
    const inputs = observed.timerInputs.length;
    const res = await runNow('cleanup', MASTER);
    assert.equal(res.status, 202);
    await waitFor('the cleanup run', () => (observed.calls.cleanup ?? 0) === before + 1);
    const timer = observed.timerInputs[inputs] as { isPastDue: boolean; scheduleStatus: { next: string } };
    assert.equal(timer.isPastDue, false);
    assert.ok(Date.parse(timer.scheduleStatus.next) > Date.now() - 1000, 'next occurrence is in the future');
  });

  it('matches the function name case-insensitively, as the host does', async () => {
    const before = observed.calls.warmup ?? 0;
    assert.equal((await runNow('WarmUp', MASTER)).status, 202);
    await waitFor('the warmup run', () => (observed.calls.warmup ?? 0) === before + 1);
  });

  it('answers 401 without the master key, with a wrong one and with the function key', async () => {
    const before = observed.calls.cleanup ?? 0;
    for (const key of [undefined, 'wrong', KEY]) {
      const res = await runNow('cleanup', key);
      assert.equal(res.status, 401);
      const body = (await res.json()) as { code: string; message: string };
      assert.equal(body.code, 'UNAUTHORIZED');
      assert.match(body.message, /master key/);
    }
    assert.equal(observed.calls.cleanup ?? 0, before, 'nothing ran');
  });

  it('answers 404 naming an unknown function', async () => {
    const res = await runNow('noSuchFunction', MASTER);
    assert.equal(res.status, 404);
    assert.match(((await res.json()) as { message: string }).message, /noSuchFunction/);
  });

  it('answers 400 for an HTTP-triggered function: its route is how it runs', async () => {
    const res = await runNow('health', MASTER);
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { message: string }).message, /HTTP-triggered/);
  });

  it('answers 400 for a body that is not {"input": …}, running nothing', async () => {
    const before = observed.calls.cleanup ?? 0;
    for (const body of ['not json', '[1]', JSON.stringify({ input: { a: 1 } })]) {
      const res = await runNow('cleanup', MASTER, body);
      assert.equal(res.status, 400, body);
      assert.match(((await res.json()) as { message: string }).message, /"input"/);
    }
    assert.equal(observed.calls.cleanup ?? 0, before);
  });

  it('answers 405 with Allow: POST for another method', async () => {
    const res = await fetch(`${origin}/admin/functions/cleanup`, { headers: { 'x-functions-key': MASTER } });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'POST');
  });

  it('lets the master key open a function-level route, as in Azure', async () => {
    const res = await fetch(`${origin}/api/items/5`, { headers: { 'x-functions-key': MASTER } });
    assert.equal(res.status, 200);
  });
});
