/**
 * The Azure SQL path under faults, through the real pipeline, applier and dialect, over a stand-in at the
 * driver boundary: no SQL Server runs here, so the stand-in keeps tables in memory, answers the statements the
 * dialect sends, and fails them with errors shaped exactly as mssql/tedious raise them (RequestError with
 * SQL Server's number and code EREQUEST, or tedious's ETIMEOUT). Nothing here matches error text.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mssql from 'mssql';
import type { ChangeEvent } from '../../lib/change/change-event.js';
import { createLogger, silentLogger } from '../../lib/log.js';
import { applyMessages } from '../../lib/pipeline/apply-queued-changes.js';
import { EntityConditions } from '../../lib/pipeline/entity-conditions.js';
import type { FailureEntry, RoutedProfile, TargetStateReport } from '../../lib/pipeline/ports.js';
import { type ChangeMessage, inlineMessage } from '../../lib/queue/envelope.js';
import { Applier } from '../../lib/sink/applier.js';
import { type MssqlConnector, MssqlDialect, type MssqlInput } from '../../lib/sink/dialects/mssql.js';
import { readColumnsSql, STAGING_TABLE } from '../../lib/sink/dialects/mssql-sql.js';
import { deleteLogTable, tombstoneTable } from '../../lib/sink/side-tables.js';
import { hourPath } from '../../lib/storage/blob-time-path.js';

const ORG = '6f2d8a1c-3b4e-4f5a-9c7d-1e2f3a4b5c6d';
const profile: RoutedProfile = {
  id: '0f8fad5b-d9cb-469f-a165-70867728950e',
  organizationId: ORG,
  state: 'Active',
  entities: ['account', 'contact'],
  target: { kind: 'mssql', connectionSecret: 'sales-db', schema: 'dbo', tablePrefix: '' },
  options: { retryCount: 2, retryIntervalSeconds: 5 },
};

/** SQL Server's error as tedious reports it (`info`), wrapped by mssql. */
const serverError = (number: number, message: string) =>
  new mssql.RequestError(
    Object.assign(new Error(message), { info: { number, message, state: 1, class: 16 } }) as never,
    'EREQUEST',
  );
/** tedious's request timeout, wrapped by mssql (code ETIMEOUT, no number). */
const requestTimeout = () =>
  new mssql.RequestError(
    Object.assign(new Error('Timeout: Request failed to complete in 120000ms'), { code: 'ETIMEOUT' }) as never,
    'EREQUEST',
  );

/** Fails a statement (`INSERT BULK #sink_stage` for a bulk load) given its text and the rows it carries. */
type Fault = (text: string, rows: unknown[][] | undefined) => Error | undefined;

/**
 * Keeps tables and merged rows in memory and answers as SQL Server would; `fault` may fail any statement or
 * bulk load. A bulk load fills the session's staging table, which the MERGE of that transaction reads.
 */
function fakeSqlServer() {
  const tables = new Map<string, Array<Record<string, unknown>>>();
  const merged = new Map<string, Map<string, unknown[]>>();
  /** Rows of each MERGE into an entity table the dialect sent, failed or not. */
  const merges: number[] = [];
  /** Rows of each bulk load, failed or not. */
  const bulkLoads: number[] = [];
  /** Every statement's text, in order. */
  const statements: string[] = [];
  const state: { fault?: Fault } = {};
  const value = (inputs: MssqlInput[], name: string) => inputs.find((i) => i.name === name)?.value;
  const columnRow = (name: string, type: string) => {
    const [, base, args] = /^(\w+)(?:\(([^)]*)\))?/.exec(type) ?? [];
    const [p, s] = (args ?? '').split(',').map(Number);
    const maxLength = base === 'nvarchar' ? (args === 'max' ? -1 : 2 * Number(args)) : 8;
    return { column_name: name, type_name: base, precision: p || 0, scale: s || 0, max_length: maxLength };
  };
  const answer = async (text: string, inputs: MssqlInput[], staged: unknown[][] | undefined) => {
    const rowsParam = value(inputs, 'rows');
    const fromStaging = text.includes(`FROM ${STAGING_TABLE} AS j`);
    const rows =
      typeof rowsParam === 'string' ? (JSON.parse(rowsParam) as unknown[][]) : fromStaging ? staged : undefined;
    statements.push(text);
    const merge = /^MERGE (\[[^\]]+\]\.\[[^\]]+\])/m.exec(text);
    if (merge && rows && !merge[1].includes(tombstoneTable('').name)) merges.push(rows.length);
    const failure = state.fault?.(text, rows);
    if (failure) throw failure;
    if (text === readColumnsSql) return tables.get(String(value(inputs, 'table')).toLowerCase()) ?? [];
    const created = /CREATE TABLE (\[[^\]]+\]\.\[[^\]]+\]) \(\n([\s\S]*?)\n\);/.exec(text);
    if (created) {
      const columns = [...created[2].matchAll(/^ {2}\[(\w+)\] (\S+)/gm)].map(([, n, t]) => columnRow(n, t));
      tables.set(created[1].toLowerCase(), columns);
      return [];
    }
    if (merge && rows) {
      const table = merged.get(merge[1]) ?? new Map<string, unknown[]>();
      for (const row of rows) table.set(String(row[0]), row);
      merged.set(merge[1], table);
      return rows.map((row) => ({ id: String(row[0]) }));
    }
    return [];
  };
  const connector: MssqlConnector = {
    query: (text, inputs = []) => answer(text, inputs, undefined),
    transaction: (work) => {
      let staged: unknown[][] | undefined;
      return work({
        query: (text, inputs = []) => answer(text, inputs, staged),
        bulk: async (load) => {
          bulkLoads.push(load.rows.length);
          const failure = state.fault?.(`INSERT BULK ${load.table}`, load.rows);
          if (failure) throw failure;
          staged = load.rows;
        },
      });
    },
    async close() {},
  };
  return { connector, state, merges, bulkLoads, statements, rowsOf: (table: string) => merged.get(table) ?? new Map() };
}

