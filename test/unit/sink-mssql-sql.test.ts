import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { SideTableNames } from '../../lib/sink/dialect.js';
import {
  type MssqlBulkLoad,
  type MssqlConnector,
  MssqlDialect,
  type MssqlInput,
} from '../../lib/sink/dialects/mssql.js';
import * as sql from '../../lib/sink/dialects/mssql-sql.js';
import { widenColumnSql } from '../../lib/sink/dialects/mssql-widen-sql.js';
import { deleteLogTable, insertColumns, metadataTables, tombstoneTable } from '../../lib/sink/side-tables.js';
import { type Column, systemColumns } from '../../lib/sink/table-model.js';

/**
 * No SQL Server runs here, so the T-SQL the Azure SQL dialect generates is pinned to golden files
 * that were reviewed by eye: test/fixtures/golden/sink/*.sql. `UPDATE_GOLDEN=1` rewrites them after a change
 * that is meant; review the diff before committing it.
 */
function goldenDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return join(dir, 'test', 'fixtures', 'golden', 'sink');
}

function matchesGolden(name: string, actual: string): void {
  const file = join(goldenDir(), `${name}.sql`);
  const text = `${actual.trimEnd()}\n`;
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    return;
  }
  assert.ok(existsSync(file), `golden file ${file} is missing: run with UPDATE_GOLDEN=1 and review it`);
  assert.equal(
    text,
    readFileSync(file, 'utf8'),
    `${name}.sql differs from its golden file (UPDATE_GOLDEN=1 rewrites it)`,
  );
}

const sides: SideTableNames = { tombstone: tombstoneTable('sales').name, deleteLog: deleteLogTable('sales').name };

const accountColumns: Column[] = [
  { name: 'name', type: { kind: 'text', maxLength: 160 } },
  { name: 'description', type: { kind: 'text' } },
  { name: 'parentaccountid', type: { kind: 'uuid' } },
  { name: 'parentaccountid_entitytype', type: { kind: 'text' } },
  { name: 'revenue', type: { kind: 'decimal', precision: 19, scale: 4 } },
  { name: 'statecode', type: { kind: 'integer' } },
  { name: 'donotemail', type: { kind: 'boolean' } },
  { name: 'lastusedincampaign', type: { kind: 'timestamp' } },
];

