import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import { startEmbeddedPostgres } from '../dev/embedded/postgres.js';
import type { ChangeEvent } from '../lib/change/change-event.js';
import { silentLogger } from '../lib/log.js';
import { connectClient } from '../lib/postgres-pool.js';
import { Applier } from '../lib/sink/applier.js';
import { PostgresDialect, type UpsertRoute } from '../lib/sink/dialects/postgres.js';
import { openSink } from '../lib/sink/index.js';
import { deleteLogTable, tombstoneTable } from '../lib/sink/side-tables.js';
import { APPLY_CONCURRENCY } from '../lib/sync/partitioned-copy.js';
import { ownCpuSeconds, postmasterPid, serverCpuSeconds } from './cpu.js';
import type { BenchFigure } from './run.js';

export const BENCH_ROWS = 100_000;
const BATCH = 5_000;
const ROW_BY_ROW = 5_000;
/** Interleaved rounds the COPY and apply figures are the medians of. */
const ROUNDS = 3;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Changes shaped like a typical account row: text, money, integers, an option set, a lookup, a date. */
export function accountChange(i: number, version: number, organizationId: string): ChangeEvent {
  const id = `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
  return {
    organizationId,
    entity: 'account',
    recordId: id,
    operation: 'upsert',
    version: { rowVersion: String(version) },
    operationTime: new Date(1_700_000_000_000 + version).toISOString(),
    correlationId: randomUUID(),
    source: 'initialSync',
    attributes: {
      name: { type: 'string', value: `Account ${i}` },
      accountnumber: { type: 'string', value: `AC-${i}` },
      revenue: { type: 'money', value: `${i}.${String(i % 100).padStart(2, '0')}` },
      numberofemployees: { type: 'int', value: i % 5000 },
      statecode: { type: 'optionset', value: i % 2 },
      industrycode: { type: 'optionset', value: 1 + (i % 30) },
      primarycontactid: {
        type: 'lookup',
        value: `10000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
        entityType: 'contact',
      },
      createdon: { type: 'datetime', value: new Date(1_600_000_000_000 + i * 1000).toISOString() },
    },
  };
}

/** The row's values in the order of {@link COPY_COLUMNS}, without the two Sink timestamps. */
function rowValues(change: ChangeEvent): unknown[] {
  const a = change.attributes as Record<string, { value: unknown }>;
  return [
    change.recordId,
    a.name.value,
    a.accountnumber.value,
    a.revenue.value,
    a.numberofemployees.value,
    a.statecode.value,
    a.industrycode.value,
    a.primarycontactid.value,
    'contact',
    a.createdon.value,
    change.version.rowVersion,
  ];
}

/** The same row as COPY text: tab-separated. */
function copyLine(change: ChangeEvent): string {
  const now = new Date().toISOString();
  return [...rowValues(change), now, now].join('\t');
}

// Baseline SQL for the ceiling and floor the sink is compared with; the product's own SQL is in lib/sink/dialects.
const COPY_TABLE = `CREATE TABLE IF NOT EXISTS copy_account (id uuid, name text, accountnumber text,
  revenue numeric(38,10), numberofemployees integer, statecode integer, industrycode integer, primarycontactid uuid,
  primarycontactid_entitytype text, createdon timestamptz, versionnumber bigint, sinkcreatedon timestamptz,
  sinkmodifiedon timestamptz)`;
const COPY_COLUMNS =
  'id, name, accountnumber, revenue, numberofemployees, statecode, industrycode, primarycontactid, primarycontactid_entitytype, createdon, versionnumber, sinkcreatedon, sinkmodifiedon';
/** copy_account's columns in a table of its own whose id is the primary key. */
const keyedTable = (name: string) =>
  COPY_TABLE.replace('TABLE IF NOT EXISTS copy_account (id uuid,', `TABLE IF NOT EXISTS ${name} (id uuid PRIMARY KEY,`);
const KEYED_COPY = { table: 'keyed_account', ddl: keyedTable('keyed_account'), rows: BATCH };
const ROW_TABLE = keyedTable('row_account');
const ROW_UPSERT = `INSERT INTO row_account (${COPY_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,now(),now())
  ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, accountnumber = EXCLUDED.accountnumber, revenue = EXCLUDED.revenue,
  numberofemployees = EXCLUDED.numberofemployees, statecode = EXCLUDED.statecode, industrycode = EXCLUDED.industrycode,
  primarycontactid = EXCLUDED.primarycontactid, primarycontactid_entitytype = EXCLUDED.primarycontactid_entitytype,
  createdon = EXCLUDED.createdon, versionnumber = EXCLUDED.versionnumber, sinkmodifiedon = now()
  WHERE row_account.versionnumber < EXCLUDED.versionnumber`;

/** The rows as COPY text, 1,000 lines per chunk. */
function* copyChunks(changes: ChangeEvent[]): Generator<string> {
  for (let i = 0; i < changes.length; i += 1000) {
    yield `${changes
      .slice(i, i + 1000)
      .map(copyLine)
      .join('\n')}\n`;
  }
}

