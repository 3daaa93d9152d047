/**
 * PostgreSQL statement text. Identifiers arrive validated (logical-name pattern) and are folded to lower
 * case, then double-quoted; every value is a parameter. Rows travel as parallel text arrays through
 * `unnest` and are cast to the column's type in the statement, so one statement writes a whole batch.
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

/** An "is `a` newer than `b`" test on the scale both share: row versions, else times, else true. */
function newer(aVersion: string, bVersion: string, aTime: string, bTime: string, timeOp = '>'): string {
  return (
    `CASE WHEN ${aVersion} IS NOT NULL AND ${bVersion} IS NOT NULL THEN ${aVersion} > ${bVersion}` +
    ` WHEN ${aTime} IS NOT NULL AND ${bTime} IS NOT NULL THEN ${aTime} ${timeOp} ${bTime} ELSE true END`
  );
}

/** Whether tombstone `tb` is at least as new as the version (on a shared scale); false without one. */
function tombstoneCovers(version: string, time: string): string {
  return (
    `CASE WHEN ${version} IS NOT NULL AND tb."versionnumber" IS NOT NULL THEN tb."versionnumber" >= ${version}` +
    ` WHEN ${time} IS NOT NULL AND tb."deletedon" IS NOT NULL THEN tb."deletedon" >= ${time} ELSE false END`
  );
}

/**
 * Params: $1 entity, $2 ids, $3 row versions, $4 modified-on times, $5… one text array per column.
 * Inserts or updates each row only if it is newer than the stored row and not covered by a tombstone;
 * RETURNING lists the ids that applied.
 */
export function upsertSql(schema: string, table: string, sides: SideTableNames, columns: Column[]): string {
  const target = qualified(schema, table);
  const aliases = columns.map((_, i) => `c${i}`);
  const arrays = ['$2', '$3', '$4', ...columns.map((_, i) => `$${i + 5}`)].map((p) => `${p}::text[]`).join(', ');
  const names = ['id', 'versionnumber', 'modifiedon', ...columns.map((c) => c.name), 'sinkcreatedon', 'sinkmodifiedon'];
  const values = [
    's.id::uuid',
    's.vn::bigint',
    's.mo::timestamptz',
    ...columns.map((c, i) => `s.${aliases[i]}${CAST[c.type.kind]}`),
    'now()',
    'now()',
  ];
  const sets = [
    ...columns.map((c) => `${quote(c.name)} = EXCLUDED.${quote(c.name)}`),
    `"versionnumber" = EXCLUDED."versionnumber"`,
    `"modifiedon" = COALESCE(EXCLUDED."modifiedon", t."modifiedon")`,
    `"sinkmodifiedon" = EXCLUDED."sinkmodifiedon"`,
  ];
  return [
    `INSERT INTO ${target} AS t (${names.map(quote).join(', ')})`,
    `SELECT ${values.join(', ')}`,
    `FROM unnest(${arrays}) AS s(id, vn, mo${aliases.map((a) => `, ${a}`).join('')})`,
    `WHERE NOT EXISTS (SELECT 1 FROM ${qualified(schema, sides.tombstone)} tb WHERE tb."entityname" = $1 AND tb."recordid" = s.id::uuid AND ${tombstoneCovers('s.vn::bigint', 's.mo::timestamptz')})`,
    `ON CONFLICT ("id") DO UPDATE SET ${sets.join(', ')}`,
    `WHERE ${newer('EXCLUDED."versionnumber"', 't."versionnumber"', 'EXCLUDED."modifiedon"', 't."modifiedon"')}`,
    `RETURNING t."id"::text AS id`,
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
    `AND ${tombstoneCovers('t."versionnumber"', 't."modifiedon"')}`,
    `RETURNING t."id"::text AS id`,
  ].join('\n');
}

/** Params: $1 entity, $2 ids, $3 row versions, $4 delete times. Keeps the newest tombstone per record. */
export function tombstoneSql(schema: string, sides: SideTableNames): string {
  return [
    `INSERT INTO ${qualified(schema, sides.tombstone)} AS tb ("entityname", "recordid", "versionnumber", "deletedon", "sinkmodifiedon")`,
    `SELECT $1::text, s.id::uuid, s.vn::bigint, s.dt::timestamptz, now() FROM unnest($2::text[], $3::text[], $4::text[]) AS s(id, vn, dt)`,
    `ON CONFLICT ("entityname", "recordid") DO UPDATE SET "versionnumber" = EXCLUDED."versionnumber", "deletedon" = EXCLUDED."deletedon", "sinkmodifiedon" = EXCLUDED."sinkmodifiedon"`,
    `WHERE ${newer('EXCLUDED."versionnumber"', 'tb."versionnumber"', 'EXCLUDED."deletedon"', 'tb."deletedon"')}`,
    `RETURNING tb."recordid"::text AS id`,
  ].join('\n');
}

/**
 * Params: $1 ids, $2 row versions, $3 delete times; with the DeleteLog on also $4 entity, $5 ids whose
 * tombstone advanced, $6 ids that log. Deletes rows the delete is newer than (a delete wins a tie on the
 * time scale) and logs every delete that applied. Returns the ids of deleted rows.
 */
export function deleteSql(schema: string, table: string, sides: SideTableNames, writeDeleteLog: boolean): string {
  const del = [
    `WITH s AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS s(id, vn, dt)),`,
    `del AS (DELETE FROM ${qualified(schema, table)} AS t USING s WHERE t."id" = s.id::uuid`,
    `AND ${newer('s.vn::bigint', 't."versionnumber"', 's.dt::timestamptz', 't."modifiedon"', '>=')}`,
    `RETURNING t."id", t."versionnumber")`,
  ];
  const log = writeDeleteLog
    ? [
        `, log AS (INSERT INTO ${qualified(schema, sides.deleteLog)} ("entityname", "recordid", "sinkdeletetime", "versionnumber")`,
        `SELECT $4::text, s.id::uuid, now(), COALESCE(s.vn::bigint, del."versionnumber") FROM s LEFT JOIN del ON del."id" = s.id::uuid`,
        `WHERE s.id = ANY($6::text[]) AND (del."id" IS NOT NULL OR s.id = ANY($5::text[])))`,
      ]
    : [];
  return [...del, ...log, `SELECT "id"::text AS id FROM del`].join('\n');
}

/** Params: $1 key value. */
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
