import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startEmbeddedPostgres } from '../dev/embedded/postgres.js';
import { cpuSecondsOf, postmasterPid, serverCpuSeconds, sessionsSettled } from './cpu.js';
import { deployedWorker } from './deployed-worker.js';
import type { BenchFigure } from './run.js';

const ACCOUNTS = Number(process.env.BENCH_SYNC_ACCOUNTS ?? 250_000);
const CONTACTS = Number(process.env.BENCH_SYNC_CONTACTS ?? 750_000);

const script = (name: string) => fileURLToPath(new URL(`./${name}`, import.meta.url));

async function firstLine(child: ChildProcess): Promise<string> {
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) return line;
  throw new Error('the child process ended without output');
}

async function output(child: ChildProcess): Promise<string> {
  let out = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`the initial sync run failed (exit ${code})`);
  return out;
}

/** What the sample org is asked to play: its rows, and optionally Dataverse's latency and limits. */
interface OrgSetup {
  account: number;
  contact: number;
  latency?: { fixedMs: number; perThousandRowsMs: number };
  limits?: { concurrent?: number; requests?: number; executionSeconds?: number; windowSeconds?: number };
}

interface SyncRun {
  rows: number;
  seconds: number;
  peakRssMb: number;
  /** CPU seconds of the engine, the sample org and PostgreSQL (its backends included) over the copy. */
  engineCpu: number;
  orgCpu: number;
  pgCpu: number;
  /** The most requests the sample org had in flight at once, when it counts them. */
  peakInFlight?: number;
}