/**
 * Rows per second of raw COPY into `table` (made by `ddl`, emptied first), in transactions of `rows` rows:
 * the ceiling is one stream into copy_account; the keyed figure, BATCH-row transactions into keyed_account,
 * is the bound for any write that keeps the table's key, with nothing to render, guard or return.
 */
export async function copyRows(
  server: Server,
  changes: ChangeEvent[],
  { table, ddl, rows }: { table: string; ddl: string; rows: number } = {
    table: 'copy_account',
    ddl: COPY_TABLE,
    rows: changes.length,
  },
): Promise<Measured> {
  const client = await connectClient({ connectionString: server.url });
  try {
    await client.query(ddl);
    await client.query(`TRUNCATE ${table}`);
    return await measured(server, changes.length, async () => {
      for (let i = 0; i < changes.length; i += rows) {
        await client.query('BEGIN');
        await pipeline(
          Readable.from(copyChunks(changes.slice(i, i + rows))),
          client.query(copyFrom(`COPY ${table} (${COPY_COLUMNS}) FROM STDIN`)),
        );
        await client.query('COMMIT');
      }
    });
  } finally {
    await client.end();
  }
}

/** The server the benchmark writes to: its URL and its postmaster, whose CPU is read. */
interface Server {
  url: string;
  postmaster: number;
}

/** A rate, and the CPU the Node process and the database server spent per row (µs) while it was measured. */
interface Measured {
  rowsPerSec: number;
  nodeUsPerRow: number;
  serverUsPerRow: number;
}

/** Times `run` over `rows` rows, reading this process's CPU and the server's before and after. */
async function measured(server: Server, rows: number, run: () => Promise<void>): Promise<Measured> {
  const node = ownCpuSeconds();
  const db = serverCpuSeconds(server.postmaster) ?? Number.NaN;
  const started = performance.now();
  await run();
  const seconds = (performance.now() - started) / 1000;
  const perRow = (cpuSeconds: number) => (cpuSeconds * 1e6) / rows;
  return {
    rowsPerSec: rows / seconds,
    nodeUsPerRow: perRow(ownCpuSeconds() - node),
    serverUsPerRow: perRow((serverCpuSeconds(server.postmaster) ?? Number.NaN) - db),
  };
}

/** The upsert route PostgresDialect takes by default. */
const PRODUCT_ROUTE: UpsertRoute = 'arrays';

function sides(prefix: string) {
  return { tombstone: tombstoneTable(prefix).name, deleteLog: deleteLogTable(prefix).name };
}

/**
 * Applying `changes` in BATCH-row batches, `concurrency` batches at a time (each caller takes the next batch
 * when its last is written); table creation is not part of the rate.
 */
async function applyRate(
  server: Server,
  changes: ChangeEvent[],
  apply: (batch: ChangeEvent[]) => Promise<Array<{ status: string }>>,
  concurrency = 1,
): Promise<Measured> {
  await apply(changes.slice(0, 1));
  let next = 0;
  const caller = async () => {
    while (next < changes.length) {
      const at = next;
      next += BATCH;
      const outcomes = await apply(changes.slice(at, at + BATCH));
      if (outcomes.some((o) => o.status === 'failed')) throw new Error('the sink failed rows during the benchmark');
    }
  };
  return measured(server, changes.length, async () => {
    await Promise.all(Array.from({ length: concurrency }, caller));
  });
}