function change(n: number, version: number): ChangeEvent {
  return {
    organizationId: ORG,
    entity: 'account',
    recordId: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    operation: 'upsert',
    version: { rowVersion: String(version) },
    operationTime: '2026-11-25T10:00:00.000Z',
    attributes: { name: { type: 'string', value: `account ${n}` } },
    correlationId: `c-${n}`,
    source: 'webhook',
  };
}

/** The apply pipeline over in-memory ports and the fake server; `run` applies one batch of messages. */
function pipeline() {
  const server = fakeSqlServer();
  const sides = { tombstone: tombstoneTable('').name, deleteLog: deleteLogTable('').name };
  const applier = new Applier(new MssqlDialect(server.connector, 'dbo', sides), '', true, silentLogger);
  const failures: FailureEntry[] = [];
  const scheduled: Array<{ messages: ChangeMessage[]; at: Date }> = [];
  const targetStates: Array<TargetStateReport | null> = [];
  const parked = new Map<string, string>();
  // The entity status as the control store keeps it, and the log lines, for the entity-level conditions.
  const lastErrors = new Map<string, string | null>();
  const statusWrites: string[] = [];
  const logLines: Array<{ message: string }> = [];
  const entityConditions = new EntityConditions(
    {
      updateSyncState: async (_: string, entity: string, patch: { lastError: string | null }) => {
        statusWrites.push(entity);
        lastErrors.set(entity, patch.lastError);
      },
      entityStatuses: async () => [...lastErrors].map(([entity, lastError]) => ({ entity, lastError })),
    },
    createLogger({ sink: (_level, line) => logLines.push(JSON.parse(line)) }),
  );
  const deps = {
    profiles: { activeProfilesFor: async () => [profile], getProfile: async () => profile },
    sinks: { sinkFor: async () => ({ applyBatch: (changes: ChangeEvent[]) => applier.applyBatch(changes) }) },
    // Waiting changes are parked here (as in Blob Storage), named by creation hour like real claim checks.
    claimChecks: {
      put: async (json: string) => {
        const blobName = `${hourPath(new Date('2026-11-25T10:00:05.000Z'))}/${parked.size + 1}.json`;
        parked.set(blobName, json);
        return { blobName, bytes: json.length };
      },
      get: async (blobName: string) => parked.get(blobName) ?? '',
      delete: async (blobName: string) => void parked.delete(blobName),
    },
    queue: {
      send: async () => {},
      schedule: async (messages: ChangeMessage[], at: Date) => {
        scheduled.push({ messages, at });
      },
      close: async () => {},
    },
    failureLog: { writeFailures: async (_: string, entries: FailureEntry[]) => void failures.push(...entries) },
    metrics: { recordMetrics: async () => {} },
    targetStates: {
      recordTargetState: async (_: string, report: TargetStateReport | null) => void targetStates.push(report),
    },
    entityConditions,
    outageBackoffSeconds: 10,
    logger: silentLogger,
    now: () => new Date('2026-11-25T10:00:05.000Z'),
  };
  return {
    server,
    failures,
    scheduled,
    parked,
    targetStates,
    lastErrors,
    statusWrites,
    logLines,
    run: (messages: ChangeMessage[]) => applyMessages(deps, messages),
    /** What the queue holds for later, taken off it (as delivery would). */
    takeScheduled: () => scheduled.splice(0).flatMap((s) => s.messages),
  };
}

