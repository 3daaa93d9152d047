/**
 * The control store on PostgreSQL (`pg` pool): statements from `sql/postgres.ts`, rows mapped by the shared
 * `sql-control-store.ts`. Migrations run in one transaction behind an advisory lock, so instances that start
 * together apply each step exactly once.
 */

import { type Logger, silentLogger } from '../log.js';
import { createPool, endPool } from '../postgres-pool.js';
import { controlSchemaName } from './control-rows.js';
import type { ControlStore } from './control-store.js';
import { pendingMigrations } from './migrations/migration.js';
import { postgresMigrations } from './migrations/postgres.js';
import { type PgStatement, postgresControlSql } from './sql/postgres.js';
import { sqlControlStore } from './sql-control-store.js';

export interface PostgresControlStoreOptions {
  /** Schema of the control tables; default `dvexport`. */
  schema?: string;
  logger?: Logger;
  /** Pool size; default 10. */
  maxConnections?: number;
  /** Clock for created/modified/updated times (tests). */
  now?: () => Date;
}

/** SQLSTATE 23503: the profile was deleted between our read and the write. */
const FOREIGN_KEY_VIOLATION = '23503';

export async function openPostgresControlStore(
  connectionString: string,
  options: PostgresControlStoreOptions = {},
): Promise<ControlStore> {
  const schema = controlSchemaName(options.schema);
  const log = (options.logger ?? silentLogger).child({ component: 'control-store', dialect: 'postgres', schema });
  const now = options.now ?? (() => new Date());
  const sql = postgresControlSql(schema);
  // An idle client losing its server must not crash the process; the next query reconnects.
  const pool = createPool({ connectionString, max: options.maxConnections ?? 10 }, (err) =>
    log.warn('control store connection lost', { error: err }),
  );
  let closed = false;

  return sqlControlStore<PgStatement>({
    sql,
    log,
    now,
    rows: async (statement) => (await pool.query(statement)).rows as Array<Record<string, unknown>>,
    written: async (statement) => (await pool.query(statement).catch(gone))?.rowCount ?? 0,
    deleted: async (statement) => (await pool.query(statement)).rowCount ?? 0,
    async migrate() {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(sql.migrationLock());
        await client.query(sql.createHistory());
        const applied = (await client.query(sql.appliedVersions())).rows.map((r) => Number(r.version));
        for (const step of pendingMigrations(postgresMigrations(schema), applied)) {
          await client.query(step.sql);
          await client.query(sql.recordMigration(step.version, step.name));
          log.info('control store migration applied', { version: step.version, name: step.name });
        }
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await endPool(pool);
    },
  });
}

/** A write that lost a race with the profile's deletion counts as "no row written". */
function gone(err: unknown): undefined {
  if ((err as { code?: unknown })?.code === FOREIGN_KEY_VIOLATION) return undefined;
  throw err;
}
