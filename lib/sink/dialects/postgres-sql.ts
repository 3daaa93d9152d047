/**
 * PostgreSQL statement text. Identifiers arrive validated (logical-name pattern) and are folded to lower
 * case, then double-quoted; every value is a parameter. Rows travel as parallel arrays through `unnest`
 * (cells as text, cast to the column's type in the statement), so one statement writes a whole batch.
 */
import type { SideTableNames, TableDef } from '../dialect.js';
import type { Column, ColumnKind, ColumnType } from '../table-model.js';

export const fold = (name: string): string => name.toLowerCase();
export const quote = (name: string): string => `"${fold(name)}"`;
const qualified = (schema: string, table: string): string => `${quote(schema)}.${quote(table)}`;

export function columnTypeSql(type: ColumnType): string {
  switch (type.kind) {
    case 'uuid':
      return 'uuid';
    case 'text':
      return type.maxLength ? `varchar(${type.maxLength})` : 'text';
    case 'integer':
      return 'integer';
    case 'bigint':
      return 'bigint';
    case 'decimal':
      return `numeric(${type.precision ?? 38},${type.scale ?? 0})`;
    case 'double':
      return 'double precision';
    case 'boolean':
      return 'boolean';
    case 'timestamp':
      return 'timestamptz';
  }
}

/** The cast from a text cell; varchar(n) is reached by assignment so an over-long value fails (22001). */
const CAST: Record<ColumnKind, string> = {
  uuid: '::uuid',
  text: '',
  integer: '::integer',
  bigint: '::bigint',
  decimal: '::numeric',
  double: '::double precision',
  boolean: '::boolean',
  timestamp: '::timestamptz',
};

export function createSchemaSql(schema: string): string {
  return `CREATE SCHEMA IF NOT EXISTS ${quote(schema)}`;
}

export function createTableSql(schema: string, table: TableDef): string {
  const columns = table.columns.map((c) => {
    const identity = c.name === table.identity ? ' GENERATED ALWAYS AS IDENTITY' : '';
    return `${quote(c.name)} ${columnTypeSql(c.type)}${identity}`;
  });
  if (table.primaryKey.length) columns.push(`PRIMARY KEY (${table.primaryKey.map(quote).join(', ')})`);
  return `CREATE TABLE IF NOT EXISTS ${qualified(schema, table.name)} (${columns.join(', ')})`;
}

export function addColumnsSql(schema: string, table: string, columns: Column[]): string {
  const adds = columns.map((c) => `ADD COLUMN IF NOT EXISTS ${quote(c.name)} ${columnTypeSql(c.type)}`);
  return `ALTER TABLE ${qualified(schema, table)} ${adds.join(', ')}`;
}

/** $1 schema, $2 table (folded). */
export const readColumnsSql = `SELECT column_name, data_type, numeric_precision, numeric_scale, character_maximum_length
FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`;

/** $1 schema, $2 table, $3 column (folded): one column's type, read again under the table lock. */
export const readColumnSql = `${readColumnsSql} AND column_name = $3`;

/**
 * The lock a widening holds from its check to its ALTER (the one ALTER COLUMN TYPE takes anyway), so two
 * appliers widening the same column run one after the other and the second sees the first's type.
 */
export function lockTableSql(schema: string, table: string): string {
  return `LOCK TABLE ${qualified(schema, table)} IN ACCESS EXCLUSIVE MODE`;
}

/** Waits this long for the widening's table lock, then fails transient (55P03) and the batch retries. */
export const WIDEN_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '30s'";

/** ALTER COLUMN TYPE keeps the column's NULL-ability; every widening here casts implicitly. */
export function alterColumnTypeSql(schema: string, table: string, column: string, to: ColumnType): string {
  return `ALTER TABLE ${qualified(schema, table)} ALTER COLUMN ${quote(column)} TYPE ${columnTypeSql(to)}`;
}

/**
 * "`a` is newer than `b`" on the scale both share (docs/architecture.md §5): row versions when both have one, else times, else
 * true (nothing to compare: apply). `op` is `>` for writes and `>=` where a delete wins a tie.
 */
function newer(a: { version: string; time: string }, b: { version: string; time: string }, op = '>'): string {
  return (
    `CASE WHEN ${a.version} IS NOT NULL AND ${b.version} IS NOT NULL THEN ${a.version} ${op} ${b.version}` +
    ` WHEN ${a.time} IS NOT NULL AND ${b.time} IS NOT NULL THEN ${a.time} ${op} ${b.time} ELSE true END`
  );
}

const tomb = { version: 'tb."versionnumber"', time: 'tb."deletedon"' };

/** Whether tombstone `tb` is at least as new as the version (on a shared scale); false without one. */
function tombstoneCovers(v: { version: string; time: string }): string {
  return (
    `CASE WHEN ${v.version} IS NOT NULL AND ${tomb.version} IS NOT NULL THEN ${tomb.version} >= ${v.version}` +
    ` WHEN ${v.time} IS NOT NULL AND ${tomb.time} IS NOT NULL THEN ${tomb.time} >= ${v.time} ELSE false END`
  );
}

