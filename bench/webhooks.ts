import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startStack } from '../dev/stack.js';
import { silentLogger } from '../lib/log.js';
import { connectClient } from '../lib/postgres-pool.js';
import { benchRecordId } from './ids.js';
import type { BenchFigure } from './run.js';

const E2E_DELIVERIES = Number(process.env.BENCH_E2E_DELIVERIES ?? 20_000);
const STEADY_RATE = 500;
const STEADY_SECONDS = 20;

interface LoadResult {
  seconds: number;
  /** CPU the load generator itself used (it shares the machine's cores with the stack). */
  cpuSeconds: number;
  statuses: Record<string, number>;
  /** Connection resets the generator met and retried (Dataverse retries such a delivery too). */
  connectionErrors: number;
}

/** Runs bench/load-generator.js in its own process and returns what it measured. */
async function runLoad(options: Record<string, unknown>): Promise<LoadResult> {
  const child = spawn(
    process.execPath,
    [fileURLToPath(new URL('./load-generator.js', import.meta.url)), JSON.stringify(options)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`the load generator failed (exit ${code})`);
  const result = JSON.parse(out) as LoadResult;
  const rejected = Object.entries(result.statuses).filter(([status]) => status !== '202');
  if (rejected.length) throw new Error(`some deliveries were not accepted: ${JSON.stringify(result.statuses)}`);
  return result;
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** End-to-end deliveries (HTTP → queue → SQL) and lag at a steady rate, on the full local stack. */
export async function benchWebhooks(root: string): Promise<BenchFigure[]> {
  const stack = await startStack({
    dataDir: join(root, '.local', 'bench', 'stack'),
    fresh: true,
    port: 0,
    sampleCounts: { account: 10, contact: 10 },
    logger: silentLogger,
    settings: { LogLevel: 'error' },
  });
  const db = await connectClient({ connectionString: stack.info.targetPostgresUrl });
  try {
    const { apiBaseUrl, functionKey, sampleOrg } = stack.info;
    stack.sampleOrg.setWebhook(undefined);
    const created = await fetch(`${apiBaseUrl}/profiles`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-functions-key': functionKey },
      body: JSON.stringify({
        name: 'bench',
        organizationId: sampleOrg.organizationId,
        source: { url: sampleOrg.url },
        target: { kind: 'postgres', connectionSecret: 'local-postgres', tablePrefix: 'bench' },
        entities: ['account'],
        options: { initialSync: false },
      }),
    });
    const { id } = (await created.json()) as { id: string };
    const activated = await fetch(`${apiBaseUrl}/profiles/${id}/activate`, {
      method: 'POST',
      headers: { 'x-functions-key': functionKey },
    });
    if (activated.status !== 200) throw new Error(`activation failed: ${await activated.text()}`);

    const webhook = `${apiBaseUrl}/webhooks/dataverse`;
    const load = (first: number, count: number, extra: { concurrency?: number; rate?: number } = {}) =>
      runLoad({
        url: webhook,
        key: functionKey,
        organizationId: sampleOrg.organizationId,
        first,
        count,
        concurrency: 64,
        ...extra,
      });
    const count = async () => Number((await db.query('SELECT count(*) AS n FROM bench_account')).rows[0].n);
    const waitForRows = async (n: number, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if ((await count().catch(() => 0)) >= n) return;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`only ${await count()} of ${n} rows arrived within ${timeoutMs / 1000} s`);
    };

    // Warm-up: table creation and first connections are not part of the rate.
    await load(0, 1, { concurrency: 1 });
    await waitForRows(1, 30_000);

    // 1. Throughput: a burst of deliveries as fast as 64 connections carry them.
    // Where the time goes: the stack's CPU (main thread, the broker's thread, pools) and how busy its main
    // thread was, measured over the burst, beside the load generator's own CPU.
    let started = performance.now();
    const cpuBefore = process.cpuUsage();
    const eluBefore = performance.eventLoopUtilization();
    const burst = await load(1, E2E_DELIVERIES, { concurrency: Number(process.env.BENCH_CONCURRENCY ?? 64) });
    const ingestSeconds = burst.seconds;
    let connectionErrors = burst.connectionErrors;
    await waitForRows(E2E_DELIVERIES + 1, 300_000);
    const e2eSeconds = (performance.now() - started) / 1000;
    const stackCpu = process.cpuUsage(cpuBefore);
    const mainThreadBusy = performance.eventLoopUtilization(eluBefore).utilization;

    // 2. Lag at a steady rate: each change carries its send time; SinkModifiedOn is when it landed.
    const base = E2E_DELIVERIES + 10;
    const total = STEADY_RATE * STEADY_SECONDS;
    started = performance.now();
    connectionErrors += (await load(base, total, { rate: STEADY_RATE })).connectionErrors;
    await waitForRows(E2E_DELIVERIES + 1 + total, 120_000);
    // Each change's lag, and the second of the steady run it was sent in (to tell a pause from a queue).
    const landed = (
      await db.query<{ second: number; lag: number }>(
        `SELECT floor(extract(epoch FROM new_senttime - min(new_senttime) OVER ())) AS second,
                extract(epoch FROM (sinkmodifiedon - new_senttime)) * 1000 AS lag FROM bench_account
          WHERE id >= $1::uuid`,
        [benchRecordId(base)],
      )
    ).rows.map((r) => ({ second: Number(r.second), lag: Number(r.lag) }));
    const lags = landed.map((r) => r.lag).sort((a, b) => a - b);

    const e2ePerSec = E2E_DELIVERIES / e2eSeconds;
    const cpus = availableParallelism();
    const p50 = percentile(lags, 50);
    const p99 = percentile(lags, 99);
    const worst = new Map<number, number>();
    for (const { second, lag } of landed) worst.set(second, Math.max(worst.get(second) ?? 0, lag));
    console.error(
      `lag at ${STEADY_RATE}/s: p90 ${percentile(lags, 90).toFixed(0)} ms, p95 ${percentile(lags, 95).toFixed(0)} ms, ` +
        `max ${lags[lags.length - 1]?.toFixed(0)} ms; worst per second: ${[...worst.entries()]
          .sort((a, b) => a[0] - b[0])
          .map(([, v]) => v.toFixed(0))
          .join(' ')}`,
    );
    return [
      {
        key: 'ingestDeliveriesPerSec',
        label: 'webhook ingest only (HTTP → queue)',
        value: E2E_DELIVERIES / ingestSeconds,
        unit: 'deliveries/s',
      },
      {
        key: 'e2eDeliveriesPerSec',
        label: `end to end, ${E2E_DELIVERIES.toLocaleString('en-US')} deliveries (HTTP → queue → SQL)`,
        value: e2ePerSec,
        unit: 'deliveries/s',
        target: '≥ 3,000/s',
        met: e2ePerSec >= 3000,
      },
      {
        key: 'e2eStackCpuUsPerDelivery',
        label: 'end to end: stack CPU per delivery (all its threads)',
        value: (stackCpu.user + stackCpu.system) / E2E_DELIVERIES,
        unit: 'µs',
      },
      {
        key: 'e2eMainThreadBusyPercent',
        label: 'end to end: stack main thread busy (event loop utilization)',
        value: mainThreadBusy * 100,
        unit: '%',
      },
      {
        key: 'e2eLoadGeneratorCpuUsPerDelivery',
        label: 'end to end: load generator CPU per delivery',
        value: (burst.cpuSeconds * 1e6) / E2E_DELIVERIES,
        unit: 'µs',
      },
      {
        key: 'e2eCpuBoundDeliveriesPerSec',
        label: `end to end: what ${cpus} cores allow at that CPU per delivery (every cycle used)`,
        value: (cpus * 1e6 * E2E_DELIVERIES) / (stackCpu.user + stackCpu.system + burst.cpuSeconds * 1e6),
        unit: 'deliveries/s',
      },
      {
        key: 'e2eConnectionErrors',
        label: 'load generator: connection resets met and retried (burst and steady rate)',
        value: connectionErrors,
        unit: 'errors',
      },
      { key: 'lagP50Ms', label: `lag p50 at ${STEADY_RATE} changes/s`, value: p50, unit: 'ms' },
      {
        key: 'lagP99Ms',
        label: `lag p99 at ${STEADY_RATE} changes/s (${lags.length} changes)`,
        value: p99,
        unit: 'ms',
        target: '≤ 250 ms',
        met: p99 <= 250,
      },
    ];
  } finally {
    await db.end();
    await stack.stop();
  }
}
