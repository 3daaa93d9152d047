/**
 * No SQL Server runs here: every statement the Azure SQL code can generate — each column type, each side
 * table, the control store, its migrations — is parsed by the ANTLR grammars-v4 TSql grammar. Golden files
 * pin the exact text; this pins that the text is T-SQL at all.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mssqlControlSql } from '../../lib/profiles/sql/mssql.js';
import type { SideTableNames, TableDef } from '../../lib/sink/dialect.js';
import * as sql from '../../lib/sink/dialects/mssql-sql.js';
import { widenColumnSql } from '../../lib/sink/dialects/mssql-widen-sql.js';
import { deleteLogTable, insertColumns, metadataTables, tombstoneTable } from '../../lib/sink/side-tables.js';
import {
  type Column,
  type ColumnKind,
  type ColumnType,
  columnsForAttribute,
  systemColumns,
} from '../../lib/sink/table-model.js';
import { controlStatements } from '../support/mssql-statements.js';
import { tsqlSyntaxErrors } from '../support/tsql-grammar.js';

const sides: SideTableNames = { tombstone: tombstoneTable('sales').name, deleteLog: deleteLogTable('sales').name };

/** One column of every kind, and each variant a kind has (lengths, decimal precisions, a lookup's pair). */
const everyColumn: Column[] = [
  { name: 'name', type: { kind: 'text', maxLength: 160 } },
  { name: 'longtext', type: { kind: 'text', maxLength: 4001 } },
  { name: 'description', type: { kind: 'text' } },
  ...columnsForAttribute('parentaccountid', { kind: 'uuid' }, true),
  { name: 'revenue', type: { kind: 'decimal', precision: 38, scale: 2 } },
  { name: 'revenue_base', type: { kind: 'decimal', precision: 38, scale: 4 } },
  { name: 'exchangerate', type: { kind: 'decimal' } },
  { name: 'statecode', type: { kind: 'integer' } },
  { name: 'importsequencenumber', type: { kind: 'bigint' } },
  { name: 'latitude', type: { kind: 'double' } },
  { name: 'donotemail', type: { kind: 'boolean' } },
  { name: 'lastusedincampaign', type: { kind: 'timestamp' } },
];

/** Every widening the sink makes (see lib/sink/column-widening.ts): from → to. */
const widenings: Record<string, [ColumnType, ColumnType]> = {
  'longer text': [
    { kind: 'text', maxLength: 160 },
    { kind: 'text', maxLength: 400 },
  ],
  'text past 4000': [
    { kind: 'text', maxLength: 4000 },
    { kind: 'text', maxLength: 8000 },
  ],
  'text to unlimited': [{ kind: 'text', maxLength: 100 }, { kind: 'text' }],
  'int to bigint': [{ kind: 'integer' }, { kind: 'bigint' }],
  'more digits': [
    { kind: 'decimal', precision: 12, scale: 2 },
    { kind: 'decimal', precision: 23, scale: 10 },
  ],
};

const kinds: ColumnKind[] = ['uuid', 'text', 'integer', 'bigint', 'decimal', 'double', 'boolean', 'timestamp'];

/** Every statement of lib/sink/dialects/mssql-sql.ts, keyed `<export>: <case>`. */
function sinkStatements(): Record<string, string> {
  const entity: TableDef = { name: 'sales_account', columns: [...systemColumns(), ...everyColumn], primaryKey: ['Id'] };
  const meta = Object.values(metadataTables('sales')).map((t) => t.def);
  const sideDefs = [tombstoneTable('sales'), deleteLogTable('sales'), ...meta];
  const out: Record<string, string> = {
    'createSchemaSql: schema': sql.createSchemaSql('sales'),
    'createTableSql: entity with every column type': sql.createTableSql('dbo', entity),
    'addColumnsSql: every column type': sql.addColumnsSql('dbo', 'sales_account', everyColumn),
    'readColumnsSql: columns': sql.readColumnsSql,
    'createStagingSql: every column type': sql.createStagingSql(everyColumn.length),
    'createStagingSql: system columns only': sql.createStagingSql(0),
    'mergeSql: every column type': sql.mergeSql('dbo', 'sales_account', sides, everyColumn),
    'mergeSql: system columns only': sql.mergeSql('dbo', 'sales_account', sides, []),
    'recheckSql: recheck': sql.recheckSql('dbo', 'sales_account', sides),
    'tombstoneSql: tombstone': sql.tombstoneSql('dbo', sides),
    'deleteSql: without DeleteLog': sql.deleteSql('dbo', 'sales_account', sides, false),
    'deleteSql: with DeleteLog': sql.deleteSql('dbo', 'sales_account', sides, true),
    'purgeTombstonesSql: purge': sql.purgeTombstonesSql('dbo', sides),
    'dropTableSql: drop': sql.dropTableSql('dbo', 'sales_account'),
    'deleteWhereInSql: side rows': sql.deleteWhereInSql('dbo', sides.tombstone, 'EntityName'),
    'isEmptySql: empty': sql.isEmptySql('dbo', sides.tombstone),
    'replaceLockSql: metadata lock': sql.replaceLockSql,
  };
  for (const [name, [from, to]] of Object.entries(widenings)) {
    out[`widenColumnSql: ${name}`] = widenColumnSql('dbo', 'sales_account', 'name', from, to);
  }
  for (const def of sideDefs) {
    out[`createTableSql: ${def.name}`] = sql.createTableSql('dbo', def);
    out[`addColumnsSql: ${def.name}`] = sql.addColumnsSql('dbo', def.name, def.columns.slice(1));
  }
  for (const def of meta) {
    out[`deleteByKeySql: ${def.name}`] = sql.deleteByKeySql('dbo', def.name, 'EntityName');
    out[`insertRowsSql: ${def.name}`] = sql.insertRowsSql('dbo', def.name, insertColumns(def));
  }
  for (const kind of kinds) {
    const column: Column = { name: `c_${kind}`, type: { kind } };
    out[`mergeSql: ${kind} alone`] = sql.mergeSql('dbo', 'sales_account', sides, [column]);
    out[`insertRowsSql: ${kind} alone`] = sql.insertRowsSql('dbo', 'sales_account', [column]);
  }
  return out;
}

