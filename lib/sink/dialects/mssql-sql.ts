/**
 * Azure SQL / SQL Server statement text (T-SQL). Identifiers arrive validated and are bracket-quoted with
 * DES's spelling; values are always parameters. Upsert rows are bulk loaded as text cells into a `#temp`
 * staging table; other batches of rows travel as ONE JSON parameter (`@rows`, an array of arrays of text
 * cells) read with OPENJSON. Either way the cells are cast to each column's type in the statement, so one
 * MERGE writes a whole batch under the version guard. DDL runs under `sp_getapplock` with existence checks,
 * so two appliers creating the same table or column at once do not collide.
 */
import type { SideTableNames, TableDef } from '../dialect.js';
import type { Column, ColumnType } from '../table-model.js';

export const quote = (name: string): string => `[${name}]`;
export const qualified = (schema: string, table: string): string => `${quote(schema)}.${quote(table)}`;
/** A literal for an object name inside OBJECT_ID / COL_LENGTH (names are validated: no quotes inside). */
export const nameLiteral = (text: string): string => `N'${text}'`;

/** The error number our DDL raises when it cannot get its schema lock in time (classified transient). */
export const SCHEMA_LOCK_TIMEOUT_ERROR = 50001;

/**
 * Rows per MERGE, tombstone MERGE, DELETE and purge chunk. SQL Server tries to escalate to a table lock when
 * one statement holds about 5,000 locks on a table, which would serialise every writer of it; a row costs a
 * key lock in the clustered index plus one per nonclustered index, so 1,000 rows stay under the threshold
 * with up to four indexes added for reports.
 */
export const MAX_ROWS_PER_STATEMENT = 1_000;

/** `[schema].[table]` with both parts at SQL Server's 128-character maximum. */
export const TWO_PART_NAME_LENGTH = 2 * 128 + 5;

/**
 * OUTPUT goes INTO a table variable, never straight to the client: plain OUTPUT fails (error 334) on a
 * table with an enabled trigger, and DES users add triggers to export tables.
 */
const APPLIED_IDS = 'DECLARE @applied TABLE ([id] nvarchar(36) NOT NULL);';
const selectAppliedIds = 'SELECT [id] FROM @applied;';

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

/** Cells arrive as `YYYY-MM-DDTHH:mm:ss.sssZ` (UTC); style 127 reads that shape. */
const utcTime = (expression: string): string => `CONVERT(datetime2(7), ${expression}, 127)`;

/** Converts a text cell to the column's type; an impossible value raises a data error (245, 8114, 2628, …). */
function fromText(expression: string, type: ColumnType): string {
  switch (type.kind) {
    case 'text':
      // No CAST: it would truncate silently; assigning to nvarchar(n) raises 2628 for an over-long value.
      return expression;
    case 'timestamp':
      return utcTime(expression);
    case 'boolean':
      return `CAST(CASE ${expression} WHEN 'true' THEN 1 WHEN 'false' THEN 0 END AS bit)`;
    default:
      return `CAST(${expression} AS ${columnTypeSql(type)})`;
  }
}

/**
 * `body` in a transaction holding an exclusive application lock on `resource`; the lock goes with the
 * transaction. XACT_ABORT makes any error roll the whole batch back.
 */
export function underSchemaLock(resource: string, body: string[]): string {
  return [
    'SET XACT_ABORT ON;',
    'BEGIN TRANSACTION;',
    'DECLARE @lock int;',
    `EXEC @lock = sp_getapplock @Resource = ${nameLiteral(`sink-ddl:${resource}`)}, @LockMode = N'Exclusive', @LockOwner = N'Transaction', @LockTimeout = 30000;`,
    'IF @lock < 0',
    'BEGIN',
    '  ROLLBACK TRANSACTION;',
    `  THROW ${SCHEMA_LOCK_TIMEOUT_ERROR}, ${nameLiteral(`timed out waiting for the schema lock on ${resource}`)}, 1;`,
    'END',
    ...body,
    'COMMIT TRANSACTION;',
  ].join('\n');
}

export function createSchemaSql(schema: string): string {
  return underSchemaLock(quote(schema), [
    `IF SCHEMA_ID(${nameLiteral(schema)}) IS NULL EXEC(${nameLiteral(`CREATE SCHEMA ${quote(schema)}`)});`,
  ]);
}

