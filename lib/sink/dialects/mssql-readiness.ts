/**
 * What the Azure SQL sink relies on, read in one batch at activation: compatibility level ≥ 130 (OPENJSON), a
 * writable database, the sign-in's rights in the schema (DES's list: create and alter tables, select, insert,
 * update, delete), and READ_COMMITTED_SNAPSHOT, which DES recommended. Each gap comes with the statement an
 * administrator runs to close it.
 */
import mssql from 'mssql';
import { type MssqlPolicy, mssqlConfig } from '../../mssql-config.js';
import type { Readiness } from './readiness.js';

/** @schema. HAS_PERMS_BY_NAME answers the sign-in's effective rights (roles included); NULL for no schema. */
export const readinessSql = `SELECT DB_NAME() AS [database_name], USER_NAME() AS [user_name],
  d.[compatibility_level], d.[is_read_committed_snapshot_on] AS [rcsi],
  CAST(DATABASEPROPERTYEX(DB_NAME(), 'Updateability') AS nvarchar(32)) AS [updateability],
  SCHEMA_ID(@schema) AS [schema_id],
  HAS_PERMS_BY_NAME(DB_NAME(), N'DATABASE', N'CREATE TABLE') AS [create_table],
  HAS_PERMS_BY_NAME(DB_NAME(), N'DATABASE', N'CREATE SCHEMA') AS [create_schema],
  HAS_PERMS_BY_NAME(@schema, N'SCHEMA', N'ALTER') AS [alter],
  HAS_PERMS_BY_NAME(@schema, N'SCHEMA', N'SELECT') AS [select],
  HAS_PERMS_BY_NAME(@schema, N'SCHEMA', N'INSERT') AS [insert],
  HAS_PERMS_BY_NAME(@schema, N'SCHEMA', N'UPDATE') AS [update],
  HAS_PERMS_BY_NAME(@schema, N'SCHEMA', N'DELETE') AS [delete]
FROM sys.databases AS d
WHERE d.[database_id] = DB_ID();`;

const MIN_COMPATIBILITY_LEVEL = 130;
const SCHEMA_RIGHTS = ['alter', 'select', 'insert', 'update', 'delete'] as const;

const bracket = (name: string) => `[${name.replace(/]/g, ']]')}]`;
const yes = (value: unknown) => Number(value) === 1;

/** Judges the row `readinessSql` answered. */
export function judgeMssqlReadiness(row: Record<string, unknown>, schema: string): Readiness {
  const db = bracket(String(row.database_name));
  const user = bracket(String(row.user_name));
  const problems: Readiness['problems'] = [];
  const level = Number(row.compatibility_level);
  if (level < MIN_COMPATIBILITY_LEVEL) {
    problems.push({
      field: 'compatibility_level',
      message: `database ${db} is at compatibility level ${level}; the sink's statements need ${MIN_COMPATIBILITY_LEVEL} or higher (OPENJSON)`,
      fix: `ALTER DATABASE ${db} SET COMPATIBILITY_LEVEL = ${MIN_COMPATIBILITY_LEVEL};`,
    });
  }
  if (String(row.updateability).toUpperCase() === 'READ_ONLY') {
    problems.push({
      field: 'updateability',
      message: `database ${db} is read-only (a geo-secondary, or READ_ONLY set)`,
      fix: `ALTER DATABASE ${db} SET READ_WRITE; (or point the connection string at the primary)`,
    });
  }
  if (!yes(row.create_table)) {
    problems.push({
      field: 'CREATE TABLE',
      message: `${user} may not create tables in ${db}`,
      fix: `GRANT CREATE TABLE TO ${user};`,
    });
  }
  if (row.schema_id === null || row.schema_id === undefined) {
    if (!yes(row.create_schema)) {
      problems.push({
        field: 'schema',
        message: `schema ${bracket(schema)} does not exist and ${user} may not create it`,
        fix: `CREATE SCHEMA ${bracket(schema)} AUTHORIZATION ${user};`,
      });
    }
  } else {
    const missing = SCHEMA_RIGHTS.filter((right) => !yes(row[right])).map((r) => r.toUpperCase());
    if (missing.length) {
      problems.push({
        field: `schema ${schema}`,
        message: `${user} lacks ${missing.join(', ')} on schema ${bracket(schema)}`,
        fix: `GRANT ${missing.join(', ')} ON SCHEMA::${bracket(schema)} TO ${user};`,
      });
    }
  }
  const warnings = yes(row.rcsi)
    ? []
    : [
        `READ_COMMITTED_SNAPSHOT is off in ${db}: readers of the export tables and the sink's writes block each other (DES recommended it on). To turn it on: ALTER DATABASE ${db} SET READ_COMMITTED_SNAPSHOT ON;`,
      ];
  return { problems, warnings };
}

/** Connects, reads what the sink relies on, and judges it; throws the driver's error when it cannot connect. */
export async function checkMssqlReadiness(
  connectionString: string,
  schema: string,
  policy: MssqlPolicy = {},
): Promise<Readiness> {
  const pool = new mssql.ConnectionPool(mssqlConfig(connectionString, policy));
  pool.on('error', () => {});
  try {
    await pool.connect();
    const result = await pool.request().input('schema', mssql.NVarChar(128), schema).query(readinessSql);
    return judgeMssqlReadiness(result.recordset[0] ?? {}, schema);
  } finally {
    await pool.close().catch(() => {});
  }
}
