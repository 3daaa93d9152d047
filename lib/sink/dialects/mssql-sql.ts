/**
 * Azure SQL / SQL Server statement text (T-SQL). Identifiers arrive validated and are bracket-quoted with
 * DES's spelling; values are parameters or bulk-loaded rows. Upserts stage rows as text in a temp table
 * (bulk load) and MERGE them WITH (HOLDLOCK) under the version guard; deletes and metadata travel as one
 * JSON parameter read with OPENJSON.
 */
import type { SideTableNames, TableDef } from '../dialect.js';
import type { Column, ColumnType } from '../table-model.js';

export const quote = (name: string): string => `[${name}]`;
const qualified = (schema: string, table: string): string => `${quote(schema)}.${quote(table)}`;
/** A literal for an object name inside OBJECT_ID / COL_LENGTH (names are validated: no quotes inside). */
const nameLiteral = (text: string): string => `N'${text}'`;

/** The staging temp table of an upsert. */
export const STAGING_TABLE = '#sink_rows';

export function columnTypeSql(type: ColumnType): string {
  switch (type.kind) {
    case 'uuid':
      return 'uniqueidentifier';
    case 'text':
      return type.maxLength && type.maxLength <= 4000 ? `nvarchar(${type.maxLength})` : 'nvarchar(max)';
    case 'integer':
      return 'int';
    case 'bigint':
      return 'bigint';
    case 'decimal':
      return `decimal(${type.precision ?? 38},${type.scale ?? 0})`;
    case 'double':
      return 'float';
    case 'boolean':
      return 'bit';
    case 'timestamp':
      return 'datetime2(7)';
  }
}

/** Converts a staged text cell to the column's type; an impossible value raises a data error (245, 8114, …). */
function fromText(expression: string, type: ColumnType): string {
  switch (type.kind) {
    case 'text':
      return expression;
    case 'timestamp':
      return `CONVERT(datetime2(7), ${expression}, 127)`;
    case 'boolean':
      return `CAST(CASE ${expression} WHEN 'true' THEN 1 WHEN 'false' THEN 0 END AS bit)`;
    default:
      return `CAST(${expression} AS ${columnTypeSql(type)})`;
  }
}

export function createSchemaSql(schema: string): string {
  return `IF SCHEMA_ID(${nameLiteral(schema)}) IS NULL EXEC(N'CREATE SCHEMA ${quote(schema)}');`;
}

export function createTableSql(schema: string, table: TableDef): string {
  const columns = table.columns.map((c) => {
    const identity = c.name === table.identity ? ' IDENTITY(1,1)' : '';
    const notNull = table.primaryKey.includes(c.name) ? ' NOT NULL' : ' NULL';
    return `${quote(c.name)} ${columnTypeSql(c.type)}${identity}${notNull}`;
  });
  if (table.primaryKey.length) columns.push(`PRIMARY KEY (${table.primaryKey.map(quote).join(', ')})`);
  const name = qualified(schema, table.name);
  return `IF OBJECT_ID(${nameLiteral(name)}, N'U') IS NULL CREATE TABLE ${name} (${columns.join(', ')});`;
}

export function addColumnsSql(schema: string, table: string, columns: Column[]): string {
  const name = qualified(schema, table);
  return columns
    .map(
      (c) =>
        `IF COL_LENGTH(${nameLiteral(name)}, ${nameLiteral(c.name)}) IS NULL ALTER TABLE ${name} ADD ${quote(c.name)} ${columnTypeSql(c.type)} NULL;`,
    )
    .join('\n');
}

/** @table: the bracketed two-part name. */
export const readColumnsSql = `SELECT c.[name] AS column_name, ty.[name] AS type_name, c.[precision], c.[scale], c.[max_length]
FROM sys.columns AS c JOIN sys.types AS ty ON ty.[user_type_id] = c.[user_type_id]
WHERE c.[object_id] = OBJECT_ID(@table);`;

export function createStagingSql(columns: Column[]): string {
  const cells = columns.map((_, i) => `, [c${i}] nvarchar(max) NULL`).join('');
  return `CREATE TABLE ${STAGING_TABLE} ([Id] nvarchar(36) NOT NULL PRIMARY KEY, [vn] nvarchar(20) NULL, [mo] nvarchar(40) NULL${cells});`;
}

export const dropStagingSql = `DROP TABLE ${STAGING_TABLE};`;

