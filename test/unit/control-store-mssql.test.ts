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
import type { MssqlStatement } from '../../lib/profiles/sql/mssql.js';
import { controlStatements as statements } from '../support/mssql-statements.js';

function goldenDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return join(dir, 'test', 'fixtures', 'golden', 'control-store');
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
      for (const table of ['profiles', 'entity_status', 'checkpoints', 'schema_migrations', 'audit_log']) {
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