const batch = (count: number) =>
  Array.from({ length: count }, (_, i) => inlineMessage(change(i + 1, 100 + i), [profile.id]));
const entityTable = '[dbo].[account]';

describe('the Azure SQL path under faults (driver-level stand-in)', () => {
  it('fails no record while the database is full, and applies every change once it has room', async () => {
    const p = pipeline();
    p.server.state.fault = (text) =>
      /^MERGE \[dbo\]\.\[account\]/m.test(text)
        ? serverError(
            40544,
            "The database 'sales' has reached its size quota. Partition or delete data, drop indexes, or consult the documentation for possible resolutions.",
          )
        : undefined;
    const first = await p.run(batch(6));
    assert.equal(first.failed, 0);
    assert.equal(first.deferred, 6);
    assert.deepEqual(p.failures, [], 'a full database is nobody’s row');
    const waiting = p.targetStates.at(-1);
    assert.equal(waiting?.state, 'unavailable');
    assert.match(waiting?.reason ?? '', /size quota/);
    assert.match(waiting?.action ?? '', /raise its maximum size/);
    const later = p.takeScheduled();
    assert.equal(later.length, 6);
    assert.ok(
      later.every((m) => m.body.kind === 'claimCheck'),
      'what waits is parked, not queued inline',
    );
    assert.ok(
      later.every((m) => m.attempt === 0),
      'waiting spends no retry budget',
    );
    assert.equal(p.scheduled.length, 0);

    p.server.state.fault = undefined;
    const second = await p.run(later);
    assert.equal(second.applied, 6);
    assert.deepEqual(p.failures, []);
    assert.equal(p.targetStates.at(-1), null, 'status clears once the target takes writes');
    assert.equal(p.server.rowsOf(entityTable).size, 6);
    assert.equal(p.parked.size, 0, 'parked blobs go once applied');
  });

  it('defers the profile’s changes with a status reason when permission is denied, and never fails a row', async () => {
    const p = pipeline();
    p.server.state.fault = (text) =>
      /CREATE TABLE \[dbo\]\.\[account\]/.test(text)
        ? serverError(262, "CREATE TABLE permission denied in database 'sales'.")
        : undefined;
    for (let round = 0; round < 3; round++) {
      const summary = await p.run(round === 0 ? batch(4) : p.takeScheduled());
      assert.equal(summary.deferred, 4, `round ${round}`);
    }
    assert.deepEqual(p.failures, []);
    const waiting = p.targetStates.at(-1);
    assert.equal(waiting?.state, 'misconfigured');
    assert.match(waiting?.reason ?? '', /CREATE TABLE permission denied/);
    assert.match(waiting?.action ?? '', /GRANT CREATE TABLE TO/);
    assert.match(waiting?.action ?? '', /ON SCHEMA::\[dbo\]/);

    p.server.state.fault = undefined;
    assert.equal((await p.run(p.takeScheduled())).applied, 4);
    assert.equal(p.targetStates.at(-1), null);
  });

  it('writes a batch whose statement timed out again in halves, failing nothing', async () => {
    const p = pipeline();
    // A statement of more than two rows runs out of time, as a large MERGE on a small tier would.
    p.server.state.fault = (text, rows) =>
      /^MERGE \[dbo\]\.\[account\]/m.test(text) && (rows?.length ?? 0) > 2 ? requestTimeout() : undefined;
    const summary = await p.run(batch(8));
    assert.equal(summary.applied, 8);
    assert.equal(summary.failed + summary.retried + summary.deferred, 0);
    assert.deepEqual(p.server.merges, [8, 4, 2, 2, 4, 2, 2], 'each timed-out set is written again as two halves');
    assert.equal(p.server.rowsOf(entityTable).size, 8);
  });

  it('retries a single row that still times out instead of failing it', async () => {
    const p = pipeline();
    p.server.state.fault = (text) => (/^MERGE \[dbo\]\.\[account\]/m.test(text) ? requestTimeout() : undefined);
    const summary = await p.run(batch(2));
    assert.equal(summary.failed, 0);
    assert.equal(summary.retried, 2);
    assert.ok(p.takeScheduled().every((m) => m.attempt === 1));
  });

  it('still fails only the row whose value the column cannot hold', async () => {
    const p = pipeline();
    const bad = change(3, 103).recordId;
    p.server.state.fault = (text, rows) =>
      /^MERGE \[dbo\]\.\[account\]/m.test(text) && rows?.some((r) => r[0] === bad)
        ? serverError(2628, "String or binary data would be truncated in table 'sales.dbo.account', column 'name'.")
        : undefined;
    const summary = await p.run(batch(4));
    assert.equal(summary.applied, 3);
    assert.deepEqual(
      p.failures.map((f) => [f.recordId, f.code]),
      [[bad, 'TARGET_PERMANENT']],
    );
  });

  it('waits, failing no record, when the staging bulk load finds tempdb full, and applies once it has room', async () => {
    const p = pipeline();
    p.server.state.fault = (text) =>
      text === `INSERT BULK ${STAGING_TABLE}`
        ? serverError(
            1105,
            "Could not allocate space for object 'dbo.#sink_stage' in database 'tempdb' because the 'PRIMARY' filegroup is full.",
          )
        : undefined;
    const first = await p.run(batch(5));
    assert.equal(first.failed, 0);
    assert.equal(first.deferred, 5);
    assert.deepEqual(p.failures, [], 'a full tempdb is nobody’s row');
    assert.equal(p.targetStates.at(-1)?.state, 'unavailable');
    assert.deepEqual(p.server.merges, [], 'no MERGE runs without its bulk load');

    p.server.state.fault = undefined;
    assert.equal((await p.run(p.takeScheduled())).applied, 5);
    assert.equal(p.server.rowsOf(entityTable).size, 5);
  });

  it('writes the rows of a bulk load that timed out again in halves, failing nothing', async () => {
    const p = pipeline();
    p.server.state.fault = (text, rows) =>
      text === `INSERT BULK ${STAGING_TABLE}` && (rows?.length ?? 0) > 2 ? requestTimeout() : undefined;
    const summary = await p.run(batch(8));
    assert.equal(summary.applied, 8);
    assert.equal(summary.failed + summary.retried + summary.deferred, 0);
    assert.deepEqual(p.server.bulkLoads, [8, 4, 2, 2, 4, 2, 2]);
    assert.deepEqual(p.server.merges, [2, 2, 2, 2], 'a MERGE runs only over a bulk load that completed');
  });

  it('makes only the entity whose table would pass 1,024 columns wait, says so once, and clears once it fits', async () => {
    const p = pipeline();
    const contact = (n: number, version: number, attributes: number): ChangeEvent => ({
      ...change(n, version),
      entity: 'contact',
      attributes: Object.fromEntries(
        Array.from({ length: attributes }, (_, i) => [`new_field${i + 1}`, { type: 'int' as const, value: i }]),
      ),
    });
    const wide = inlineMessage(contact(50, 500, 1_100), [profile.id]);
    const first = await p.run([wide, ...batch(3)]);
    assert.equal(first.applied, 3, 'the other entity of the profile applies');
    assert.equal(first.deferred, 1);
    assert.equal(first.failed + first.retried, 0);
    assert.deepEqual(p.failures, [], 'no row of a table that cannot fit is failure-logged');
    assert.ok(
      !p.server.statements.some((t) => /\[dbo\]\.\[contact\]/.test(t) && /CREATE|ALTER/.test(t)),
      'no DDL sent',
    );
    assert.match(
      p.lastErrors.get('contact') ?? '',
      /^TABLE_LIMIT_EXCEEDED: table contact would have 1105 columns, more than SQL Server's 1024; columns not created: Id, .*new_field1, .* and \d+ more\. Its changes wait.*remove the entity from the profile/,
    );
    assert.equal(p.targetStates.at(-1), null, 'the profile’s target is fine: nothing flaps there');

    for (let round = 0; round < 3; round++) {
      const later = p.takeScheduled();
      assert.deepEqual(
        later.map((m) => [m.entity, m.attempt]),
        [['contact', 0]],
        'waiting spends no retry budget',
      );
      const summary = await p.run([...later, ...batch(2).map((m) => ({ ...m, attempt: 0 }))]);
      assert.equal(summary.deferred, 1, `round ${round}`);
    }
    assert.deepEqual(p.statusWrites, ['contact'], 'the status is written once while the condition holds');
    assert.equal(p.logLines.filter((l) => l.message === 'sink.entity.waiting').length, 1, 'logged once');

    const narrow = await p.run([inlineMessage(contact(51, 510, 10), [profile.id])]);
    assert.equal(narrow.applied, 1);
    assert.equal(p.lastErrors.get('contact'), null, 'cleared once a batch of the entity fits');
    assert.equal(p.logLines.filter((l) => l.message === 'sink.entity.fits').length, 1);
  });
});