export function createTableSql(schema: string, table: TableDef): string {
  const columns = table.columns.map((c) => {
    const identity = c.name === table.identity ? ' IDENTITY(1,1)' : '';
    const notNull = table.primaryKey.includes(c.name) ? ' NOT NULL' : ' NULL';
    return `  ${quote(c.name)} ${columnTypeSql(c.type)}${identity}${notNull}`;
  });
  if (table.primaryKey.length) columns.push(`  PRIMARY KEY (${table.primaryKey.map(quote).join(', ')})`);
  const name = qualified(schema, table.name);
  return underSchemaLock(name, [
    `IF OBJECT_ID(${nameLiteral(name)}, N'U') IS NULL`,
    `CREATE TABLE ${name} (`,
    columns.join(',\n'),
    ');',
  ]);
}

export function addColumnsSql(schema: string, table: string, columns: Column[]): string {
  const name = qualified(schema, table);
  return underSchemaLock(
    name,
    columns.map(
      (c) =>
        `IF COL_LENGTH(${nameLiteral(name)}, ${nameLiteral(c.name)}) IS NULL ALTER TABLE ${name} ADD ${quote(c.name)} ${columnTypeSql(c.type)} NULL;`,
    ),
  );
}

/** @table: the bracketed two-part name. */
export const readColumnsSql = `SELECT c.[name] AS column_name, ty.[name] AS type_name, c.[precision], c.[scale], c.[max_length]
FROM sys.columns AS c JOIN sys.types AS ty ON ty.[user_type_id] = c.[user_type_id]
WHERE c.[object_id] = OBJECT_ID(@table, N'U');`;

interface Scale {
  version: string;
  time: string;
}

/**
 * "`a` is newer than `b`" on the scale both share (docs/architecture.md §5): row versions when both have one, else times, else
 * true (nothing to compare: apply). `op` is `>` for writes and `>=` where a delete wins a tie.
 */
function newer(a: Scale, b: Scale, op = '>'): string {
  return (
    `CASE WHEN ${a.version} IS NOT NULL AND ${b.version} IS NOT NULL THEN CASE WHEN ${a.version} ${op} ${b.version} THEN 1 ELSE 0 END` +
    ` WHEN ${a.time} IS NOT NULL AND ${b.time} IS NOT NULL THEN CASE WHEN ${a.time} ${op} ${b.time} THEN 1 ELSE 0 END ELSE 1 END = 1`
  );
}

const tomb: Scale = { version: 'tb.[VersionNumber]', time: 'tb.[DeletedOn]' };

/** "Tombstone `tb` is at least as new as `v`" on a shared scale; false without a tombstone or a shared scale. */
function tombstoneCovers(v: Scale): string {
  return (
    `CASE WHEN ${v.version} IS NOT NULL AND ${tomb.version} IS NOT NULL THEN CASE WHEN ${tomb.version} >= ${v.version} THEN 1 ELSE 0 END` +
    ` WHEN ${v.time} IS NOT NULL AND ${tomb.time} IS NOT NULL THEN CASE WHEN ${tomb.time} >= ${v.time} THEN 1 ELSE 0 END ELSE 0 END`
  );
}

/** OPENJSON over `@rows` (array of arrays): `[id, vn, mo|dt, …cells]`, all text or null. */
function rowsJson(names: string[]): string {
  const shape = names.map(
    (n, i) =>
      `${quote(n)} nvarchar(${n === 'id' ? 36 : n === 'vn' ? 20 : n === 'mo' || n === 'dt' ? 40 : 'max'}) '$[${i}]'`,
  );
  return `OPENJSON(@rows) WITH (${shape.join(', ')}) AS j`;
}

const lowerId = (expression: string): string => `LOWER(CONVERT(nvarchar(36), ${expression}))`;

/** The session's staging table for upsert rows; created and dropped inside the upsert's transaction. */
export const STAGING_TABLE = '#sink_stage';

/** The staging table's columns for `width` attribute columns, as they are bulk loaded: `[id, vn, mo, c0 …]`. */
export function stagingColumns(width: number): Array<{ name: string; length: number | 'max' }> {
  return [
    { name: 'id', length: 36 },
    { name: 'vn', length: 20 },
    { name: 'mo', length: 40 },
    ...Array.from({ length: width }, (_, i) => ({ name: `c${i}`, length: 'max' as const })),
  ];
}

