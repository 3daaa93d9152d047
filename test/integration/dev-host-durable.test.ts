import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DevHost, type FunctionRegistry, loadFunctionApp } from '../../dev/host/index.js';
import { createLogger } from '../../lib/log.js';
import { observed } from '../fixtures/functions-app/state.js';

const KEY = 'durable-test-key';
const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/functions-app/${name}.js`, import.meta.url));
const quiet = createLogger({ level: 'error', sink: () => {} });

interface HistoryEvent {
  EventType: number;
  EventId: number;
  TaskScheduledId?: number;
  TimerId?: number;
  Name?: string;
}
const TaskScheduled = 4;
const TaskFailed = 6;
const SubOrchestrationInstanceCreated = 7;
const TimerCreated = 10;
const TimerFired = 11;

let registry: FunctionRegistry;
const stateDirs: string[] = [];
function newStateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'dev-host-durable-'));
  stateDirs.push(dir);
  return dir;
}

before(async () => {
  registry = await loadFunctionApp([fixture('durable')]);
});
after(() => {
  for (const dir of stateDirs) rmSync(dir, { recursive: true, force: true });
});

/** Starts an orchestration through the app's own HTTP starter (durable client binding). */
async function startViaHttp(base: string, name: string, input: unknown, instanceId?: string) {
  const query = instanceId ? `&instanceId=${instanceId}` : '';
  const res = await fetch(`${base}/api/orchestrators/${name}?code=${KEY}${query}`, {
    method: 'POST',
    body: JSON.stringify(input),
  });
  assert.equal(res.status, 202, await res.clone().text());
  return (await res.json()) as { id: string; statusQueryGetUri: string; sendEventPostUri: string };
}

describe('dev host: durable orchestrations', () => {
  let host: DevHost;
  let base: string;
  before(async () => {
    host = new DevHost(registry, { functionKey: KEY, logger: quiet, stateDir: newStateDir() });
    base = (await host.listen(0)).url;
  });
  after(() => host.stop());

  it('fans out activities, retries a failing one, waits on a timer and calls a sub-orchestration', async () => {
    const started = Date.now();
    const { id } = await startViaHttp(base, 'fanOut', { items: ['a', 'bb', 'ccc'], waitMs: 300 });
    const status = await host.durable.waitForCompletion(id, 10_000);
    assert.equal(status.runtimeStatus, 'Completed', JSON.stringify(status.output));
    assert.deepEqual(status.output, {
      prepared: 'prepared 3',
      processed: ['A', 'BB', 'CCC'],
      flaky: 'ok after 2',
      child: 6,
    });
    assert.deepEqual(status.customStatus, { stage: 'done' });
    assert.ok(Date.now() - started >= 300, 'the durable timer was waited for');

    const history = host.durable.status(id, { showHistory: true }).history as HistoryEvent[];
    const scheduled = history.filter((e) => e.EventType === TaskScheduled).map((e) => e.Name);
    assert.deepEqual(scheduled, ['prepare', 'process', 'process', 'process', 'flaky', 'flaky']);
    assert.equal(history.filter((e) => e.EventType === TaskFailed).length, 1, 'one failed attempt of flaky');
    // The durable timer plus the retry policy's back-off timer.
    assert.equal(history.filter((e) => e.EventType === TimerCreated).length, 2);
    assert.equal(history.filter((e) => e.EventType === TimerFired).length, 2);
    const child = history.find((e) => e.EventType === SubOrchestrationInstanceCreated) as { InstanceId?: string };
    assert.ok(child?.InstanceId);
    const sub = host.durable.status(child.InstanceId);
    assert.equal(sub.name, 'sumLengths');
    assert.equal(sub.runtimeStatus, 'Completed');
    assert.equal(sub.output, 6);
  });

  it('serves the status URLs that createCheckStatusResponse hands out, only with the key', async () => {
    const start = await startViaHttp(base, 'fanOut', { items: ['x'] });
    await host.durable.waitForCompletion(start.id, 10_000);
    const url = new URL(start.statusQueryGetUri);
    assert.equal(url.origin, base);
    const res = await fetch(url);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { runtimeStatus: string; output: { processed: string[] } };
    assert.equal(body.runtimeStatus, 'Completed');
    assert.deepEqual(body.output.processed, ['X']);
    url.searchParams.delete('code');
    assert.equal((await fetch(url)).status, 401);
  });

  it('fails the orchestration with the activity error once the retry policy is exhausted', async () => {
    const before = observed.calls.alwaysFails ?? 0;
    const { id } = await startViaHttp(base, 'doomed', null);
    const status = await host.durable.waitForCompletion(id, 10_000);
    assert.equal(status.runtimeStatus, 'Failed');
    assert.match(String(status.output), /the target refused the row/);
    assert.equal(observed.calls.alwaysFails, before + 2, 'two attempts, as RetryOptions(…, 2) says');
  });

  it('continues as new with a fresh history, then waits for an external event raised through the client', async () => {
    const { id } = await startViaHttp(base, 'countdown', 2, 'countdown-1');
    assert.equal(id, 'countdown-1');
    const statusUrl = `${base}/api/instances/${id}?code=${KEY}`;
    let status: { runtimeStatus: string; customStatus: unknown; input: unknown } | undefined;
    const deadline = Date.now() + 5000;
    do {
      await new Promise((resolve) => setTimeout(resolve, 20));
      status = (await (await fetch(statusUrl)).json()) as typeof status;
    } while ((status?.customStatus as { waitingFor?: string })?.waitingFor !== 'approve' && Date.now() < deadline);
    assert.equal(status?.runtimeStatus, 'Running');
    assert.deepEqual(status?.customStatus, { waitingFor: 'approve' });
    assert.equal(status?.input, 0, 'the last execution runs with the input given to continueAsNew');
    for (const n of [2, 1, 0]) assert.equal(observed.calls[`process:tick-${n}`], 1, `tick-${n} ran once`);
    const history = host.durable.status(id, { showHistory: true }).history as HistoryEvent[];
    assert.deepEqual(
      history.filter((e) => e.EventType === TaskScheduled).map((e) => e.Name),
      ['process'],
      'history holds only the current execution',
    );

    const raised = await fetch(statusUrl, { method: 'POST', body: JSON.stringify({ by: 'test' }) });
    assert.equal(raised.status, 202);
    const done = await host.durable.waitForCompletion(id, 5000);
    assert.equal(done.runtimeStatus, 'Completed');
    assert.deepEqual(done.output, { approval: { by: 'test' } });
  });

  it('waits for parallel sub-orchestrations that continue as new, and reruns a finished instance id', async () => {
    for (const run of [1, 2]) {
      host.durable.startNew('lanes', 'lanes-once', JSON.stringify([2, 3]));
      const done = await host.durable.waitForCompletion('lanes-once', 5000);
      assert.equal(done.runtimeStatus, 'Completed', `run ${run}: ${JSON.stringify(done.output)}`);
      assert.deepEqual(done.output, [
        ['LANE-2', 'LANE-1'],
        ['LANE-3', 'LANE-2', 'LANE-1'],
      ]);
    }
  });

  it('fails a restarted parent whose sub-orchestration id is still running from the terminated run', async () => {
    host.durable.startNew('awaitApproval', 'parent', undefined);
    await waitUntil(() =>
      host.durable.list().some((s) => s.instanceId === 'parent:0' && s.runtimeStatus === 'Running'),
    );
    host.durable.terminate('parent', 'deactivated');
    assert.equal(host.durable.status('parent:0').runtimeStatus, 'Running', 'terminate does not reach the child');

    host.durable.startNew('awaitApproval', 'parent', undefined);
    const second = await host.durable.waitForCompletion('parent', 5000);
    assert.equal(second.runtimeStatus, 'Failed');
    assert.match(String(second.output), /'parent:0' is already Running/);

    host.durable.raiseEvent('parent:0', 'approve', '"late"');
    assert.deepEqual((await host.durable.waitForCompletion('parent:0', 5000)).output, { approval: 'late' });
    assert.equal(host.durable.status('parent').runtimeStatus, 'Failed', 'the old child does not report to the new run');
  });

  it('keeps an event raised before the orchestrator waits for it', async () => {
    host.durable.startNew('countdown', 'early-event', '0');
    host.durable.raiseEvent('early-event', 'approve', JSON.stringify('early'));
    const done = await host.durable.waitForCompletion('early-event', 5000);
    assert.deepEqual(done.output, { approval: 'early' });
  });

  it('terminates a running instance through the client', async () => {
    const { id } = await startViaHttp(base, 'countdown', 0);
    const res = await fetch(`${base}/api/instances/${id}?code=${KEY}&reason=not+needed`, { method: 'DELETE' });
    assert.equal(res.status, 202);
    const status = host.durable.status(id);
    assert.equal(status.runtimeStatus, 'Terminated');
    assert.equal(status.output, 'not needed');
  });

  it('refuses to start an instance id that is already running', async () => {
    host.durable.startNew('countdown', 'only-once', '0');
    await assert.rejects(
      async () => host.durable.startNew('countdown', 'only-once', '0'),
      /already exists and is (Pending|Running)/,
    );
    host.durable.terminate('only-once', 'cleanup');
  });
});

describe('dev host: host.json', () => {
  it('runs no more activities at once than maxConcurrentActivityFunctions, and serves under its routePrefix', async () => {
    const dir = newStateDir();
    const hostJson = join(dir, 'host.json');
    writeFileSync(
      hostJson,
      JSON.stringify({
        version: '2.0',
        extensions: { http: { routePrefix: 'v1' }, durableTask: { maxConcurrentActivityFunctions: 2 } },
      }),
    );
    const host = new DevHost(registry, { functionKey: KEY, logger: quiet, hostJson });
    const { url } = await host.listen(0);
    try {
      observed.slowSteps.mostAtOnce = 0;
      const res = await fetch(`${url}/v1/orchestrators/slowFanOut?code=${KEY}`, {
        method: 'POST',
        body: JSON.stringify({ items: ['1', '2', '3', '4', '5'], ms: 80 }),
      });
      assert.equal(res.status, 202);
      const { id } = (await res.json()) as { id: string };
      const done = await host.durable.waitForCompletion(id, 5000);
      assert.deepEqual(done.output, ['1 done', '2 done', '3 done', '4 done', '5 done']);
      assert.equal(observed.slowSteps.mostAtOnce, 2);
      assert.equal((await fetch(`${url}/api/orchestrators/slowFanOut?code=${KEY}`, { method: 'POST' })).status, 404);
    } finally {
      await host.stop();
    }
  });

  it('refuses a host.json setting that is not a positive integer, naming it', () => {
    const hostJson = join(newStateDir(), 'host.json');
    writeFileSync(hostJson, JSON.stringify({ extensions: { serviceBus: { maxMessageBatchSize: '500' } } }));
    assert.throws(
      () => new DevHost(registry, { functionKey: KEY, logger: quiet, hostJson }),
      /extensions\.serviceBus\.maxMessageBatchSize is "500"; use a positive integer/,
    );
  });
});

describe('dev host: durable state across restarts', () => {
  it('resumes a waiting instance and an armed durable timer in a new host on the same state directory', async () => {
    const stateDir = newStateDir();
    const first = new DevHost(registry, { functionKey: KEY, logger: quiet, stateDir });
    await first.start();
    first.durable.startNew('countdown', 'waits', '0');
    first.durable.startNew('fanOut', 'sleeps', JSON.stringify({ items: ['p'], waitMs: 600 }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(first.durable.status('waits').runtimeStatus, 'Running');
    assert.equal(first.durable.status('sleeps').runtimeStatus, 'Running');
    await first.stop();

    const second = new DevHost(registry, { functionKey: KEY, logger: quiet, stateDir });
    await second.start();
    try {
      assert.equal(second.durable.status('waits').runtimeStatus, 'Running');
      second.durable.raiseEvent('waits', 'approve', JSON.stringify('after restart'));
      assert.deepEqual((await second.durable.waitForCompletion('waits', 5000)).output, { approval: 'after restart' });
      const sleeps = await second.durable.waitForCompletion('sleeps', 5000);
      assert.equal(sleeps.runtimeStatus, 'Completed');
      assert.deepEqual((sleeps.output as { processed: string[] }).processed, ['P']);
    } finally {
      await second.stop();
    }
  });

  it('finishes an orchestration after its host process is killed mid-activity, redoing only unfinished work', async () => {
    const stateDir = newStateDir();
    const journal = join(stateDir, 'journal.txt');
    const input = JSON.stringify({ items: ['a', 'b', 'c', 'd'], ms: 500 });
    const first = runHost([stateDir, 'start', 'sync-1', input], journal);
    try {
      await first.next('started');
      await waitForFile(journal, (text) => text.includes('start c'), 8000);
    } finally {
      first.child.kill('SIGKILL');
      await first.exited;
    }
    const beforeRestart = lines(journal);
    assert.ok(beforeRestart.includes('end b'), 'a and b finished before the kill');
    assert.ok(!beforeRestart.includes('end c'), 'the kill came while c was running');

    const second = runHost([stateDir, 'wait', 'sync-1'], journal);
    const finished = (await second.next('finished')) as { status: { runtimeStatus: string; output: string[] } };
    await second.exited;
    assert.equal(finished.status.runtimeStatus, 'Completed');
    assert.deepEqual(finished.status.output, ['a done', 'b done', 'c done', 'd done']);
    const all = lines(journal);
    for (const item of ['a', 'b', 'd']) {
      assert.equal(all.filter((l) => l === `start ${item}`).length, 1, `${item} ran exactly once`);
    }
    // The activity in flight at the kill ran again (at-least-once); finished ones were replayed from history.
    assert.equal(all.filter((l) => l === 'start c').length, 2, 'c ran again after the restart');
    assert.equal(all.filter((l) => l === 'end c').length, 1);
  });
});

async function waitUntil(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

async function waitForFile(file: string, check: (text: string) => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(existsSync(file) && check(readFileSync(file, 'utf8')))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${file}: ${lines(file).join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The dev host in a child process (test/fixtures/functions-app/run-host.ts), read line by line. */
function runHost(args: string[], journal: string) {
  const child: ChildProcess = spawn(process.execPath, [fixture('run-host'), ...args], {
    env: { ...process.env, STEP_JOURNAL: journal },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => {
    stderr += chunk;
  });
  const events: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    events.push(JSON.parse(line));
    for (const wake of waiters.splice(0)) wake();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    exited,
    async next(event: string): Promise<Record<string, unknown>> {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const found = events.find((e) => e.event === event);
        if (found) return found;
        if (child.exitCode !== null || Date.now() > deadline) {
          throw new Error(`host process gave no "${event}" (exit ${child.exitCode}): ${stderr}`);
        }
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
      }
    },
  };
}