describe('Azure SQL statements (golden files)', () => {
  it('creates the schema under an application lock', () => {
    matchesGolden('create-schema', sql.createSchemaSql('sales'));
  });

  it('creates an entity table with DES columns, guarded by an existence check and sp_getapplock', () => {
    matchesGolden(
      'create-table',
      sql.createTableSql('dbo', {
        name: 'sales_account',
        columns: [...systemColumns(), ...accountColumns],
        primaryKey: ['Id'],
      }),
    );
  });

  it('creates the tombstone and DeleteLog side tables', () => {
    matchesGolden('create-tombstone', sql.createTableSql('dbo', tombstoneTable('sales')));
    matchesGolden('create-deletelog', sql.createTableSql('dbo', deleteLogTable('sales')));
  });

  it('adds missing columns one existence check at a time', () => {
    matchesGolden('alter-add-columns', sql.addColumnsSql('dbo', 'sales_account', accountColumns.slice(2, 5)));
  });

  it('widens a column under the schema lock, keeping its NULL-ability, only while it has the type read', () => {
    matchesGolden(
      'widen-text',
      widenColumnSql(
        'dbo',
        'sales_account',
        'name',
        { kind: 'text', maxLength: 160 },
        { kind: 'text', maxLength: 400 },
      ),
    );
    matchesGolden(
      'widen-text-max',
      widenColumnSql(
        'dbo',
        'sales_account',
        'description',
        { kind: 'text', maxLength: 4000 },
        { kind: 'text', maxLength: 5000 },
      ),
    );
    matchesGolden(
      'widen-int',
      widenColumnSql('dbo', 'sales_account', 'numberofemployees', { kind: 'integer' }, { kind: 'bigint' }),
    );
    matchesGolden(
      'widen-decimal',
      widenColumnSql(
        'dbo',
        'sales_account',
        'creditlimit',
        { kind: 'decimal', precision: 12, scale: 2 },
        { kind: 'decimal', precision: 23, scale: 10 },
      ),
    );
  });

  it('creates the #temp staging table upsert rows are bulk loaded into, as text cells', () => {
    matchesGolden('create-staging', sql.createStagingSql(accountColumns.length));
  });

  it('merges the staged rows under the version guard and the tombstone', () => {
    matchesGolden('merge', sql.mergeSql('dbo', 'sales_account', sides, accountColumns));
  });

  it('rechecks merged rows against tombstones committed meanwhile', () => {
    matchesGolden('recheck', sql.recheckSql('dbo', 'sales_account', sides));
  });

  it('raises tombstones', () => {
    matchesGolden('tombstone', sql.tombstoneSql('dbo', sides));
  });

  it('deletes rows with and without a DeleteLog', () => {
    matchesGolden('delete', sql.deleteSql('dbo', 'sales_account', sides, false));
    matchesGolden('delete-with-deletelog', sql.deleteSql('dbo', 'sales_account', sides, true));
  });

  it('replaces one entity’s metadata rows under an application lock', () => {
    const states = metadataTables('sales').states.def;
    const attributes = metadataTables('sales').attributes.def;
    matchesGolden(
      'metadata-replace',
      [
        sql.createTableSql('dbo', states),
        sql.replaceLockSql,
        sql.deleteByKeySql('dbo', states.name, 'EntityName'),
        sql.insertRowsSql('dbo', states.name, insertColumns(states)),
        sql.createTableSql('dbo', attributes),
        sql.insertRowsSql('dbo', attributes.name, insertColumns(attributes)),
      ].join('\n\n'),
    );
  });

  it('purges old tombstones in chunks', () => {
    matchesGolden('purge-tombstones', sql.purgeTombstonesSql('dbo', sides));
  });

  it('drops a table, and removes and counts side-table rows, only where the table exists', () => {
    matchesGolden(
      'drop',
      [
        sql.dropTableSql('dbo', 'sales_account'),
        sql.deleteWhereInSql('dbo', sides.tombstone, 'EntityName'),
        sql.isEmptySql('dbo', sides.tombstone),
      ].join('\n\n'),
    );
  });

  it('reads a table’s columns', () => {
    matchesGolden('read-columns', sql.readColumnsSql);
  });
});

/** A connector that records each batch (and bulk load) and answers from a script, as SQL Server would. */
function recordingConnector(answers: Array<Array<Record<string, unknown>>>) {
  const calls: Array<{ text: string; inputs: MssqlInput[]; inTransaction?: boolean }> = [];
  const bulks: MssqlBulkLoad[] = [];
  const connector: MssqlConnector = {
    async query(text, inputs = []) {
      calls.push({ text, inputs });
      return answers.shift() ?? [];
    },
    async transaction(work) {
      return work({
        query: async (text, inputs = []) => {
          calls.push({ text, inputs, inTransaction: true });
          return answers.shift() ?? [];
        },
        bulk: async (load) => {
          calls.push({ text: `INSERT BULK ${load.table}`, inputs: [], inTransaction: true });
          bulks.push(load);
        },
      });
    },
    async close() {},
  };
  return { connector, calls, bulks };
}

const input = (call: { inputs: MssqlInput[] }, name: string) => call.inputs.find((i) => i.name === name)?.value;