/**
 * A fresh staging table for upserts of `width` attribute columns: text cells, as OPENJSON would read them,
 * so every cast stays in the MERGE and a bad value fails there with the same error numbers. Its columns take
 * the database's collation, not tempdb's.
 */
export function createStagingSql(width: number): string {
  const columns = stagingColumns(width).map(
    (c) => `${quote(c.name)} nvarchar(${c.length}) COLLATE DATABASE_DEFAULT NULL`,
  );
  return [
    `IF OBJECT_ID(${nameLiteral(`tempdb..${STAGING_TABLE}`)}) IS NOT NULL DROP TABLE ${STAGING_TABLE};`,
    `CREATE TABLE ${STAGING_TABLE} (${columns.join(', ')});`,
  ].join('\n');
}

/**
 * @entity; the rows are in the staging table (`[id, vn, mo, c0, c1, …]`). MERGEs them: a newer row updates
 * (only the columns it carries), a new row inserts, and neither happens when the record's tombstone covers
 * it. OUTPUT lists the ids that applied; the staging table is dropped after.
 */
export function mergeSql(schema: string, table: string, sides: SideTableNames, columns: Column[]): string {
  const cells = columns.map((_, i) => `c${i}`);
  const typed = [
    `CAST(j.[id] AS uniqueidentifier) AS [Id]`,
    `CAST(j.[vn] AS bigint) AS [vn]`,
    `${utcTime('j.[mo]')} AS [mo]`,
    ...columns.map((c, i) => `${fromText(`j.[c${i}]`, c.type)} AS [c${i}]`),
  ];
  const incoming: Scale = { version: 'r.[vn]', time: 'r.[mo]' };
  const sets = [
    ...columns.map((c, i) => `${quote(c.name)} = s.[c${i}]`),
    // The stored version describes the stored row: a change without a row version leaves none behind.
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
    ...cells.map((c) => `s.[${c}]`),
    'SYSUTCDATETIME()',
    'SYSUTCDATETIME()',
  ];
  return [
    'SET NOCOUNT ON;',
    APPLIED_IDS,
    `MERGE ${qualified(schema, table)} WITH (HOLDLOCK) AS t`,
    'USING (',
    `  SELECT r.*, ${tombstoneCovers(incoming)} AS [covered]`,
    `  FROM (SELECT ${typed.join(', ')}`,
    `    FROM ${STAGING_TABLE} AS j) AS r`,
    `  LEFT JOIN ${qualified(schema, sides.tombstone)} AS tb ON tb.[EntityName] = @entity AND tb.[RecordId] = r.[Id]`,
    ') AS s',
    'ON t.[Id] = s.[Id]',
    `WHEN MATCHED AND s.[covered] = 0 AND ${newer({ version: 's.[vn]', time: 's.[mo]' }, { version: 't.[versionnumber]', time: 't.[modifiedon]' })}`,
    `  THEN UPDATE SET ${sets.join(', ')}`,
    'WHEN NOT MATCHED BY TARGET AND s.[covered] = 0',
    `  THEN INSERT (${insertColumns.map(quote).join(', ')}) VALUES (${insertValues.join(', ')})`,
    `OUTPUT ${lowerId('inserted.[Id]')} INTO @applied ([id]);`,
    `DROP TABLE ${STAGING_TABLE};`,
    selectAppliedIds,
  ].join('\n');
}

/** @entity, @ids (JSON array). After the merge commits: undo rows a concurrent delete's tombstone covers. */
export function recheckSql(schema: string, table: string, sides: SideTableNames): string {
  return [
    'SET NOCOUNT ON;',
    APPLIED_IDS,
    `DELETE t OUTPUT ${lowerId('deleted.[Id]')} INTO @applied ([id])`,
    `FROM ${qualified(schema, table)} AS t JOIN ${qualified(schema, sides.tombstone)} AS tb ON tb.[EntityName] = @entity AND tb.[RecordId] = t.[Id]`,
    'WHERE t.[Id] IN (SELECT CAST([value] AS uniqueidentifier) FROM OPENJSON(@ids))',
    `AND ${tombstoneCovers({ version: 't.[versionnumber]', time: 't.[modifiedon]' })} = 1;`,
    selectAppliedIds,
  ].join('\n');
}