/** "`a` is newer than `b`" on the scale both share: row versions, else times, else true. */
function newer(aVersion: string, bVersion: string, aTime: string, bTime: string, timeOp = '>'): string {
  const noVersions = `(${aVersion} IS NULL OR ${bVersion} IS NULL)`;
  return (
    `((${aVersion} IS NOT NULL AND ${bVersion} IS NOT NULL AND ${aVersion} > ${bVersion})` +
    ` OR (${noVersions} AND ${aTime} IS NOT NULL AND ${bTime} IS NOT NULL AND ${aTime} ${timeOp} ${bTime})` +
    ` OR (${noVersions} AND (${aTime} IS NULL OR ${bTime} IS NULL)))`
  );
}

/** "tombstone `tb` is at least as new as the version" on a shared scale; false without one. */
function tombstoneCovers(version: string, time: string): string {
  return (
    `((${version} IS NOT NULL AND tb.[VersionNumber] IS NOT NULL AND tb.[VersionNumber] >= ${version})` +
    ` OR ((${version} IS NULL OR tb.[VersionNumber] IS NULL) AND ${time} IS NOT NULL AND tb.[DeletedOn] IS NOT NULL AND tb.[DeletedOn] >= ${time}))`
  );
}

/** @entity. MERGEs the staged rows: newer rows update, new rows insert unless a tombstone covers them. */
export function mergeSql(schema: string, table: string, sides: SideTableNames, columns: Column[]): string {
  const source = [
    `CAST(r.[Id] AS uniqueidentifier) AS [Id]`,
    `CAST(r.[vn] AS bigint) AS [vn]`,
    `CONVERT(datetime2(7), r.[mo], 127) AS [mo]`,
    ...columns.map((c, i) => `${fromText(`r.[c${i}]`, c.type)} AS [c${i}]`),
  ];
  const sets = [
    ...columns.map((c, i) => `${quote(c.name)} = s.[c${i}]`),
    `[versionnumber] = s.[vn]`,
    `[modifiedon] = COALESCE(s.[mo], t.[modifiedon])`,
    `[SinkModifiedOn] = SYSUTCDATETIME()`,
  ];
  const insertColumns = [
    'Id',
    'versionnumber',
    'modifiedon',
    ...columns.map((c) => c.name),
    'SinkCreatedOn',
    'SinkModifiedOn',
  ];
  const insertValues = [
    's.[Id]',
    's.[vn]',
    's.[mo]',
    ...columns.map((_, i) => `s.[c${i}]`),
    'SYSUTCDATETIME()',
    'SYSUTCDATETIME()',
  ];
  return [
    `MERGE ${qualified(schema, table)} WITH (HOLDLOCK) AS t`,
    `USING (SELECT ${source.join(', ')} FROM ${STAGING_TABLE} AS r) AS s`,
    `ON t.[Id] = s.[Id]`,
    `WHEN MATCHED AND ${newer('s.[vn]', 't.[versionnumber]', 's.[mo]', 't.[modifiedon]')}`,
    `  AND NOT EXISTS (SELECT 1 FROM ${qualified(schema, sides.tombstone)} AS tb WHERE tb.[EntityName] = @entity AND tb.[RecordId] = s.[Id] AND ${tombstoneCovers('s.[vn]', 's.[mo]')})`,
    `  THEN UPDATE SET ${sets.join(', ')}`,
    `WHEN NOT MATCHED BY TARGET`,
    `  AND NOT EXISTS (SELECT 1 FROM ${qualified(schema, sides.tombstone)} AS tb WHERE tb.[EntityName] = @entity AND tb.[RecordId] = s.[Id] AND ${tombstoneCovers('s.[vn]', 's.[mo]')})`,
    `  THEN INSERT (${insertColumns.map(quote).join(', ')}) VALUES (${insertValues.join(', ')})`,
    `OUTPUT LOWER(CONVERT(nvarchar(36), inserted.[Id])) AS [id];`,
  ].join('\n');
}

/** @entity, @ids (JSON array). After the merge commits: undo rows a concurrent delete's tombstone covers. */
export function recheckSql(schema: string, table: string, sides: SideTableNames): string {
  return [
    `DELETE t OUTPUT LOWER(CONVERT(nvarchar(36), deleted.[Id])) AS [id]`,
    `FROM ${qualified(schema, table)} AS t JOIN ${qualified(schema, sides.tombstone)} AS tb ON tb.[EntityName] = @entity AND tb.[RecordId] = t.[Id]`,
    `WHERE t.[Id] IN (SELECT CAST([value] AS uniqueidentifier) FROM OPENJSON(@ids))`,
    `AND ${tombstoneCovers('t.[versionnumber]', 't.[modifiedon]')};`,
  ].join('\n');
}

