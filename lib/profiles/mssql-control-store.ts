/**
 * The control store on Azure SQL / SQL Server: statements from `sql/mssql.ts`, run through a
 * {@link MssqlControlConnection}, rows mapped by the shared `sql-control-store.ts`. Migrations run in one
 * transaction that first takes an application lock (sp_getapplock), so instances starting together apply
 * each step once.
 */
import { AppError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import { controlSchemaName } from './control-rows.js';
import type { ControlStore } from './control-store.js';
import { pendingMigrations } from './migrations/migration.js';
import { mssqlMigrations } from './migrations/mssql.js';
import { connectMssqlControl, type MssqlControlConnection } from './mssql-connection.js';
import { MIGRATION_LOCK_TIMEOUT_MS, type MssqlStatement, mssqlControlSql } from './sql/mssql.js';
import { sqlControlStore } from './sql-control-store.js';

export interface MssqlControlStoreOptions {
  /** Schema of the control tables; default `dvexport`. */
  schema?: string;
  logger?: Logger;
  /** Clock for created/modified/updated times (tests). */
  now?: () => Date;
  /** Accept `TrustServerCertificate=true` (the AllowTrustServerCertificate setting). */
  allowTrustServerCertificate?: boolean;
}

/** SQL Server error 547: a constraint conflict, here the profile deleted between our read and the write. */
const CONSTRAINT_CONFLICT = 547;

export async function openMssqlControlStore(
  connectionString: string,
  options: MssqlControlStoreOptions = {},
): Promise<ControlStore> {
  const schema = controlSchemaName(options.schema);
  const log = (options.logger ?? silentLogger).child({ component: 'control-store', dialect: 'mssql', schema });
  const policy = { allowTrustServerCertificate: options.allowTrustServerCertificate };
  return createMssqlControlStore(await connectMssqlControl(connectionString, log, policy), options);
}

/** The store over an open connection (tests pass a recorder). The store owns it: `close()` closes it. */
export function createMssqlControlStore(
  connection: MssqlControlConnection,
  options: MssqlControlStoreOptions = {},
): ControlStore {
  const schema = controlSchemaName(options.schema);
  const log = (options.logger ?? silentLogger).child({ component: 'control-store', dialect: 'mssql', schema });
  const now = options.now ?? (() => new Date());
  const sql = mssqlControlSql(schema);

  return sqlControlStore<MssqlStatement>({
    sql,
    log,
    now,
    rows: (statement) => connection.query(statement),
    /** Upsert batches answer `[written]`. */
    async written(statement) {
      try {
        const [row] = await connection.query(statement);
        return Number(row?.written ?? 0);
      } catch (err) {
        if ((err as { number?: unknown })?.number === CONSTRAINT_CONFLICT) return 0;
        throw err;
      }
    },
    /** Deletes answer the removed rows (OUTPUT). */
    deleted: async (statement) => (await connection.query(statement)).length,
    async migrate() {
      await connection.transaction(async (session) => {
        const [lock] = await session.query(sql.migrationLock());
        const result = Number(lock?.result);
        // sp_getapplock: 0 granted, 1 granted after waiting, negative = timeout, deadlock or error.
        if (!(result >= 0)) {
          throw new AppError(
            'INTERNAL',
            `could not lock control store schema ${schema} for migration (sp_getapplock answered ${lock?.result}) within ${MIGRATION_LOCK_TIMEOUT_MS / 1000} s; another instance may still be migrating: retry`,
            { transient: true },
          );
        }
        await session.query(sql.createSchema());
        await session.query(sql.createHistory());
        const applied = (await session.query(sql.appliedVersions())).map((r) => Number(r.version));
        for (const step of pendingMigrations(mssqlMigrations(schema), applied)) {
          await session.query({ text: step.sql, params: [] });
          await session.query(sql.recordMigration(step.version, step.name));
          log.info('control store migration applied', { version: step.version, name: step.name });
        }
      });
    },

    close: () => connection.close(),
  });
}