const deleteSource = `SELECT CAST(j.[id] AS uniqueidentifier) AS [Id], CAST(j.[vn] AS bigint) AS [vn], ${utcTime('j.[dt]')} AS [dt] FROM ${rowsJson(['id', 'vn', 'dt'])}`;

/**
 * @entity, @rows (JSON `[[id, vn, dt]]`). Raises each record's tombstone when the delete is newer than it;
 * OUTPUT lists the ids whose tombstone advanced. Like a row, the tombstone keeps only the raising delete's
 * version: an older row version left beside a newer time would win the comparison wrongly.
 */
export function tombstoneSql(schema: string, sides: SideTableNames): string {
  return [
    'SET NOCOUNT ON;',
    APPLIED_IDS,
    `MERGE ${qualified(schema, sides.tombstone)} WITH (HOLDLOCK) AS tb`,
    `USING (${deleteSource}) AS s`,
    'ON tb.[EntityName] = @entity AND tb.[RecordId] = s.[Id]',
    `WHEN MATCHED AND ${newer({ version: 's.[vn]', time: 's.[dt]' }, tomb)}`,
    '  THEN UPDATE SET [VersionNumber] = s.[vn], [DeletedOn] = s.[dt], [SinkModifiedOn] = SYSUTCDATETIME()',
    'WHEN NOT MATCHED BY TARGET',
    '  THEN INSERT ([EntityName], [RecordId], [VersionNumber], [DeletedOn], [SinkModifiedOn]) VALUES (@entity, s.[Id], s.[vn], s.[dt], SYSUTCDATETIME())',
    `OUTPUT ${lowerId('inserted.[RecordId]')} INTO @applied ([id]);`,
    selectAppliedIds,
  ].join('\n');
}

/**
 * @entity, @rows (JSON `[[id, vn, dt, logs, advanced]]`, flags as 1/0). Removes each row the delete is not
 * older than (its row version is the deleted row's, so a tie deletes). A delete applied if it removed the
 * row, or if there was no row and its tombstone advanced; with the DeleteLog on, each applied delete that
 * logs gets a DeleteLog row in the same transaction. Returns the applied ids.
 */
export function deleteSql(schema: string, table: string, sides: SideTableNames, writeDeleteLog: boolean): string {
  const target = qualified(schema, table);
  const lines = [
    'SET NOCOUNT ON;',
    'SET XACT_ABORT ON;',
    'DECLARE @s TABLE ([Id] uniqueidentifier PRIMARY KEY, [vn] bigint NULL, [dt] datetime2(7) NULL, [logs] bit NOT NULL, [advanced] bit NOT NULL);',
    'INSERT INTO @s ([Id], [vn], [dt], [logs], [advanced])',
    `SELECT CAST(j.[id] AS uniqueidentifier), CAST(j.[vn] AS bigint), ${utcTime('j.[dt]')}, CAST(j.[logs] AS bit), CAST(j.[advanced] AS bit)`,
    `FROM ${rowsJson(['id', 'vn', 'dt', 'logs', 'advanced'])};`,
    'DECLARE @deleted TABLE ([Id] uniqueidentifier PRIMARY KEY, [versionnumber] bigint NULL);',
    'DECLARE @applied TABLE ([Id] uniqueidentifier PRIMARY KEY, [vn] bigint NULL, [logs] bit NOT NULL);',
    'BEGIN TRANSACTION;',
    'DELETE t OUTPUT deleted.[Id], deleted.[versionnumber] INTO @deleted',
    `FROM ${target} AS t JOIN @s AS s ON t.[Id] = s.[Id]`,
    `WHERE ${newer({ version: 's.[vn]', time: 's.[dt]' }, { version: 't.[versionnumber]', time: 't.[modifiedon]' }, '>=')};`,
    'INSERT INTO @applied ([Id], [vn], [logs])',
    'SELECT s.[Id], COALESCE(s.[vn], d.[versionnumber]), s.[logs] FROM @s AS s LEFT JOIN @deleted AS d ON d.[Id] = s.[Id]',
    `WHERE d.[Id] IS NOT NULL OR (s.[advanced] = 1 AND NOT EXISTS (SELECT 1 FROM ${target} AS t WHERE t.[Id] = s.[Id]));`,
  ];
  if (writeDeleteLog) {
    lines.push(
      `INSERT INTO ${qualified(schema, sides.deleteLog)} ([EntityName], [RecordId], [SinkDeleteTime], [VersionNumber])`,
      'SELECT @entity, a.[Id], SYSUTCDATETIME(), a.[vn] FROM @applied AS a WHERE a.[logs] = 1;',
    );
  }
  lines.push('COMMIT TRANSACTION;', `SELECT ${lowerId('[Id]')} AS [id] FROM @applied;`);
  return lines.join('\n');
}

