/**
 * The Azure SQL control store's own logic (row mapping, when it sends what, how it reads answers), over a
 * recorder standing in for the `mssql` connection: no SQL Server runs here. The T-SQL itself is pinned by
 * control-store-mssql.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '../../lib/errors.js';
import { mssqlMigrations } from '../../lib/profiles/migrations/mssql.js';
import type { MssqlControlConnection, MssqlRows } from '../../lib/profiles/mssql-connection.js';
import { createMssqlControlStore } from '../../lib/profiles/mssql-control-store.js';
import { withDefaults } from '../../lib/profiles/schema.js';
import { type MssqlStatement, mssqlControlSql } from '../../lib/profiles/sql/mssql.js';

const sql = mssqlControlSql('dvexport');
const PROFILE = '0F8FAD5B-D9CB-469F-A165-70867728950E';
const NOW = new Date('2026-11-25T10:00:00.000Z');

interface Sent {
  statement: MssqlStatement;
  inTransaction: boolean;
}

/** Records every batch; `answer` plays the server. */
function recorder(answer: (statement: MssqlStatement) => MssqlRows | Error = () => []) {
  const sent: Sent[] = [];
  let closed = false;
  const run = async (statement: MssqlStatement, inTransaction: boolean) => {
    sent.push({ statement, inTransaction });
    const result = answer(statement);
    if (result instanceof Error) throw result;
    return result;
  };
  const connection: MssqlControlConnection = {
    query: (statement) => run(statement, false),
    transaction: (work) => work({ query: (statement) => run(statement, true) }),
    async close() {
      closed = true;
    },
  };
  return { connection, sent, isClosed: () => closed };
}

const sameText = (a: MssqlStatement, b: MssqlStatement) => a.text === b.text;
const params = (s: MssqlStatement) => Object.fromEntries(s.params.map((p) => [p.name, p.value]));

const definition = withDefaults({
  name: 'Sales to SQL',
  organizationId: '6F2D8A1C-3B4E-4F5A-9C7D-1E2F3A4B5C6D',
  source: { url: 'https://contoso.crm.dynamics.com' },
  target: { kind: 'mssql', connectionSecret: 'sales-db' },
  entities: ['account', 'contact'],
});

/** A profiles row as tedious returns it: uniqueidentifier upper case, JSON as text, DATETIME2 as Date. */
const profileRow = {
  id: PROFILE,
  name: 'Sales to SQL',
  organization_id: '6f2d8a1c-3b4e-4f5a-9c7d-1e2f3a4b5c6d',
  state: 'Inactive',
  definition: JSON.stringify(definition),
  created_on: NOW,
  modified_on: NOW,
};