/**
 * Params: $1 entity, $2 ids (uuid[]), $3 row versions (bigint[]), $4 modified-on times, $5… one text
 * array per column. Inserts or updates each row only if it is newer than the stored row and not covered
 * by a tombstone; RETURNING lists the ids that applied. A partial update sets only the columns it carries.
 * Ids and row versions are validated before they get here, so they arrive typed and are parsed once;
 * every other cell stays text and is cast in the select list, so a cell that cannot be cast still fails
 * only a row that no tombstone covers.
 */
export function upsertSql(schema: string, table: string, sides: SideTableNames, columns: Column[]): string {
  const arrays = [
    '$2::uuid[]',
    '$3::bigint[]',
    ...['$4', ...columns.map((_, i) => `$${i + 5}`)].map((p) => `${p}::text[]`),
  ].join(', ');
  const aliases = columns.map((_, i) => `, c${i}`).join('');
  return upsertFromSql(schema, table, sides, columns, `unnest(${arrays}) AS s(id, vn, mo${aliases})`);
}

/**
 * A session's staging table for upserts of `width` attribute columns: the rows of one statement arrive there
 * by COPY, as the arrays of upsertSql would carry them (typed id and row version, text cells), and go at commit.
 */
export function stagingTableSql(width: number): string {
  const cells = Array.from({ length: width }, (_, i) => `, c${i} text`).join('');
  return `CREATE TEMP TABLE IF NOT EXISTS ${stagingTable(width)} (id uuid, vn bigint, mo text${cells}) ON COMMIT DELETE ROWS`;
}

export function stagingTable(width: number): string {
  return `"sink_stage_${width}"`;
}

/** The COPY that fills the staging table of `width` columns (text format, tab-separated, `\N` for NULL). */
export function copyToStagingSql(width: number): string {
  return `COPY ${stagingTable(width)} FROM STDIN`;
}

/** Params: $1 entity. upsertSql's statement, reading the rows COPY put in the staging table. */
export function stagedUpsertSql(schema: string, table: string, sides: SideTableNames, columns: Column[]): string {
  return upsertFromSql(schema, table, sides, columns, `${stagingTable(columns.length)} AS s`);
}

/** The version-guarded upsert reading `source`: rows `s(id uuid, vn bigint, mo text, c0 … text)`. */
function upsertFromSql(
  schema: string,
  table: string,
  sides: SideTableNames,
  columns: Column[],
  source: string,
): string {
  const target = qualified(schema, table);
  const names = ['id', 'versionnumber', 'modifiedon', ...columns.map((c) => c.name), 'sinkcreatedon', 'sinkmodifiedon'];
  const values = [
    's.id',
    's.vn',
    's.mo::timestamptz',
    ...columns.map((c, i) => `s.c${i}${CAST[c.type.kind]}`),
    'now()',
    'now()',
  ];
  const sets = [
    ...columns.map((c) => `${quote(c.name)} = EXCLUDED.${quote(c.name)}`),
    // The stored version describes the stored row: a change without a row version leaves none behind.
    `"versionnumber" = EXCLUDED."versionnumber"`,
    `"modifiedon" = COALESCE(EXCLUDED."modifiedon", t."modifiedon")`,
    `"sinkmodifiedon" = EXCLUDED."sinkmodifiedon"`,
  ];
  const incoming = { version: 's.vn', time: 's.mo::timestamptz' };
  return [
    `INSERT INTO ${target} AS t (${names.map(quote).join(', ')})`,
    `SELECT ${values.join(', ')}`,
    `FROM ${source}`,
    `WHERE NOT EXISTS (SELECT 1 FROM ${qualified(schema, sides.tombstone)} AS tb WHERE tb."entityname" = $1 AND tb."recordid" = s.id AND ${tombstoneCovers(incoming)})`,
    `ON CONFLICT ("id") DO UPDATE SET ${sets.join(', ')}`,
    `WHERE ${newer({ version: 'EXCLUDED."versionnumber"', time: 'EXCLUDED."modifiedon"' }, { version: 't."versionnumber"', time: 't."modifiedon"' })}`,
    // A uuid reaches node-postgres as its text: no cast needed.
    `RETURNING t."id" AS id`,
  ].join('\n');
}

/**
 * Params: $1 entity, $2 ids (uuid[]). Run after an upsert commits: removes rows a tombstone committed
 * meanwhile by a concurrent delete covers, so a delete racing an older upsert still wins.
 */
export function upsertRecheckSql(schema: string, table: string, sides: SideTableNames): string {
  return [
    `DELETE FROM ${qualified(schema, table)} AS t USING ${qualified(schema, sides.tombstone)} AS tb`,
    `WHERE t."id" = ANY($2::uuid[]) AND tb."entityname" = $1 AND tb."recordid" = t."id"`,
    `AND ${tombstoneCovers({ version: 't."versionnumber"', time: 't."modifiedon"' })}`,
    `RETURNING t."id"::text AS id`,
  ].join('\n');
}

