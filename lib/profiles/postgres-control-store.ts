/**
 * The control store on PostgreSQL (`pg` pool). Statements come from `sql/postgres.ts`; this file only runs
 * them and maps rows. Migrations run in one transaction behind an advisory lock, so instances that start
 * together apply each step exactly once.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
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
import { postgresMigrations } from './migrations/postgres.js';
import type { ExportProfile, ProfileDefinition, ProfileState } from './schema.js';
import { type PgStatement, postgresControlSql } from './sql/postgres.js';

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
  const pool = new pg.Pool({ connectionString, max: options.maxConnections ?? 10 });
  // An idle client losing its server must not crash the process; the next query reconnects.
  pool.on('error', (err) => log.warn('control store connection lost', { error: err }));
  let closed = false;

  const run = async (statement: PgStatement) => (await pool.query(statement)).rows as Array<Record<string, unknown>>;
  const runCount = async (statement: PgStatement) => (await pool.query(statement)).rowCount ?? 0;
  const profileGone = (profileId: string, what: string) =>
    new AppError('PROFILE_NOT_FOUND', `export profile ${profileId} does not exist; its ${what} was not saved`, {
      details: [{ field: 'profileId', message: 'no export profile has this id', value: profileId }],
    });

  const store: ControlStore = {
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

    async createProfile(definition: ProfileDefinition): Promise<ExportProfile> {
      const rows = await run(sql.insertProfile(randomUUID(), storedDefinition(definition), 'Inactive', now()));
      return profileFromRow(rows[0]);
    },

    async listProfiles() {
      return (await run(sql.selectProfiles())).map(profileFromRow);
    },

    async getProfile(id: string) {
      const key = profileKey(id);
      if (!key) return undefined;
      const rows = await run(sql.selectProfile(key));
      return rows.length ? profileFromRow(rows[0]) : undefined;
    },

    async replaceProfile(id: string, definition: ProfileDefinition) {
      const key = profileKey(id);
      if (!key) return undefined;
      const stored = storedDefinition(definition);
      const rows = await run(sql.replaceProfile(key, stored, profileTables(stored), now()));
      return rows.length ? profileFromRow(rows[0]) : undefined;
    },

    async deleteProfile(id: string) {
      const key = profileKey(id);
      if (!key) return false;
      return (await runCount(sql.deleteProfile(key))) > 0;
    },

    async setProfileState(id: string, state: ProfileState) {
      const key = profileKey(id);
      if (!key) return undefined;
      const rows = await run(sql.updateProfileState(key, state, now()));
      return rows.length ? profileFromRow(rows[0]) : undefined;
    },

    async activeProfilesFor(organizationId: string) {
      return (await run(sql.selectActiveProfiles(organizationId))).map(profileFromRow);
    },

    async entityStatuses(profileId: string) {
      const key = profileKey(profileId);
      if (!key) return [];
      return (await run(sql.selectEntityStatuses(key))).map(statusFromRow);
    },

    async updateSyncState(profileId: string, entity: string, patch: SyncStatePatch) {
      const key = profileKey(profileId);
      const written = key ? await runCount(sql.upsertSyncState(key, entity, patch, now())).catch(gone) : 0;
      if (written === 0) throw profileGone(profileId, `sync state of ${entity}`);
    },

    async recordMetrics(profileId: string, entity: string, delta: MetricsDelta) {
      const key = profileKey(profileId);
      const increment = metricsIncrement(delta);
      if (!increment) return;
      const written = key ? await runCount(sql.upsertMetrics(key, entity, increment, now())).catch(gone) : 0;
      // Counters of a deleted profile have nowhere to go; that is not the caller's failure.
      if (written === 0) log.debug('metrics for an unknown profile dropped', { profileId, entity });
    },

    async getCheckpoint(profileId: string, entity: string) {
      const key = profileKey(profileId);
      if (!key) return undefined;
      const rows = await run(sql.selectCheckpoint(key, entity));
      return rows.length ? checkpointFromRow(rows[0]) : undefined;
    },

    async saveCheckpoint(checkpoint: Omit<SyncCheckpoint, 'updatedAt'>) {
      const key = profileKey(checkpoint.profileId);
      const written = key
        ? await runCount(sql.upsertCheckpoint({ ...checkpoint, profileId: key }, now())).catch(gone)
        : 0;
      if (written === 0) throw profileGone(checkpoint.profileId, `checkpoint of ${checkpoint.entity}`);
    },

    async clearCheckpoints(profileId: string, entity?: string) {
      const key = profileKey(profileId);
      if (key) await run(sql.deleteCheckpoints(key, entity ?? null));
    },

    async listDeltaCheckpoints() {
      return (await run(sql.selectDeltaCheckpoints())).map(checkpointFromRow);
    },

    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
  return store;
}

/** A write that lost a race with the profile's deletion counts as "no row written". */
function gone(err: unknown): number {
  if ((err as { code?: unknown })?.code === FOREIGN_KEY_VIOLATION) return 0;
  throw err;
}