export async function benchSink(root: string): Promise<BenchFigure[]> {
  const dataDir = join(root, '.local', 'bench', 'pg-sink');
  const embedded = await startEmbeddedPostgres({ dataDir, fresh: true });
  try {
    const url = embedded.url;
    const server: Server = { url, postmaster: postmasterPid(dataDir) };
    const org = randomUUID();
    const changes = Array.from({ length: BENCH_ROWS }, (_, i) => accountChange(i, 1_000 + i, org));

    // The machine's speed drifts within seconds, so the figures are medians of interleaved rounds: each round
    // measures COPY, the keyed COPY, both apply routes and the product's apply with the initial sync's
    // concurrency one after another, each apply into tables of its own.
    const other: UpsertRoute = PRODUCT_ROUTE === 'arrays' ? 'copy' : 'arrays';
    const rounds = {
      copy: [] as Measured[],
      keyed: [] as Measured[],
      apply: [] as Measured[],
      other: [] as Measured[],
      concurrent: [] as Measured[],
    };
    const openBenchSink = (prefix: string) =>
      openSink({
        kind: 'postgres',
        connectionString: url,
        schema: 'public',
        tablePrefix: prefix,
        writeDeleteLog: true,
      });
    for (let round = 0; round < ROUNDS; round++) {
      rounds.copy.push(await copyRows(server, changes));
      rounds.keyed.push(await copyRows(server, changes, KEYED_COPY));
      const sink = await openBenchSink(`bench${round}`);
      rounds.apply.push(await applyRate(server, changes, (batch) => sink.applyBatch(batch)));
      await sink.close();
      // The route the product does not take, through the same applier, for comparison.
      const dialect = new PostgresDialect(url, 'public', sides(`other${round}`), other);
      const applier = new Applier(dialect, `other${round}`, true, silentLogger);
      rounds.other.push(await applyRate(server, changes, (batch) => applier.applyBatch(batch)));
      await dialect.close();
      const concurrent = await openBenchSink(`conc${round}`);
      rounds.concurrent.push(
        await applyRate(server, changes, (batch) => concurrent.applyBatch(batch), APPLY_CONCURRENCY),
      );
      await concurrent.close();
    }
    const rate = (of: Measured[]) => median(of.map((m) => m.rowsPerSec));
    const nodeCpu = (of: Measured[]) => median(of.map((m) => m.nodeUsPerRow));
    const serverCpu = (of: Measured[]) => median(of.map((m) => m.serverUsPerRow));
    const copyPerSec = rate(rounds.copy);
    const keyedPerSec = rate(rounds.keyed);
    const applyPerSec = rate(rounds.apply);
    const otherPerSec = rate(rounds.other);
    const concurrentPerSec = rate(rounds.concurrent);
    const percent = (value: number) => `${Math.round((value / copyPerSec) * 100)} %`;
    const spread = (of: Measured[]) =>
      `${ROUNDS} rounds: ${of.map((m) => Math.round(m.rowsPerSec / 1000)).join(', ')} k`;
    const cpuLabel = (of: Measured[]) =>
      `Node ${nodeCpu(of).toFixed(1)} µs + PostgreSQL ${serverCpu(of).toFixed(1)} µs, medians`;
    const applyCpuPerRow = nodeCpu(rounds.apply) + serverCpu(rounds.apply);
    const cores = availableParallelism();
    // Every cycle of every core spent on the apply at its measured CPU per row: no route of this CPU cost beats it.
    const applyCpuBound = (cores * 1e6) / applyCpuPerRow;

    const client = await connectClient({ connectionString: url });
    await client.query(ROW_TABLE);
    const started = performance.now();
    for (const change of changes.slice(0, ROW_BY_ROW)) {
      await client.query(ROW_UPSERT, rowValues(change));
    }
    const rowByRowPerSec = ROW_BY_ROW / ((performance.now() - started) / 1000);
    await client.end();

    return [
      {
        key: 'copyRowsPerSec',
        label: `raw COPY into an unindexed table (ceiling; median of ${spread(rounds.copy)})`,
        value: copyPerSec,
        unit: 'rows/s',
      },
      {
        key: 'copyKeyedRowsPerSec',
        label: `raw COPY into the same table with its primary key, ${BATCH}-row transactions (${percent(keyedPerSec)} of COPY)`,
        value: keyedPerSec,
        unit: 'rows/s',
      },
      {
        key: 'applyRowsPerSec',
        label: `sink apply, ${BATCH}-row version-guarded batches (rows by ${PRODUCT_ROUTE}; ${spread(rounds.apply)})`,
        value: applyPerSec,
        unit: 'rows/s',
        target: `≥ 50 % of COPY (${percent(applyPerSec)}; its CPU per row allows ${percent(applyCpuBound)} on ${cores} cores)`,
        met: applyPerSec >= 0.5 * copyPerSec,
      },
      {
        key: 'applyConcurrentRowsPerSec',
        label: `the same apply, ${APPLY_CONCURRENCY} batches at once as the initial sync applies its pages (${percent(concurrentPerSec)} of COPY; ${spread(rounds.concurrent)})`,
        value: concurrentPerSec,
        unit: 'rows/s',
      },
      {
        key: 'copyCpuUsPerRow',
        label: `raw COPY: CPU per row (${cpuLabel(rounds.copy)})`,
        value: nodeCpu(rounds.copy) + serverCpu(rounds.copy),
        unit: 'µs',
      },
      {
        key: 'applyCpuUsPerRow',
        label: `sink apply: CPU per row (${cpuLabel(rounds.apply)})`,
        value: applyCpuPerRow,
        unit: 'µs',
      },
      {
        key: 'applyCpuBoundRowsPerSec',
        label: `sink apply: what ${cores} cores allow at that CPU per row, every cycle used (${percent(applyCpuBound)} of COPY)`,
        value: applyCpuBound,
        unit: 'rows/s',
      },
      {
        key: other === 'copy' ? 'applyCopyRowsPerSec' : 'applyArraysRowsPerSec',
        label: `the same apply with rows by ${other} (${percent(otherPerSec)} of COPY)`,
        value: otherPerSec,
        unit: 'rows/s',
      },
      {
        key: 'rowByRowRowsPerSec',
        label: 'row-by-row upsert baseline',
        value: rowByRowPerSec,
        unit: 'rows/s',
        target: `apply ≥ 10× this (${(applyPerSec / rowByRowPerSec).toFixed(1)}×)`,
        met: applyPerSec >= 10 * rowByRowPerSec,
      },
    ];
  } finally {
    await embedded.stop();
  }
}
