/**
 * The Azure SQL statements the applier sends, seen at the driver boundary (no SQL Server runs here): a
 * connector that keeps tables in memory as SQL Server's catalog would describe them, and records each batch.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AttributeValue } from '../../lib/change/change-event.js';
import type { AppError } from '../../lib/errors.js';
import { silentLogger } from '../../lib/log.js';
import { Applier } from '../../lib/sink/applier.js';
import {
  type MssqlBulkLoad,
  type MssqlConnector,
  MssqlDialect,
  type MssqlInput,
} from '../../lib/sink/dialects/mssql.js';
import * as sql from '../../lib/sink/dialects/mssql-sql.js';
import { deleteLogTable, tombstoneTable } from '../../lib/sink/side-tables.js';
import { guid, str, upsert } from '../support/change-events.js';

type CatalogRow = { column_name: string; type_name: string; precision: number; scale: number; max_length: number };

/** sys.columns rows for a type as createTableSql spells it. */
function catalogRow(name: string, sqlType: string): CatalogRow {
  const [, base, args = ''] = /^(\w+)(?:\((.*)\))?$/.exec(sqlType) ?? [];
  const [a, b] = args.split(',').map(Number);
  const length = base === 'nvarchar' ? (args === 'max' ? -1 : 2 * a) : 8;
  return { column_name: name, type_name: base, precision: a || 0, scale: b || 0, max_length: length };
}

/** A connector whose catalog follows the CREATE TABLE / ALTER TABLE batches it receives. */
function catalogConnector(existing: Record<string, CatalogRow[]> = {}) {
  const tables = new Map(Object.entries(existing));
  const calls: Array<{ text: string; inputs: MssqlInput[]; bulk?: MssqlBulkLoad }> = [];
  const value = (inputs: MssqlInput[], name: string) => inputs.find((i) => i.name === name)?.value;
  let staged: MssqlBulkLoad | undefined;
  const connector: MssqlConnector = {
    async query(text, inputs = []) {
      calls.push({ text, inputs });
      if (text === sql.readColumnsSql) return tables.get(String(value(inputs, 'table'))) ?? [];
      const created = /CREATE TABLE (\[\w+\]\.\[\w+\]) \(\n([\s\S]*?)\n\);/.exec(text);
      if (created) {
        const columns = [...created[2].matchAll(/^ {2}\[(\w+)\] ([\w(),]+?)(?: IDENTITY\(1,1\))? (?:NOT )?NULL/gm)];
        tables.set(
          created[1],
          columns.map((m) => catalogRow(m[1], m[2])),
        );
      }
      if (text.includes('MERGE') && text.includes(`FROM ${sql.STAGING_TABLE}`)) {
        return (staged?.rows ?? []).map((r) => ({ id: r[0] }));
      }
      return [];
    },
    async transaction(work) {
      return work({
        query: (text, inputs) => connector.query(text, inputs),
        bulk: async (load) => {
          calls.push({ text: `INSERT BULK ${load.table}`, inputs: [], bulk: load });
          staged = load;
        },
      });
    },
    async close() {},
  };
  return { connector, calls };
}

const sides = { tombstone: tombstoneTable('').name, deleteLog: deleteLogTable('').name };

function applierOn(connector: MssqlConnector): Applier {
  return new Applier(new MssqlDialect(connector, 'dbo', sides), '', true, silentLogger);
}

const merges = (calls: Array<{ text: string; inputs: MssqlInput[] }>) =>
  calls.filter((c) => c.text.includes('MERGE [dbo].[contact]'));