/**
 * Params: $1 entity, $2 ids, $3 row versions, $4 delete times. Raises each record's tombstone when the
 * delete is newer than it; returns the ids whose tombstone advanced. Like a row, the tombstone keeps only the
 * raising delete's version: an older row version left beside a newer time would win the comparison wrongly.
 */
export function tombstoneSql(schema: string, sides: SideTableNames): string {
  return [
    `INSERT INTO ${qualified(schema, sides.tombstone)} AS tb ("entityname", "recordid", "versionnumber", "deletedon", "sinkmodifiedon")`,
    `SELECT $1::text, s.id::uuid, s.vn::bigint, s.dt::timestamptz, now() FROM unnest($2::text[], $3::text[], $4::text[]) AS s(id, vn, dt)`,
    `ON CONFLICT ("entityname", "recordid") DO UPDATE SET "versionnumber" = EXCLUDED."versionnumber", "deletedon" = EXCLUDED."deletedon", "sinkmodifiedon" = EXCLUDED."sinkmodifiedon"`,
    `WHERE ${newer({ version: 'EXCLUDED."versionnumber"', time: 'EXCLUDED."deletedon"' }, tomb)}`,
    `RETURNING tb."recordid"::text AS id`,
  ].join('\n');
}

/**
 * Params: $1 ids, $2 row versions, $3 delete times, $4 ids whose tombstone advanced; with the DeleteLog on
 * also $5 entity, $6 ids that log. Removes each row the delete is not older than (its row version is the
 * deleted row's, so a tie deletes). A delete applied if it removed the row, or if there was no row and its
 * tombstone advanced; each applied delete that logs gets a DeleteLog row. Returns the applied ids.
 */
export function deleteSql(schema: string, table: string, sides: SideTableNames, writeDeleteLog: boolean): string {
  const target = qualified(schema, table);
  const lines = [
    `WITH s AS (SELECT s.id::uuid AS id, s.vn::bigint AS vn, s.dt::timestamptz AS dt FROM unnest($1::text[], $2::text[], $3::text[]) AS s(id, vn, dt)),`,
    `del AS (DELETE FROM ${target} AS t USING s WHERE t."id" = s.id`,
    `AND ${newer({ version: 's.vn', time: 's.dt' }, { version: 't."versionnumber"', time: 't."modifiedon"' }, '>=')}`,
    `RETURNING t."id", t."versionnumber"),`,
    `applied AS (SELECT s.id, COALESCE(s.vn, del."versionnumber") AS vn FROM s LEFT JOIN del ON del."id" = s.id`,
    `WHERE del."id" IS NOT NULL OR (s.id = ANY($4::uuid[]) AND NOT EXISTS (SELECT 1 FROM ${target} AS t WHERE t."id" = s.id)))`,
  ];
  if (writeDeleteLog) {
    lines[lines.length - 1] += ',';
    lines.push(
      `log AS (INSERT INTO ${qualified(schema, sides.deleteLog)} ("entityname", "recordid", "sinkdeletetime", "versionnumber")`,
      `SELECT $5::text, a.id, now(), a.vn FROM applied AS a WHERE a.id = ANY($6::uuid[]))`,
    );
  }
  lines.push(`SELECT id::text AS id FROM applied`);
  return lines.join('\n');
}

/** Params: $1 cutoff. Tombstones older than retention by both the delete's time and our last write. */
export function purgeTombstonesSql(schema: string, sides: SideTableNames): string {
  return `DELETE FROM ${qualified(schema, sides.tombstone)} WHERE "deletedon" < $1::timestamptz AND "sinkmodifiedon" < $1::timestamptz`;
}

export function dropTableSql(schema: string, table: string): string {
  return `DROP TABLE IF EXISTS ${qualified(schema, table)}`;
}

/** Params: $1 key values (text[]). */
export function deleteWhereInSql(schema: string, table: string, key: string): string {
  return `DELETE FROM ${qualified(schema, table)} WHERE ${quote(key)} = ANY($1::text[])`;
}

export function anyRowSql(schema: string, table: string): string {
  return `SELECT EXISTS (SELECT 1 FROM ${qualified(schema, table)}) AS any`;
}

/** Params: $1 key value. */
/**
 * $1: the lock's name. Serialises replacing one table's rows of one key (delete + insert) until commit: two
 * writers of the same entity's metadata would otherwise each delete nothing the other inserted, and both insert.
 */
export const replaceLockSql = 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0));';

export function deleteByKeySql(schema: string, table: string, key: string): string {
  return `DELETE FROM ${qualified(schema, table)} WHERE ${quote(key)} = $1`;
}

/** Params: $1… one text array per column. */
export function insertRowsSql(schema: string, table: string, columns: Column[]): string {
  const arrays = columns.map((_, i) => `$${i + 1}::text[]`).join(', ');
  const values = columns.map((c, i) => `s.c${i}${CAST[c.type.kind]}`).join(', ');
  const aliases = columns.map((_, i) => `c${i}`).join(', ');
  return `INSERT INTO ${qualified(schema, table)} (${columns.map((c) => quote(c.name)).join(', ')}) SELECT ${values} FROM unnest(${arrays}) AS s(${aliases})`;
}
