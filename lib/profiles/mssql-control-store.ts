/**
 * The control store on Azure SQL / SQL Server. Statements come from `sql/mssql.ts`; this file runs them
 * through a {@link MssqlControlConnection} and maps rows. Migrations run in one transaction that first
 * takes an application lock (sp_getapplock), so instances starting together apply each step once.
 */
import { randomUUID } from 'node:crypto';
import { AppError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import type { MetricsDelta } from '../pipeline/ports.js';
import {
  checkpointFromRow,
  controlSchemaName,
  profileFromRow,
  profileKey,
  profileTables,
  statusFromRow,
  storedDefinition,
} from './control-rows.js';
import type { ControlStore, SyncCheckpoint, SyncStatePatch } from './control-store.js';
import { metricsIncrement } from './metrics-increment.js';
import { pendingMigrations } from './migrations/migration.js';
import { mssqlMigrations } from './migrations/mssql.js';
import { connectMssqlControl, type MssqlControlConnection } from './mssql-connection.js';
import type { ExportProfile, ProfileDefinition, ProfileState } from './schema.js';
import { MIGRATION_LOCK_TIMEOUT_MS, type MssqlStatement, mssqlControlSql } from './sql/mssql.js';

export interface MssqlControlStoreOptions {
  /** Schema of the control tables; default `dvexport`. */
  schema?: string;
  logger?: Logger;
  /** Clock for created/modified/updated times (tests). */
  now?: () => Date;
}

/** SQL Server error 547: a constraint conflict, here the profile deleted between our read and the write. */
const CONSTRAINT_CONFLICT = 547;

export async function openMssqlControlStore(
  connectionString: string,
  options: MssqlControlStoreOptions = {},
): Promise<ControlStore> {
  const schema = controlSchemaName(options.schema);
  const log = (options.logger ?? silentLogger).child({ component: 'control-store', dialect: 'mssql', schema });
  return createMssqlControlStore(await connectMssqlControl(connectionString, log), options);
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

  const rows = (statement: MssqlStatement) => connection.query(statement);
  /** Runs an upsert batch that answers `[written]`; 0 when the profile no longer exists. */
  const written = async (statement: MssqlStatement): Promise<number> => {
    try {
      const [row] = await connection.query(statement);
      return Number(row?.written ?? 0);
    } catch (err) {
      if ((err as { number?: unknown })?.number === CONSTRAINT_CONFLICT) return 0;
      throw err;
    }
  };
  const profileGone = (profileId: string, what: string) =>
    new AppError('PROFILE_NOT_FOUND', `export profile ${profileId} does not exist; its ${what} was not saved`, {
      details: [{ field: 'profileId', message: 'no export profile has this id', value: profileId }],
    });

  return {
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

    async createProfile(definition: ProfileDefinition): Promise<ExportProfile> {
      const [row] = await rows(sql.insertProfile(randomUUID(), storedDefinition(definition), 'Inactive', now()));
      return profileFromRow(row);
    },

    async listProfiles() {
      return (await rows(sql.selectProfiles())).map(profileFromRow);
    },

    async getProfile(id: string) {
      const key = profileKey(id);
      if (!key) return undefined;
      const [row] = await rows(sql.selectProfile(key));
      return row ? profileFromRow(row) : undefined;
    },

    async replaceProfile(id: string, definition: ProfileDefinition) {
      const key = profileKey(id);
      if (!key) return undefined;
      const stored = storedDefinition(definition);
      const [row] = await rows(sql.replaceProfile(key, stored, profileTables(stored), now()));
      return row ? profileFromRow(row) : undefined;
    },

    async deleteProfile(id: string) {
      const key = profileKey(id);
      if (!key) return false;
      return (await rows(sql.deleteProfile(key))).length > 0;
    },

    async setProfileState(id: string, state: ProfileState) {
      const key = profileKey(id);
      if (!key) return undefined;
      const [row] = await rows(sql.updateProfileState(key, state, now()));
      return row ? profileFromRow(row) : undefined;
    },

    async activeProfilesFor(organizationId: string) {
      return (await rows(sql.selectActiveProfiles(organizationId))).map(profileFromRow);
    },

    async entityStatuses(profileId: string) {
      const key = profileKey(profileId);
      if (!key) return [];
      return (await rows(sql.selectEntityStatuses(key))).map(statusFromRow);
    },

    async updateSyncState(profileId: string, entity: string, patch: SyncStatePatch) {
      const key = profileKey(profileId);
      const count = key ? await written(sql.upsertSyncState(key, entity, patch, now())) : 0;
      if (count === 0) throw profileGone(profileId, `sync state of ${entity}`);
    },

    async recordMetrics(profileId: string, entity: string, delta: MetricsDelta) {
      const key = profileKey(profileId);
      const increment = metricsIncrement(delta);
      if (!increment) return;
      const count = key ? await written(sql.upsertMetrics(key, entity, increment, now())) : 0;
      // Counters of a deleted profile have nowhere to go; that is not the caller's failure.
      if (count === 0) log.debug('metrics for an unknown profile dropped', { profileId, entity });
    },

    async getCheckpoint(profileId: string, entity: string) {
      const key = profileKey(profileId);
      if (!key) return undefined;
      const [row] = await rows(sql.selectCheckpoint(key, entity));
      return row ? checkpointFromRow(row) : undefined;
    },

    async saveCheckpoint(checkpoint: Omit<SyncCheckpoint, 'updatedAt'>) {
      const key = profileKey(checkpoint.profileId);
      const count = key ? await written(sql.upsertCheckpoint({ ...checkpoint, profileId: key }, now())) : 0;
      if (count === 0) throw profileGone(checkpoint.profileId, `checkpoint of ${checkpoint.entity}`);
    },

    async clearCheckpoints(profileId: string, entity?: string) {
      const key = profileKey(profileId);
      if (key) await rows(sql.deleteCheckpoints(key, entity ?? null));
    },

    async listDeltaCheckpoints() {
      return (await rows(sql.selectDeltaCheckpoints())).map(checkpointFromRow);
    },

    close: () => connection.close(),
  };
}
