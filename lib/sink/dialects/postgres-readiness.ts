/**
 * What the PostgreSQL sink relies on, read at activation: a writable database and the sign-in's rights to use
 * and create tables in the schema (or to create the schema). Each gap comes with the statement that closes it.
 */
import pg from 'pg';
import type { Readiness } from './readiness.js';

/** $1: the folded schema name. */
export const readinessSql = `SELECT current_user AS user_name, current_database() AS database_name,
  current_setting('transaction_read_only') AS read_only, pg_is_in_recovery() AS standby,
  has_database_privilege(current_database(), 'CREATE') AS create_schema,
  n.oid IS NOT NULL AS schema_exists,
  CASE WHEN n.oid IS NULL THEN NULL ELSE has_schema_privilege(n.oid, 'USAGE') END AS usage,
  CASE WHEN n.oid IS NULL THEN NULL ELSE has_schema_privilege(n.oid, 'CREATE') END AS create_table
FROM (SELECT 1) AS one LEFT JOIN pg_catalog.pg_namespace AS n ON n.nspname = $1`;

const quoted = (name: string) => `"${name.replace(/"/g, '""')}"`;

export function judgePostgresReadiness(row: Record<string, unknown>, schema: string): Readiness {
  const db = quoted(String(row.database_name));
  const user = quoted(String(row.user_name));
  const problems: Readiness['problems'] = [];
  if (row.standby === true) {
    problems.push({
      field: 'standby',
      message: `database ${db} is a read-only standby`,
      fix: 'Point the connection string at the primary.',
    });
  } else if (row.read_only === 'on') {
    problems.push({
      field: 'default_transaction_read_only',
      message: `database ${db} is read-only for ${user} (default_transaction_read_only = on)`,
      fix: `ALTER DATABASE ${db} SET default_transaction_read_only = off;`,
    });
  }
  if (row.schema_exists !== true) {
    if (row.create_schema !== true) {
      problems.push({
        field: 'schema',
        message: `schema ${quoted(schema)} does not exist and ${user} may not create it`,
        fix: `CREATE SCHEMA ${quoted(schema)} AUTHORIZATION ${user};`,
      });
    }
  } else {
    const missing = [row.usage === true ? '' : 'USAGE', row.create_table === true ? '' : 'CREATE'].filter(Boolean);
    if (missing.length) {
      problems.push({
        field: `schema ${schema}`,
        message: `${user} lacks ${missing.join(', ')} on schema ${quoted(schema)}`,
        fix: `GRANT ${missing.join(', ')} ON SCHEMA ${quoted(schema)} TO ${user};`,
      });
    }
  }
  return { problems, warnings: [] };
}

/** Connects, reads what the sink relies on, and judges it; throws the driver's error when it cannot connect. */
export async function checkPostgresReadiness(connectionString: string, schema: string): Promise<Readiness> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    const result = await client.query(readinessSql, [schema]);
    return judgePostgresReadiness(result.rows[0] ?? {}, schema);
  } finally {
    await client.end().catch(() => {});
  }
}
