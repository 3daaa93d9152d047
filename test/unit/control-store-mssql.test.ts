/**
 * No SQL Server runs here, so the Azure SQL control store's T-SQL is pinned by golden files
 * (test/fixtures/golden/control-store/*.sql), reviewed by eye, plus structural checks every statement
 * must pass. `UPDATE_GOLDEN=1` rewrites the files after an intended change; review the diff.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { mssqlMigrations } from '../../lib/profiles/migrations/mssql.js';
import { type MssqlStatement, mssqlControlSql } from '../../lib/profiles/sql/mssql.js';

function goldenDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return join(dir, 'test', 'fixtures', 'golden', 'control-store');
}

const PROFILE = '0f8fad5b-d9cb-469f-a165-70867728950e';
const NOW = new Date('2026-11-25T10:00:00.123Z');
const definition = {
  name: 'Sales to SQL',
  organizationId: '6f2d8a1c-3b4e-4f5a-9c7d-1e2f3a4b5c6d',
  source: { url: 'https://contoso.crm.dynamics.com' },
  target: { kind: 'mssql' as const, connectionSecret: 'sales-db', schema: 'dbo', tablePrefix: '' },
  entities: ['account', 'contact'],
  relationships: ['accountleads'],
  options: { writeDeleteLog: true, retryCount: 12, retryIntervalSeconds: 5, initialSync: true },
};

/** Every statement the store can send, built with fixed inputs. */
function statements(): Record<string, MssqlStatement> {
  const sql = mssqlControlSql('dvexport');
  const migrations = Object.fromEntries(
    mssqlMigrations('dvexport').map((m) => [
      `migration-${String(m.version).padStart(4, '0')}`,
      { text: m.sql, params: [] } satisfies MssqlStatement,
    ]),
  );
  return {
    ...migrations,
    'migration-lock': sql.migrationLock(),
    'create-schema': sql.createSchema(),
    'create-history': sql.createHistory(),
    'applied-versions': sql.appliedVersions(),
    'record-migration': sql.recordMigration(1, 'profiles, entity status, checkpoints'),
    'insert-profile': sql.insertProfile(PROFILE, definition, 'Inactive', NOW),
    'select-profiles': sql.selectProfiles(),
    'select-profile': sql.selectProfile(PROFILE),
    'replace-profile': sql.replaceProfile(PROFILE, definition, ['account', 'contact', 'accountleads'], NOW),
    'delete-profile': sql.deleteProfile(PROFILE),
    'update-profile-state': sql.updateProfileState(PROFILE, 'Active', NOW),
    'select-active-profiles': sql.selectActiveProfiles('6F2D8A1C-3B4E-4F5A-9C7D-1E2F3A4B5C6D'),
    'select-entity-statuses': sql.selectEntityStatuses(PROFILE),
    'upsert-sync-state': sql.upsertSyncState(
      PROFILE,
      'account',
      { syncState: 'InProgress', rowsCopiedDelta: 5000, syncStartedAt: NOW, lastError: null },
      NOW,
    ),
    'upsert-metrics': sql.upsertMetrics(
      PROFILE,
      'account',
      { received: 10, applied: 7, stale: 2, failed: 1, lastAppliedAt: NOW, lagMs: 850 },
      NOW,
    ),
    'select-checkpoint': sql.selectCheckpoint(PROFILE, 'account'),
    'upsert-checkpoint': sql.upsertCheckpoint(
      {
        profileId: PROFILE,
        entity: 'account',
        nextLink: 'https://contoso.crm.dynamics.com/api/data/v9.2/accounts?$skiptoken=x',
        deltaLink: null,
        pagesDone: 3,
      },
      NOW,
    ),
    'save-copy-progress': sql.saveCopyProgress(
      {
        profileId: PROFILE,
        entity: 'account',
        nextLink: 'https://contoso.crm.dynamics.com/api/data/v9.2/accounts?$skiptoken=x',
        deltaLink: null,
        pagesDone: 3,
      },
      5000,
      NOW,
    ),
    'delete-checkpoints': sql.deleteCheckpoints(PROFILE, null),
    'select-delta-checkpoints': sql.selectDeltaCheckpoints(),
  };
}