const deleteRowsJson = `OPENJSON(@rows) WITH ([id] nvarchar(36), [vn] nvarchar(20), [dt] nvarchar(40), [logs] bit, [advanced] bit) AS j`;
const deleteSource = `SELECT CAST(j.[id] AS uniqueidentifier) AS [Id], CAST(j.[vn] AS bigint) AS [vn], CONVERT(datetime2(7), j.[dt], 127) AS [dt], j.[logs], j.[advanced] FROM ${deleteRowsJson}`;

/** @entity, @rows (JSON [{id, vn, dt}]). Keeps the newest tombstone per record. */
export function tombstoneSql(schema: string, sides: SideTableNames): string {
  return [
    `MERGE ${qualified(schema, sides.tombstone)} WITH (HOLDLOCK) AS tb`,
    `USING (${deleteSource}) AS s`,
    `ON tb.[EntityName] = @entity AND tb.[RecordId] = s.[Id]`,
    `WHEN MATCHED AND ${newer('s.[vn]', 'tb.[VersionNumber]', 's.[dt]', 'tb.[DeletedOn]')}`,
    `  THEN UPDATE SET [VersionNumber] = s.[vn], [DeletedOn] = s.[dt], [SinkModifiedOn] = SYSUTCDATETIME()`,
    `WHEN NOT MATCHED BY TARGET`,
    `  THEN INSERT ([EntityName], [RecordId], [VersionNumber], [DeletedOn], [SinkModifiedOn]) VALUES (@entity, s.[Id], s.[vn], s.[dt], SYSUTCDATETIME())`,
    `OUTPUT LOWER(CONVERT(nvarchar(36), inserted.[RecordId])) AS [id];`,
  ].join('\n');
}

/**
 * @entity, @rows (JSON [{id, vn, dt, logs, advanced}]). Deletes rows the delete is newer than (a delete
 * wins a tie on the time scale); with the DeleteLog on, logs each delete that applied.
 */
export function deleteSql(schema: string, table: string, sides: SideTableNames, writeDeleteLog: boolean): string {
  const lines = [
    `DECLARE @deleted TABLE ([Id] uniqueidentifier, [versionnumber] bigint);`,
    `DELETE t OUTPUT deleted.[Id], deleted.[versionnumber] INTO @deleted`,
    `FROM ${qualified(schema, table)} AS t JOIN (${deleteSource}) AS s ON t.[Id] = s.[Id]`,
    `WHERE ${newer('s.[vn]', 't.[versionnumber]', 's.[dt]', 't.[modifiedon]', '>=')};`,
  ];
  if (writeDeleteLog) {
    lines.push(
      `INSERT INTO ${qualified(schema, sides.deleteLog)} ([EntityName], [RecordId], [SinkDeleteTime], [VersionNumber])`,
      `SELECT @entity, s.[Id], SYSUTCDATETIME(), COALESCE(s.[vn], d.[versionnumber]) FROM (${deleteSource}) AS s LEFT JOIN @deleted AS d ON d.[Id] = s.[Id]`,
      `WHERE s.[logs] = 1 AND (d.[Id] IS NOT NULL OR s.[advanced] = 1);`,
    );
  }
  lines.push(`SELECT LOWER(CONVERT(nvarchar(36), [Id])) AS [id] FROM @deleted;`);
  return lines.join('\n');
}

/** @key. */
export function deleteByKeySql(schema: string, table: string, key: string): string {
  return `DELETE FROM ${qualified(schema, table)} WHERE ${quote(key)} = @key;`;
}

/** @rows (JSON array of arrays of text cells). */
export function insertRowsSql(schema: string, table: string, columns: Column[]): string {
  const shape = columns.map((_, i) => `[c${i}] nvarchar(max) '$[${i}]'`).join(', ');
  const values = columns.map((c, i) => fromText(`j.[c${i}]`, c.type)).join(', ');
  return `INSERT INTO ${qualified(schema, table)} (${columns.map((c) => quote(c.name)).join(', ')}) SELECT ${values} FROM OPENJSON(@rows) WITH (${shape}) AS j;`;
}