/** The control store's statements, plus the upsert variants its patches produce. */
function controlStoreStatements(): Record<string, string> {
  const store = mssqlControlSql('dvexport');
  const id = '0f8fad5b-d9cb-469f-a165-70867728950e';
  const now = new Date('2026-11-25T10:00:00.123Z');
  const out: Record<string, string> = {};
  for (const [name, statement] of Object.entries(controlStatements())) out[name] = statement.text;
  out['upsert-sync-state: state only'] = store.upsertSyncState(id, 'account', { syncState: 'Completed' }, now).text;
  out['upsert-sync-state: error only'] = store.upsertSyncState(id, 'account', { lastError: 'x' }, now).text;
  out['upsert-sync-state: every field'] = store.upsertSyncState(
    id,
    'account',
    {
      syncState: 'InProgress',
      rowsCopiedDelta: 1,
      rowsEstimated: 10,
      syncStartedAt: now,
      syncCompletedAt: now,
      lastError: null,
    },
    now,
  ).text;
  out['delete-checkpoints: one entity'] = store.deleteCheckpoints(id, 'account').text;
  return out;
}

const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

describe('T-SQL grammar check', () => {
  it('rejects what SQL Server would: PostgreSQL syntax, a missing END, a broken OPENJSON … WITH', () => {
    const invalid = {
      'LIMIT (PostgreSQL)': 'SELECT [a] FROM [t] LIMIT 1;',
      'RETURNING (PostgreSQL)': 'INSERT INTO [t] ([a]) VALUES (1) RETURNING [a];',
      'ON CONFLICT (PostgreSQL)': 'INSERT INTO [t] ([a]) VALUES (1) ON CONFLICT ([a]) DO NOTHING;',
      'ILIKE (PostgreSQL)': "SELECT [a] FROM [t] WHERE [a] ILIKE N'x%';",
      'CREATE TABLE IF NOT EXISTS': 'CREATE TABLE IF NOT EXISTS [t] ([a] int);',
      'BEGIN without END': 'IF 1 = 1\nBEGIN\n  SELECT 1;\n',
      'OPENJSON WITH missing its parenthesis': "SELECT * FROM OPENJSON(@rows) WITH [a] nvarchar(10) '$[0]') AS j;",
      'MERGE without WHEN': 'MERGE [t] AS x USING [s] ON x.[a] = s.[a];',
      'misspelt keyword': 'SELEC 1;',
    };
    for (const [name, text] of Object.entries(invalid)) {
      assert.notDeepEqual(tsqlSyntaxErrors(text), [], `${name} was accepted`);
    }
  });

  it('accepts the constructs the sink relies on', () => {
    assert.deepEqual(
      tsqlSyntaxErrors(
        "DECLARE @t TABLE ([id] int);\nMERGE [s].[t] WITH (HOLDLOCK) AS t USING (SELECT * FROM OPENJSON(@rows) WITH ([id] int '$[0]') AS j) AS s ON t.[id] = s.[id]\nWHEN NOT MATCHED BY TARGET THEN INSERT ([id]) VALUES (s.[id])\nOUTPUT inserted.[id] INTO @t ([id]);\nSELECT [id] FROM @t;",
      ),
      [],
    );
  });

  const sink = sinkStatements();
  for (const [name, text] of Object.entries(sink)) {
    it(`parses the sink's ${name}`, () => assert.deepEqual(tsqlSyntaxErrors(text), [], text));
  }

  it('covers every statement builder of the sink', () => {
    const builders = Object.entries(sql)
      .filter(([name, value]) => name.endsWith('Sql') && name !== 'columnTypeSql' && value !== undefined)
      .map(([name]) => name);
    const covered = new Set(Object.keys(sink).map((key) => key.split(':')[0]));
    assert.deepEqual(
      builders.filter((name) => !covered.has(name)),
      [],
    );
  });

  const control = controlStoreStatements();
  for (const [name, text] of Object.entries(control)) {
    it(`parses the control store's ${name}`, () => assert.deepEqual(tsqlSyntaxErrors(text), [], text));
  }

  it('covers every statement of the control store', () => {
    const covered = new Set(Object.keys(control).map((key) => key.split(':')[0]));
    const builders = Object.keys(mssqlControlSql('dvexport')).map(kebab);
    assert.deepEqual(
      builders.filter((name) => !covered.has(name)),
      [],
    );
  });
});