/** One initial sync of `entities` from a sample org of its own process into a fresh PostgreSQL. */
async function syncRun(
  root: string,
  name: string,
  org: OrgSetup,
  entities: string[],
  nodeArgs: string[],
): Promise<SyncRun> {
  const dataDir = join(root, '.local', 'bench', `pg-sync-${name}`);
  const server = await startEmbeddedPostgres({ dataDir, fresh: true });
  // BENCH_CPU_PROF=<dir> writes CPU profiles of the sample org and the sync process, to see where time goes.
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const sampleOrg = spawn(process.execPath, [...profile, script('sample-org-process.js'), JSON.stringify(org)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const sample = JSON.parse(await firstLine(sampleOrg)) as { url: string; organizationId: string };
    // The server's CPU counts all its processes (the WAL writer and I/O workers work for the copy too), read
    // when no session is open or ending, before the engine starts and after it ended.
    const postmaster = postmasterPid(dataDir);
    await sessionsSettled(postmaster);
    const pgCpuBefore = serverCpuSeconds(postmaster);
    const orgCpuBefore = cpuSecondsOf(sampleOrg.pid, false);
    const run = spawn(
      process.execPath,
      [
        ...profile,
        ...nodeArgs,
        // BENCH_SYNC_NODE_FLAGS: more V8 flags for the sync process alone (e.g. --trace-gc).
        ...(process.env.BENCH_SYNC_NODE_FLAGS?.split(' ').filter(Boolean) ?? []),
        script('initial-sync-process.js'),
        JSON.stringify({ pgUrl: server.url, sampleUrl: sample.url, organizationId: sample.organizationId, entities }),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    // The last line is the result; any before it are V8 traces asked for by BENCH_SYNC_NODE_FLAGS.
    const lines = (await output(run)).trim().split('\n');
    if (lines.length > 1)
      writeFileSync(join(root, '.local', 'bench', `trace-${name}.txt`), lines.slice(0, -1).join('\n'));
    const result = JSON.parse(lines[lines.length - 1]) as {
      rows: number;
      seconds: number;
      peakRssMb: number;
      heapUsedMb: number;
      heapTotalMb: number;
      externalMb: number;
      cpuSeconds: number;
    };
    const mb = (n: number) => Math.round(n);
    console.error(
      `initial sync ${name}: ${result.rows} rows in ${result.seconds.toFixed(1)} s; peak RSS ${mb(result.peakRssMb)} MB, ` +
        `heap used ≤ ${mb(result.heapUsedMb)} MB of ≤ ${mb(result.heapTotalMb)} MB, external ≤ ${mb(result.externalMb)} MB`,
    );
    await sessionsSettled(postmaster);
    const stats = await fetch(`${sample.url}/_sample/stats`)
      .then((r) => (r.ok ? (r.json() as Promise<{ peakInFlight?: number }>) : {}))
      .catch(() => ({}) as { peakInFlight?: number });
    return {
      rows: result.rows,
      seconds: result.seconds,
      peakRssMb: result.peakRssMb,
      engineCpu: result.cpuSeconds,
      orgCpu: (cpuSecondsOf(sampleOrg.pid, false) ?? Number.NaN) - (orgCpuBefore ?? Number.NaN),
      pgCpu: (serverCpuSeconds(postmaster) ?? Number.NaN) - (pgCpuBefore ?? Number.NaN),
      peakInFlight: (stats as { peakInFlight?: number }).peakInFlight,
    };
  } finally {
    sampleOrg.kill('SIGTERM');
    await server.stop();
  }
}

const SINGLE_ENTITY_ROWS = Number(process.env.BENCH_SYNC_SINGLE ?? 1_000_000);
const LARGE_ENTITY_ROWS = Number(process.env.BENCH_SYNC_LARGE ?? 5_000_000);
/** Dataverse's pace in the latency run: 1,000 ms per 5,000-row page (200 ms fixed, 160 ms per 1,000 rows). */
const DATAVERSE_LATENCY = { fixedMs: 200, perThousandRowsMs: 160 };

/**
 * Initial syncs from the sample organization (its own process) into PostgreSQL: accounts and contacts
 * together; one entity of 1,000,000 rows without and with Dataverse's latency and limits; one of 5,000,000.
 */
export async function benchInitialSync(root: string, earlier: BenchFigure[]): Promise<BenchFigure[]> {
  const cpus = availableParallelism();
  const copy = earlier.find((f) => f.key === 'copyRowsPerSec')?.value;
  const perRow = (run: SyncRun, seconds: number) => (seconds * 1e6) / run.rows;
  const figures: BenchFigure[] = [];

  // Every run but one has the deployed worker's arguments (its heap cap); that one shows Node's defaults here.
  const worker = deployedWorker(root);
  const run = (name: string, org: OrgSetup, entities: string[], nodeArgs = worker.args) =>
    syncRun(root, name, org, entities, nodeArgs);
  const mixed = await run('mixed', { account: ACCOUNTS, contact: CONTACTS }, ['account', 'contact']);
  const rate = mixed.rows / mixed.seconds;
  figures.push(
    {
      key: 'initialSyncRowsPerSec',
      label: `initial sync, ${mixed.rows.toLocaleString('en-US')} accounts + contacts (Web API → PostgreSQL)`,
      value: rate,
      unit: 'rows/s',
      target: `≥ 50,000/s and ≥ 50 % of COPY${copy ? ` (${Math.round((rate / copy) * 100)} %)` : ''}`,
      met: rate >= 50_000 && (copy === undefined || rate >= 0.5 * copy),
    },
    {
      key: 'initialSyncEngineCpuUsPerRow',
      label: 'initial sync: engine CPU per row (read, convert, write)',
      value: perRow(mixed, mixed.engineCpu),
      unit: 'µs',
    },
    {
      key: 'initialSyncSampleOrgCpuUsPerRow',
      label: 'initial sync: sample org CPU per row (serving the Web API)',
      value: perRow(mixed, mixed.orgCpu),
      unit: 'µs',
    },
    {
      key: 'initialSyncPostgresCpuUsPerRow',
      label: 'initial sync: PostgreSQL CPU per row (the upserts, with its WAL writer and I/O workers)',
      value: perRow(mixed, mixed.pgCpu),
      unit: 'µs',
    },
    {
      key: 'initialSyncCpuBoundRowsPerSec',
      label: `initial sync: what ${cpus} cores allow at that CPU per row (every cycle used)`,
      value: (cpus * mixed.rows) / (mixed.engineCpu + mixed.orgCpu + mixed.pgCpu),
      unit: 'rows/s',
    },
    {
      key: 'initialSyncMixedPeakRssMb',
      label: `initial sync peak RSS, ${mixed.rows.toLocaleString('en-US')} accounts + contacts`,
      value: mixed.peakRssMb,
      unit: 'MB',
    },
  );

  const one = { account: 10, contact: SINGLE_ENTITY_ROWS };
  // The issue's setting: 52 requests in flight at most (Dataverse's concurrency limit) and its request count.
  const limits = { concurrent: 52, requests: 6000, windowSeconds: 300 };
  const single = await run('single', one, ['contact']);
  const latent = await run('latency', { ...one, latency: DATAVERSE_LATENCY, limits }, ['contact']);
  const large = await run('large', { account: 10, contact: LARGE_ENTITY_ROWS }, ['contact']);
  const defaults = await run('node-defaults', one, ['contact'], []);
  const singleRate = single.rows / single.seconds;
  const latentRate = latent.rows / latent.seconds;
  const rows = (n: number) => n.toLocaleString('en-US');
  figures.push(
    {
      key: 'initialSyncSingleEntityRowsPerSec',
      label: `initial sync, one entity of ${rows(single.rows)} rows, no latency`,
      value: singleRate,
      unit: 'rows/s',
    },
    {
      key: 'initialSyncLatencyRowsPerSec',
      label: `initial sync, the same entity at 1,000 ms per 5,000-row page, ≤ 52 in flight (${Math.round((latentRate / singleRate) * 100)} % of no latency)`,
      value: latentRate,
      unit: 'rows/s',
      target: '≥ 80 % of no latency',
      met: latentRate >= 0.8 * singleRate,
    },
    {
      key: 'initialSyncLatencyPeakInFlight',
      label: 'initial sync with latency: most requests in flight at the sample org',
      value: latent.peakInFlight ?? Number.NaN,
      unit: 'requests',
      target: '≤ 52',
      met: latent.peakInFlight !== undefined && latent.peakInFlight <= 52,
    },
    {
      key: 'initialSyncSingleCpuBoundRowsPerSec',
      label: `initial sync, one entity: what ${cpus} cores allow at its CPU per row`,
      value: (cpus * single.rows) / (single.engineCpu + single.orgCpu + single.pgCpu),
      unit: 'rows/s',
    },
    {
      key: 'initialSyncPeakRssMb',
      label: `initial sync peak RSS, one entity of ${rows(single.rows)} rows (worker as deployed: ${worker.args.join(' ')})`,
      value: single.peakRssMb,
      unit: 'MB',
      target: '≤ 512 MB',
      met: single.peakRssMb <= 512,
    },
    {
      key: 'initialSyncLargeRowsPerSec',
      label: `initial sync, one entity of ${rows(large.rows)} rows, no latency`,
      value: large.rows / large.seconds,
      unit: 'rows/s',
    },
    {
      key: 'initialSyncPeakRssMb5M',
      label: `initial sync peak RSS, one entity of ${rows(large.rows)} rows`,
      value: large.peakRssMb,
      unit: 'MB',
      target: '≤ 512 MB, flat in row count',
      met: large.peakRssMb <= 512 && large.peakRssMb <= single.peakRssMb * 1.25,
    },
    {
      key: 'initialSyncPeakRssMbNodeDefaults',
      label: `initial sync peak RSS, ${rows(defaults.rows)} rows, Node's default heap on this ${Math.round(totalmem() / 2 ** 30)} GiB machine`,
      value: defaults.peakRssMb,
      unit: 'MB',
    },
    {
      key: 'initialSyncNodeDefaultsRowsPerSec',
      label: `initial sync, the same ${rows(defaults.rows)} rows with Node's default heap`,
      value: defaults.rows / defaults.seconds,
      unit: 'rows/s',
    },
  );
  return figures;
}