describe('Azure SQL statements the applier sends', () => {
  it('writes a large batch in MERGEs of at most 1,000 rows, below lock escalation, each from its own bulk load', async () => {
    const { connector, calls } = catalogConnector();
    const changes = Array.from({ length: 2_500 }, (_, i) => upsert('contact', guid(i + 1), 1, { fullname: str('x') }));
    const outcomes = await applierOn(connector).applyBatch(changes);
    assert.ok(outcomes.every((o) => o.status === 'applied'));
    const loads = calls.filter((c) => c.bulk).map((c) => c.bulk!.rows.length);
    assert.deepEqual(loads, [1_000, 1_000, 500]);
    assert.equal(merges(calls).length, 3);
    // Each MERGE reads the bulk load just before it.
    const order = calls
      .filter((c) => c.bulk || c.text.includes('MERGE [dbo].[contact]'))
      .map((c) => (c.bulk ? 'bulk' : 'merge'));
    assert.deepEqual(order, ['bulk', 'merge', 'bulk', 'merge', 'bulk', 'merge']);
    assert.equal(sql.MAX_ROWS_PER_STATEMENT, 1_000);
  });

  it('makes an entity wider than SQL Server allows wait with one error naming its columns, without any DDL', async () => {
    const { connector, calls } = catalogConnector();
    const attributes: Record<string, AttributeValue> = {};
    for (let i = 0; i < 1_100; i++) attributes[`new_field${i}`] = str('x');
    const outcomes = await applierOn(connector).applyBatch([
      upsert('contact', guid(1), 1, attributes),
      upsert('contact', guid(2), 1, { new_field0: str('y') }),
    ]);
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['waiting', 'waiting'],
    );
    const [first, second] = outcomes.map((o) => (o as { error: AppError }).error);
    assert.equal(first, second, 'one error for the entity');
    assert.equal(first.code, 'TABLE_LIMIT_EXCEEDED');
    assert.match(
      first.message,
      /contact would have 1105 columns, more than SQL Server's 1024; .*new_field0, new_field1/,
    );
    assert.ok(!calls.some((c) => c.text.includes('CREATE TABLE [dbo].[contact]')), 'no CREATE TABLE sent');
  });

  it('refuses a row that could exceed 8,060 bytes, and fits 600 inferred whole numbers as bigint', async () => {
    const decimals: Record<string, AttributeValue> = {};
    for (let i = 0; i < 600; i++) decimals[`new_amount${i}`] = { type: 'decimal', value: '1.5' };
    const wide = catalogConnector();
    const [refused] = await applierOn(wide.connector).applyBatch([upsert('contact', guid(1), 1, decimals)]);
    assert.equal(refused.status, 'waiting');
    assert.match(
      (refused as { error: AppError }).error.message,
      /up to 10\d{3} bytes per row, more than SQL Server's 8060/,
    );

    const wholes: Record<string, AttributeValue> = {};
    for (let i = 0; i < 600; i++) wholes[`new_count${i}`] = { type: 'int', value: i };
    const fits = catalogConnector();
    const [applied] = await applierOn(fits.connector).applyBatch([upsert('contact', guid(1), 1, wholes)]);
    assert.equal(applied.status, 'applied');
    assert.match(
      fits.calls.find((c) => c.text.includes('CREATE TABLE [dbo].[contact]'))!.text,
      /\[new_count0\] bigint NULL/,
    );
  });

  it('counts an nvarchar(n) value in UTF-16 code units, as SQL Server does', async () => {
    const { connector } = catalogConnector({
      '[dbo].[contact]': [
        catalogRow('Id', 'uniqueidentifier'),
        catalogRow('versionnumber', 'bigint'),
        catalogRow('modifiedon', 'datetime'),
        catalogRow('SinkCreatedOn', 'datetime'),
        catalogRow('SinkModifiedOn', 'datetime'),
        catalogRow('nickname', 'nvarchar(3)'),
      ],
    });
    const outcomes = await applierOn(connector).applyBatch([
      upsert('contact', guid(1), 1, { nickname: str('a😀') }),
      upsert('contact', guid(2), 1, { nickname: str('ab😀') }),
    ]);
    assert.equal(outcomes[0].status, 'applied');
    assert.equal(outcomes[1].status, 'failed');
    assert.match((outcomes[1] as { error: AppError }).error.message, /4 UTF-16 code units; the column holds at most 3/);
  });

  it('declares the two-part table name at its real length, not NVarChar(128)', async () => {
    const { connector, calls } = catalogConnector();
    const schema = 's'.repeat(128);
    await new MssqlDialect(connector, schema, sides).readColumns('t'.repeat(128));
    const table = calls[0].inputs.find((i) => i.name === 'table')!;
    assert.equal(String(table.value).length, 261);
    assert.equal((table.type as { length?: number }).length, 261);
  });

  it('never sends OUTPUT straight to the client (error 334 on a table with a trigger)', async () => {
    const { connector, calls } = catalogConnector();
    const applier = applierOn(connector);
    await applier.applyBatch([upsert('contact', guid(1), 1, { fullname: str('x') })]);
    await applier.applyBatch([
      {
        ...upsert('contact', guid(1), 2, {}),
        operation: 'delete',
        attributes: undefined,
      },
    ]);
    await applier.purgeTombstones(new Date());
    const withOutput = calls.filter((c) => /\bOUTPUT\b/.test(c.text));
    assert.ok(withOutput.length >= 3, 'merge, recheck, tombstone and delete use OUTPUT');
    for (const call of withOutput) {
      for (const clause of call.text.matchAll(/\bOUTPUT\b[^;]*/g)) assert.match(clause[0], /\bINTO @\w+/, call.text);
    }
  });
});
