import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startEmbeddedPostgres } from '../dev/embedded/postgres.js';
import type { BenchFigure } from './run.js';

const ACCOUNTS = Number(process.env.BENCH_SYNC_ACCOUNTS ?? 250_000);
const CONTACTS = Number(process.env.BENCH_SYNC_CONTACTS ?? 750_000);

const script = (name: string) => fileURLToPath(new URL(`./${name}`, import.meta.url));

async function firstLine(child: ChildProcess): Promise<string> {
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) return line;
  throw new Error('the child process ended without output');
}

/**
 * CPU seconds a process has used so far (Linux `/proc/<pid>/stat`), with its ended and reaped children when
 * asked (a postmaster's backends); undefined where there is no /proc.
 */
function cpuSecondsOf(pid: number | undefined, withChildren: boolean): number | undefined {
  if (pid === undefined || !existsSync(`/proc/${pid}/stat`)) return undefined;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at the state, field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = (field: number) => Number(fields[field - 3]);
  const total = ticks(14) + ticks(15) + (withChildren ? ticks(16) + ticks(17) : 0);
  return total / CLOCK_TICKS_PER_SECOND;
}

/** USER_HZ, which Linux fixes at 100 for /proc on every architecture it runs this on. */
const CLOCK_TICKS_PER_SECOND = 100;

async function output(child: ChildProcess): Promise<string> {
  let out = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`the initial sync run failed (exit ${code})`);
  return out;
}

/** Initial sync of accounts and contacts from the sample organization (its own process) into PostgreSQL. */
export async function benchInitialSync(root: string, earlier: BenchFigure[]): Promise<BenchFigure[]> {
  const dataDir = join(root, '.local', 'bench', 'pg-sync');
  const server = await startEmbeddedPostgres({ dataDir, fresh: true });
  // BENCH_CPU_PROF=<dir> writes CPU profiles of the sample org and the sync process, to see where time goes.
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const org = spawn(
    process.execPath,
    [...profile, script('sample-org-process.js'), JSON.stringify({ account: ACCOUNTS, contact: CONTACTS })],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  try {
    const sample = JSON.parse(await firstLine(org)) as { url: string; organizationId: string };
    const run = spawn(
      process.execPath,
      [
        ...profile,
        script('initial-sync-process.js'),
        JSON.stringify({
          pgUrl: server.url,
          sampleUrl: sample.url,
          organizationId: sample.organizationId,
          entities: ['account', 'contact'],
        }),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const orgCpuBefore = cpuSecondsOf(org.pid, false);
    const pgCpuBefore = cpuSecondsOf(postmaster, true);
    const result = JSON.parse(await output(run)) as {
      rows: number;
      seconds: number;
      peakRssMb: number;
      cpuSeconds: number;
    };
    // The engine's connections are closed: give the postmaster a moment to reap their backends.
    await new Promise((r) => setTimeout(r, 300));
    const orgCpu = (cpuSecondsOf(org.pid, false) ?? Number.NaN) - (orgCpuBefore ?? Number.NaN);
    const pgCpu = (cpuSecondsOf(postmaster, true) ?? Number.NaN) - (pgCpuBefore ?? Number.NaN);
    const perRow = (seconds: number) => (seconds * 1e6) / result.rows;
    const rate = result.rows / result.seconds;
    const cpus = availableParallelism();
    const copy = earlier.find((f) => f.key === 'copyRowsPerSec')?.value;
    return [
      {
        key: 'initialSyncRowsPerSec',
        label: `initial sync, ${result.rows.toLocaleString('en-US')} accounts + contacts (Web API → PostgreSQL)`,
        value: rate,
        unit: 'rows/s',
        target: `≥ 50,000/s and ≥ 50 % of COPY${copy ? ` (${Math.round((rate / copy) * 100)} %)` : ''}`,
        met: rate >= 50_000 && (copy === undefined || rate >= 0.5 * copy),
      },
      {
        key: 'initialSyncEngineCpuUsPerRow',
        label: 'initial sync: engine CPU per row (read, convert, write)',
        value: perRow(result.cpuSeconds),
        unit: 'µs',
      },
      {
        key: 'initialSyncSampleOrgCpuUsPerRow',
        label: 'initial sync: sample org CPU per row (serving the Web API)',
        value: perRow(orgCpu),
        unit: 'µs',
      },
      {
        key: 'initialSyncPostgresCpuUsPerRow',
        label: 'initial sync: PostgreSQL CPU per row (the upserts)',
        value: perRow(pgCpu),
        unit: 'µs',
      },
      {
        key: 'initialSyncCpuBoundRowsPerSec',
        label: `initial sync: what ${cpus} cores allow at that CPU per row (every cycle used)`,
        value: (cpus * result.rows) / (result.cpuSeconds + orgCpu + pgCpu),
        unit: 'rows/s',
      },
      {
        key: 'initialSyncPeakRssMb',
        label: `initial sync peak RSS, ${result.rows.toLocaleString('en-US')} rows`,
        value: result.peakRssMb,
        unit: 'MB',
        target: '≤ 512 MB',
        met: result.peakRssMb <= 512,
      },
    ];
  } finally {
    org.kill('SIGTERM');
    await server.stop();
  }
}