describe('Azure SQL control store over a recorded connection', () => {
  it('migrates inside one transaction, after the application lock, applying only unrecorded versions', async () => {
    const { connection, sent } = recorder((s) => {
      if (sameText(s, sql.migrationLock())) return [{ result: 0 }];
      if (sameText(s, sql.appliedVersions())) return [];
      return [];
    });
    await createMssqlControlStore(connection).migrate();
    const migrations = mssqlMigrations('dvexport');
    assert.ok(sent.every((s) => s.inTransaction));
    assert.deepEqual(
      sent.map((s) => s.statement.text),
      [
        sql.migrationLock().text,
        sql.createSchema().text,
        sql.createHistory().text,
        sql.appliedVersions().text,
        ...migrations.flatMap((m) => [m.sql, sql.recordMigration(m.version, m.name).text]),
      ],
    );
    const last = migrations.at(-1)!;
    assert.deepEqual(params(sent.at(-1)!.statement), { p1: last.version, p2: last.name });
  });

  it('runs no migration step that the history already records', async () => {
    const applied = mssqlMigrations('dvexport').map((m) => ({ version: m.version, name: m.name }));
    const { connection, sent } = recorder((s) => {
      if (sameText(s, sql.migrationLock())) return [{ result: 1 }];
      if (sameText(s, sql.appliedVersions())) return applied;
      return [];
    });
    await createMssqlControlStore(connection).migrate();
    assert.equal(sent.length, 4);
    assert.equal(sent.at(-1)!.statement.text, sql.appliedVersions().text);
  });

  it('stops with a transient error, before any DDL, when the migration lock is not granted', async () => {
    const { connection, sent } = recorder(() => [{ result: -1 }]);
    await assert.rejects(
      createMssqlControlStore(connection).migrate(),
      (err: unknown) => err instanceof AppError && err.transient && /sp_getapplock answered -1/.test(err.message),
    );
    assert.equal(sent.length, 1);
  });

  it('creates a profile from one INSERT … OUTPUT and maps the driver row back', async () => {
    const { connection, sent } = recorder(() => [profileRow]);
    const store = createMssqlControlStore(connection, { now: () => NOW });
    const created = await store.createProfile(definition);
    const [insert] = sent;
    assert.match(insert.statement.text, /^INSERT INTO \[dvexport\]\.\[profiles\]/);
    const bound = params(insert.statement);
    assert.match(String(bound.p1), /^[0-9a-f-]{36}$/);
    assert.equal(bound.p3, '6f2d8a1c-3b4e-4f5a-9c7d-1e2f3a4b5c6d');
    assert.equal(bound.p4, 'Inactive');
    assert.deepEqual(JSON.parse(String(bound.p5)), definition);
    assert.equal(bound.p6, NOW);
    assert.deepEqual(created, {
      id: PROFILE.toLowerCase(),
      ...definition,
      state: 'Inactive',
      createdOn: NOW.toISOString(),
      modifiedOn: NOW.toISOString(),
    });
  });

  it('sends nothing for an id that cannot be a GUID', async () => {
    const { connection, sent } = recorder();
    const store = createMssqlControlStore(connection);
    assert.equal(await store.getProfile('1; DROP TABLE x'), undefined);
    assert.equal(await store.deleteProfile('nope'), false);
    assert.deepEqual(await store.entityStatuses('nope'), []);
    assert.equal(await store.getCheckpoint('nope', 'account'), undefined);
    assert.equal(sent.length, 0);
  });

  it('reads deleteProfile from the OUTPUT row count', async () => {
    const { connection } = recorder((s) => (s.text.startsWith('DELETE') ? [{ id: PROFILE }] : []));
    assert.equal(await createMssqlControlStore(connection).deleteProfile(PROFILE), true);
    const none = recorder(() => []);
    assert.equal(await createMssqlControlStore(none.connection).deleteProfile(PROFILE), false);
  });

  it('maps status rows: BIGINT text to numbers, missing rows to NotStarted, mean lag from sum and count', async () => {
    const { connection, sent } = recorder(() => [
      {
        entity: 'account',
        sync_state: 'Completed',
        rows_copied: '12345678901',
        rows_estimated: '12345678901',
        sync_started_at: NOW,
        sync_completed_at: NOW,
        last_error: null,
        received: '10',
        applied: '8',
        stale: '1',
        failed: '1',
        last_applied_at: NOW,
        last_lag_ms: '120',
        lag_sum_ms: '1000',
        lag_count: '3',
      },
      { entity: 'contact', sync_state: null, rows_copied: null, lag_count: null },
    ]);
    const [account, contact] = await createMssqlControlStore(connection).entityStatuses(PROFILE);
    assert.equal(params(sent[0].statement).p1, PROFILE.toLowerCase());
    assert.equal(account.rowsCopied, 12345678901);
    assert.equal(account.applied, 8);
    assert.equal(account.lastLagMs, 120);
    assert.equal(account.meanLagMs, 333);
    assert.equal(account.syncCompletedAt, NOW.toISOString());
    assert.equal(contact.syncState, 'NotStarted');
    assert.equal(contact.rowsCopied, 0);
    assert.equal(contact.meanLagMs, null);
  });

  it('raises PROFILE_NOT_FOUND when a sync-state or checkpoint upsert writes no row', async () => {
    const { connection } = recorder(() => [{ written: 0 }]);
    const store = createMssqlControlStore(connection);
    const notFound = (err: unknown) => err instanceof AppError && err.code === 'PROFILE_NOT_FOUND';
    await assert.rejects(store.updateSyncState(PROFILE, 'account', { syncState: 'Queued' }), notFound);
    await assert.rejects(
      store.saveCheckpoint({ profileId: PROFILE, entity: 'account', nextLink: null, deltaLink: 'd', pagesDone: 1 }),
      notFound,
    );
  });

  it('treats a foreign-key conflict (547, profile deleted meanwhile) as a missing profile', async () => {
    const conflict = Object.assign(new Error('The INSERT statement conflicted with the FOREIGN KEY constraint'), {
      number: 547,
    });
    const { connection } = recorder(() => conflict);
    const store = createMssqlControlStore(connection);
    await store.recordMetrics(PROFILE, 'account', { applied: 1 });
    await assert.rejects(store.updateSyncState(PROFILE, 'account', { syncState: 'Queued' }), /does not exist/);
  });

  it('passes other errors through untouched', async () => {
    const deadlock = Object.assign(new Error('deadlock victim'), { number: 1205 });
    const { connection } = recorder(() => deadlock);
    await assert.rejects(
      createMssqlControlStore(connection).recordMetrics(PROFILE, 'account', { applied: 1 }),
      deadlock,
    );
  });

  it('binds metric increments in place and sends nothing for an empty delta', async () => {
    const { connection, sent } = recorder(() => [{ written: 1 }]);
    const store = createMssqlControlStore(connection, { now: () => NOW });
    await store.recordMetrics(PROFILE, 'account', {});
    assert.equal(sent.length, 0);
    const at = new Date('2026-11-25T09:59:59.000Z');
    await store.recordMetrics(PROFILE, 'account', { received: 4, failed: 1, lastAppliedAt: at, lagMs: 12.6 });
    assert.deepEqual(params(sent[0].statement), {
      p1: PROFILE.toLowerCase(),
      p2: 'account',
      p3: 4,
      p4: 0,
      p5: 0,
      p6: 1,
      p7: at,
      p8: 13,
      p9: NOW,
    });
    await assert.rejects(store.recordMetrics(PROFILE, 'account', { applied: -1 }), /non-negative integer/);
  });

  it('tells a cleared field (null) from an untouched one (absent) in a sync-state patch', async () => {
    const { connection, sent } = recorder(() => [{ written: 1 }]);
    await createMssqlControlStore(connection).updateSyncState(PROFILE, 'account', {
      rowsCopiedDelta: 10,
      lastError: null,
    });
    const bound = params(sent[0].statement);
    assert.equal(bound.p5, 10);
    assert.equal(bound.p6, false, 'rowsEstimated untouched');
    assert.equal(bound.p12, true, 'lastError cleared');
    assert.equal(bound.p13, null);
  });

  it('closes its connection', async () => {
    const { connection, isClosed } = recorder();
    await createMssqlControlStore(connection).close();
    assert.ok(isClosed());
  });
});