describe('Azure SQL dialect', () => {
  it('bulk loads an upsert batch into #temp in column order, merges from it in one transaction, and rechecks what applied', async () => {
    const { connector, calls, bulks } = recordingConnector([[], [{ id: 'a' }, { id: 'b' }], [{ id: 'b' }]]);
    const dialect = new MssqlDialect(connector, 'dbo', sides);
    const applied = await dialect.upsert({
      table: 'sales_account',
      entity: 'account',
      columns: accountColumns.slice(0, 2),
      rows: [
        { id: 'a', rowVersion: '5', modifiedOn: '2026-01-01T00:00:00.000Z', cells: ['Contoso', null] },
        { id: 'b', rowVersion: null, modifiedOn: null, cells: ['Fabrikam', 'text'] },
      ],
    });
    assert.deepEqual([...applied], ['a']);
    assert.deepEqual(
      calls.map((c) => [c.text, c.inTransaction ?? false]),
      [
        [sql.createStagingSql(2), true],
        ['INSERT BULK #sink_stage', true],
        [sql.mergeSql('dbo', 'sales_account', sides, accountColumns.slice(0, 2)), true],
        [sql.recheckSql('dbo', 'sales_account', sides), false],
      ],
    );
    assert.deepEqual(bulks, [
      {
        table: '#sink_stage',
        columns: [
          { name: 'id', length: 36 },
          { name: 'vn', length: 20 },
          { name: 'mo', length: 40 },
          { name: 'c0', length: 'max' },
          { name: 'c1', length: 'max' },
        ],
        rows: [
          ['a', '5', '2026-01-01T00:00:00.000Z', 'Contoso', null],
          ['b', null, null, 'Fabrikam', 'text'],
        ],
      },
    ]);
    assert.equal(input(calls[2], 'entity'), 'account');
    assert.deepEqual(JSON.parse(String(input(calls[3], 'ids'))), ['a', 'b']);
  });

  it('raises tombstones first, then deletes with the advanced and DeleteLog flags per row', async () => {
    const { connector, calls } = recordingConnector([[{ id: 'b' }], [{ id: 'a' }, { id: 'b' }]]);
    const dialect = new MssqlDialect(connector, 'dbo', sides);
    const applied = await dialect.delete(
      {
        table: 'sales_account',
        entity: 'account',
        rows: [
          { id: 'a', rowVersion: '7', deletedOn: '2026-01-02T00:00:00.000Z', logs: true },
          { id: 'b', rowVersion: null, deletedOn: '2026-01-03T00:00:00.000Z', logs: false },
        ],
      },
      true,
    );
    assert.deepEqual([...applied].sort(), ['a', 'b']);
    assert.equal(calls[0].text, sql.tombstoneSql('dbo', sides));
    assert.equal(calls[1].text, sql.deleteSql('dbo', 'sales_account', sides, true));
    assert.deepEqual(JSON.parse(String(input(calls[1], 'rows'))), [
      ['a', '7', '2026-01-02T00:00:00.000Z', 1, 0],
      ['b', null, '2026-01-03T00:00:00.000Z', 0, 1],
    ]);
  });

  it('widens through one batch and reports whether the column still had the type read', async () => {
    const { connector, calls } = recordingConnector([[{ widened: true }], [{ widened: false }]]);
    const dialect = new MssqlDialect(connector, 'dbo', sides);
    const from = { kind: 'text', maxLength: 160 } as const;
    const to = { kind: 'text', maxLength: 400 } as const;
    assert.equal(await dialect.widenColumn('sales_account', 'name', from, to), true);
    assert.equal(await dialect.widenColumn('sales_account', 'name', from, to), false);
    assert.equal(calls[0].text, widenColumnSql('dbo', 'sales_account', 'name', from, to));
  });

  it('compares column names without case, as the default collation does', async () => {
    const { connector } = recordingConnector([
      [
        { column_name: 'Id', type_name: 'uniqueidentifier', precision: 0, scale: 0, max_length: 16 },
        { column_name: 'Name', type_name: 'nvarchar', precision: 0, scale: 0, max_length: 320 },
        { column_name: 'Notes', type_name: 'nvarchar', precision: 0, scale: 0, max_length: -1 },
        { column_name: 'Revenue', type_name: 'decimal', precision: 19, scale: 4, max_length: 9 },
      ],
    ]);
    const columns = await new MssqlDialect(connector, 'dbo', sides).readColumns('sales_account');
    assert.deepEqual(Object.fromEntries(columns ?? []), {
      id: { kind: 'uuid' },
      name: { kind: 'text', maxLength: 160 },
      notes: { kind: 'text' },
      revenue: { kind: 'decimal', precision: 19, scale: 4 },
    });
  });
});