/**
 * @resource. Serialises replacing one table's rows of one key (delete + insert) until the transaction ends:
 * two writers of the same entity's metadata would otherwise each delete nothing the other inserted, and both
 * insert. Raises SCHEMA_LOCK_TIMEOUT_ERROR (transient) when the lock does not come in time.
 */
export const replaceLockSql = [
  'DECLARE @lock int;',
  "EXEC @lock = sp_getapplock @Resource = @resource, @LockMode = N'Exclusive', @LockOwner = N'Transaction', @LockTimeout = 30000;",
  `IF @lock < 0 THROW ${SCHEMA_LOCK_TIMEOUT_ERROR}, N'timed out waiting for the metadata lock', 1;`,
].join('\n');

/** @key. */
export function deleteByKeySql(schema: string, table: string, key: string): string {
  return `DELETE FROM ${qualified(schema, table)} WHERE ${quote(key)} = @key;`;
}

/** @rows (JSON array of arrays of text cells). */
export function insertRowsSql(schema: string, table: string, columns: Column[]): string {
  const shape = columns.map((_, i) => `[c${i}] nvarchar(max) '$[${i}]'`).join(', ');
  const values = columns.map((c, i) => fromText(`j.[c${i}]`, c.type)).join(', ');
  return `INSERT INTO ${qualified(schema, table)} (${columns.map((c) => quote(c.name)).join(', ')})\nSELECT ${values}\nFROM OPENJSON(@rows) WITH (${shape}) AS j;`;
}

/**
 * @cutoff (datetime2). Tombstones older than retention by both the delete's time and our last write, in
 * chunks small enough that no chunk escalates to a table lock or fills the transaction log. Returns `[purged]`; 0 without the table.
 */
export function purgeTombstonesSql(schema: string, sides: SideTableNames): string {
  const name = qualified(schema, sides.tombstone);
  return [
    'SET NOCOUNT ON;',
    'DECLARE @purged int = 0, @chunk int = 1;',
    `IF OBJECT_ID(${nameLiteral(name)}, N'U') IS NOT NULL`,
    'WHILE @chunk > 0',
    'BEGIN',
    `  DELETE TOP (${MAX_ROWS_PER_STATEMENT}) FROM ${name} WHERE [DeletedOn] < @cutoff AND [SinkModifiedOn] < @cutoff;`,
    '  SET @chunk = @@ROWCOUNT;',
    '  SET @purged += @chunk;',
    'END',
    'SELECT @purged AS [purged];',
  ].join('\n');
}

/** Drops the table if it exists; returns `[dropped]` (1 or 0). */
export function dropTableSql(schema: string, table: string): string {
  const name = qualified(schema, table);
  return [
    'SET NOCOUNT ON;',
    `IF OBJECT_ID(${nameLiteral(name)}, N'U') IS NULL`,
    'BEGIN',
    '  SELECT 0 AS [dropped];',
    'END',
    'ELSE',
    'BEGIN',
    `  DROP TABLE ${name};`,
    '  SELECT 1 AS [dropped];',
    'END',
  ].join('\n');
}

/** @values (JSON array of text). Nothing when the table does not exist. */
export function deleteWhereInSql(schema: string, table: string, key: string): string {
  const name = qualified(schema, table);
  return `IF OBJECT_ID(${nameLiteral(name)}, N'U') IS NOT NULL DELETE FROM ${name} WHERE ${quote(key)} IN (SELECT [value] FROM OPENJSON(@values));`;
}

/** Returns `[empty]`: 1 when the table exists and holds no row. */
export function isEmptySql(schema: string, table: string): string {
  const name = qualified(schema, table);
  return [
    `IF OBJECT_ID(${nameLiteral(name)}, N'U') IS NULL`,
    'BEGIN',
    '  SELECT 0 AS [empty];',
    'END',
    'ELSE',
    'BEGIN',
    `  SELECT CASE WHEN EXISTS (SELECT 1 FROM ${name}) THEN 0 ELSE 1 END AS [empty];`,
    'END',
  ].join('\n');
}