/** The golden form: one comment line per parameter (type and sample value), then the batch text. */
function render(name: string, statement: MssqlStatement): string {
  const params = statement.params.map((p) => {
    const value = p.value instanceof Date ? p.value.toISOString() : p.value;
    return `-- @${p.name} ${p.type} = ${JSON.stringify(value)}`;
  });
  return [`-- ${name}`, ...params, statement.text, ''].join('\n');
}

/** The text with string literals blanked out, so quotes, brackets and parentheses inside them do not count. */
function code(text: string): string {
  return text.replace(/N?'(?:[^']|'')*'/g, "''");
}

describe('Azure SQL control store T-SQL', () => {
  const all = statements();
  const dir = goldenDir();

  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(dir, { recursive: true });
    for (const [name, statement] of Object.entries(all))
      writeFileSync(join(dir, `${name}.sql`), render(name, statement));
  }

  for (const [name, statement] of Object.entries(all)) {
    it(`matches the reviewed golden file ${name}.sql`, () => {
      const file = join(dir, `${name}.sql`);
      assert.ok(existsSync(file), `missing ${file}; run with UPDATE_GOLDEN=1 and review it`);
      assert.equal(render(name, statement), readFileSync(file, 'utf8'));
    });
  }

  it('has no golden file for a statement that no longer exists', () => {
    const stale = readdirSync(dir).filter((f) => f.endsWith('.sql') && !(f.slice(0, -4) in all));
    assert.deepEqual(stale, []);
  });

  it('binds every @p parameter a statement uses, and uses every one it binds', () => {
    for (const [name, statement] of Object.entries(all)) {
      const used = new Set([...code(statement.text).matchAll(/@(p\d+)\b/g)].map((m) => m[1]));
      const bound = statement.params.map((p) => p.name);
      assert.deepEqual([...used].sort(), [...bound].sort(), name);
      assert.equal(new Set(bound).size, bound.length, `${name}: duplicate parameter`);
    }
  });

  it('bracket-quotes every control-store identifier and leaks no PostgreSQL syntax', () => {
    for (const [name, statement] of Object.entries(all)) {
      const text = code(statement.text);
      assert.doesNotMatch(text, /(^|[^[])dvexport\b/, `${name}: unbracketed schema`);
      assert.doesNotMatch(text, /\$\d|"|::|\bRETURNING\b|\bON CONFLICT\b|\bjsonb\b|\bILIKE\b/i, name);
      for (const table of ['profiles', 'entity_status', 'checkpoints', 'schema_migrations']) {
        assert.doesNotMatch(text, new RegExp(`\\.${table}\\b`), `${name}: [dvexport].${table} unbracketed`);
      }
    }
  });

  it('balances brackets, parentheses and transactions in every batch', () => {
    for (const [name, statement] of Object.entries(all)) {
      const text = code(statement.text);
      for (const [open, close] of [
        ['[', ']'],
        ['(', ')'],
      ]) {
        let depth = 0;
        for (const ch of text) {
          if (ch === open) depth++;
          if (ch === close) depth--;
          assert.ok(depth >= 0, `${name}: ${close} before ${open}`);
        }
        assert.equal(depth, 0, `${name}: unbalanced ${open}${close}`);
      }
      const begins = text.match(/\bBEGIN TRANSACTION\b/g)?.length ?? 0;
      const commits = text.match(/\bCOMMIT TRANSACTION\b/g)?.length ?? 0;
      assert.equal(begins, commits, `${name}: BEGIN/COMMIT TRANSACTION`);
      if (begins) assert.match(text, /^SET XACT_ABORT ON;/, `${name}: an error must roll the batch back`);
    }
  });

  it('locks the key range of every UPDATE-then-INSERT upsert until commit', () => {
    for (const name of ['upsert-sync-state', 'upsert-metrics', 'upsert-checkpoint', 'save-copy-progress']) {
      const text = all[name].text;
      assert.match(text, /UPDATE \[dvexport\]\.\[\w+\] WITH \(UPDLOCK, SERIALIZABLE\)/, name);
      assert.match(text, /SET @written = @@ROWCOUNT;\nIF @written = 0/, name);
      assert.ok(text.indexOf('INSERT INTO') > text.indexOf('UPDATE '), `${name}: INSERT only after the UPDATE`);
    }
  });
});
