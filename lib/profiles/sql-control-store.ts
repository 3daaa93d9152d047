/**
 * What both control stores do with the rows of their dialect's statements: the same store over PostgreSQL
 * and Azure SQL. A dialect module supplies the statements (`sql/postgres.ts`, `sql/mssql.ts`), how to run one,
 * how to count what an upsert wrote, migrations and closing; everything else lives here once.
 */
import { randomUUID } from 'node:crypto';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { MetricsDelta, TargetStateReport } from '../pipeline/ports.js';
import { type AuditQuery, type AuditRecord, auditFromRow } from './audit.js';
import {
  checkpointFromRow,
  partitionFromRow,
  profileFromRow,
  profileKey,
  profileTables,
  statusFromRow,
  storedDefinition,
  targetStateFromRow,
} from './control-rows.js';
import type {
  ControlStore,
  CopyPartition,
  PartitionProgress,
  PartitionRange,
  SyncCheckpoint,
  SyncStatePatch,
} from './control-store.js';
import { type MetricsIncrement, metricsIncrement } from './metrics-increment.js';
import type { ProfileDefinition, ProfileState } from './schema.js';

type Rows = Array<Record<string, unknown>>;

/** The statements both dialects provide, each returning that dialect's statement type `S`. */
export interface ControlSql<S> {
  insertProfile(id: string, definition: ProfileDefinition, state: ProfileState, at: Date): S;
  selectProfiles(): S;
  selectProfile(key: string): S;
  replaceProfile(key: string, definition: ProfileDefinition, tables: string[], at: Date): S;
  deleteProfile(key: string): S;
  updateProfileState(key: string, state: ProfileState, at: Date): S;
  selectActiveProfiles(organizationId: string): S;
  selectEntityStatuses(key: string): S;
  upsertSyncState(key: string, entity: string, patch: SyncStatePatch, at: Date): S;
  upsertMetrics(key: string, entity: string, increment: MetricsIncrement, at: Date): S;
  selectCheckpoint(key: string, entity: string): S;
  upsertCheckpoint(checkpoint: Omit<SyncCheckpoint, 'updatedAt'>, at: Date): S;
  saveCopyProgress(checkpoint: Omit<SyncCheckpoint, 'updatedAt'>, rowsCopied: number, at: Date): S;
  deleteCheckpoints(key: string, entity: string | null): S;
  startPartitionedCopy(checkpoint: Omit<SyncCheckpoint, 'updatedAt'>, partitions: PartitionRange[], at: Date): S;
  selectPartitions(key: string, entity: string | null): S;
  savePartitionProgress(progress: PartitionProgress, rowsCopied: number, at: Date): S;
  splitPartition(
    split: Pick<CopyPartition, 'profileId' | 'entity' | 'partition' | 'upTo'> & { at: string; added: number },
    now: Date,
  ): S;
  claimOrganizationShare(organization: string, instanceId: string, expiresAt: Date, now: Date): S;
  releaseOrganizationShare(organization: string, instanceId: string): S;
  selectDeltaCheckpoints(): S;
  upsertTargetState(key: string, report: TargetStateReport, at: Date): S;
  deleteTargetState(key: string): S;
  selectTargetState(key: string): S;
  insertAudit(id: string, record: AuditRecord, at: Date): S;
  selectAudit(query: AuditQuery): S;
}

export interface ControlDialect<S> {
  sql: ControlSql<S>;
  /** Runs a statement and answers its rows. */
  rows(statement: S): Promise<Rows>;
  /** Runs an upsert and answers how many rows it wrote; 0 when the profile was deleted meanwhile. */
  written(statement: S): Promise<number>;
  /** Runs a delete and answers how many rows it removed. */
  deleted(statement: S): Promise<number>;
  migrate(): Promise<void>;
  close(): Promise<void>;
  log: Logger;
  now: () => Date;
}

export function sqlControlStore<S>(dialect: ControlDialect<S>): ControlStore {
  const { sql, rows, written, log, now } = dialect;
  const first = async (statement: S) => (await rows(statement))[0];
  const profileGone = (profileId: string, what: string) =>
    new AppError('PROFILE_NOT_FOUND', `export profile ${profileId} does not exist; its ${what} was not saved`, {
      details: [{ field: 'profileId', message: 'no export profile has this id', value: profileId }],
    });

  return {
    migrate: () => dialect.migrate(),

    async createProfile(definition) {
      return profileFromRow(
        await first(sql.insertProfile(randomUUID(), storedDefinition(definition), 'Inactive', now())),
      );
    },

    async listProfiles() {
      return (await rows(sql.selectProfiles())).map(profileFromRow);
    },

    async getProfile(id) {
      const key = profileKey(id);
      const row = key ? await first(sql.selectProfile(key)) : undefined;
      return row ? profileFromRow(row) : undefined;
    },

    async replaceProfile(id, definition) {
      const key = profileKey(id);
      if (!key) return undefined;
      const stored = storedDefinition(definition);
      const row = await first(sql.replaceProfile(key, stored, profileTables(stored), now()));
      return row ? profileFromRow(row) : undefined;
    },

    async deleteProfile(id) {
      const key = profileKey(id);
      return key ? (await dialect.deleted(sql.deleteProfile(key))) > 0 : false;
    },

    async setProfileState(id, state) {
      const key = profileKey(id);
      const row = key ? await first(sql.updateProfileState(key, state, now())) : undefined;
      return row ? profileFromRow(row) : undefined;
    },

    async activeProfilesFor(organizationId) {
      return (await rows(sql.selectActiveProfiles(organizationId))).map(profileFromRow);
    },

    async entityStatuses(profileId) {
      const key = profileKey(profileId);
      return key ? (await rows(sql.selectEntityStatuses(key))).map(statusFromRow) : [];
    },

    async updateSyncState(profileId, entity, patch) {
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

    async getCheckpoint(profileId, entity) {
      const key = profileKey(profileId);
      const row = key ? await first(sql.selectCheckpoint(key, entity)) : undefined;
      return row ? checkpointFromRow(row) : undefined;
    },

    async saveCheckpoint(checkpoint) {
      const key = profileKey(checkpoint.profileId);
      const count = key ? await written(sql.upsertCheckpoint({ ...checkpoint, profileId: key }, now())) : 0;
      if (count === 0) throw profileGone(checkpoint.profileId, `checkpoint of ${checkpoint.entity}`);
    },

    async saveCopyProgress(checkpoint, rowsCopied) {
      const key = profileKey(checkpoint.profileId);
      const count = key ? await written(sql.saveCopyProgress({ ...checkpoint, profileId: key }, rowsCopied, now())) : 0;
      if (count === 0) throw profileGone(checkpoint.profileId, `checkpoint of ${checkpoint.entity}`);
    },

    async clearCheckpoints(profileId, entity) {
      const key = profileKey(profileId);
      if (key) await rows(sql.deleteCheckpoints(key, entity ?? null));
    },

    async startPartitionedCopy(checkpoint, partitions) {
      const key = profileKey(checkpoint.profileId);
      const count = key
        ? await written(sql.startPartitionedCopy({ ...checkpoint, profileId: key }, partitions, now()))
        : 0;
      if (count === 0) throw profileGone(checkpoint.profileId, `copy plan of ${checkpoint.entity}`);
    },

    async copyPartitions(profileId, entity) {
      const key = profileKey(profileId);
      return key ? (await rows(sql.selectPartitions(key, entity ?? null))).map(partitionFromRow) : [];
    },

    async savePartitionProgress(progress, rowsCopied) {
      const key = profileKey(progress.profileId);
      const count = key
        ? await written(sql.savePartitionProgress({ ...progress, profileId: key }, rowsCopied, now()))
        : 0;
      if (count === 0) throw profileGone(progress.profileId, `partition ${progress.partition} of ${progress.entity}`);
    },

    async splitPartition(split) {
      const key = profileKey(split.profileId);
      const count = key ? await written(sql.splitPartition({ ...split, profileId: key }, now())) : 0;
      if (count === 0) throw profileGone(split.profileId, `split of partition ${split.partition} of ${split.entity}`);
    },

    async claimOrganizationShare(organization, instanceId, ttlSeconds) {
      const at = now();
      const expiresAt = new Date(at.getTime() + ttlSeconds * 1000);
      const row = await first(sql.claimOrganizationShare(organization, instanceId, expiresAt, at));
      return Number(row?.holders ?? 1);
    },

    async releaseOrganizationShare(organization, instanceId) {
      await rows(sql.releaseOrganizationShare(organization, instanceId));
    },

    async listDeltaCheckpoints() {
      return (await rows(sql.selectDeltaCheckpoints())).map(checkpointFromRow);
    },

    async recordTargetState(profileId, report) {
      const key = profileKey(profileId);
      if (!key) return;
      if (report) await written(sql.upsertTargetState(key, report, now()));
      else await rows(sql.deleteTargetState(key));
    },

    async targetState(profileId) {
      const key = profileKey(profileId);
      const row = key ? await first(sql.selectTargetState(key)) : undefined;
      return row ? targetStateFromRow(row) : undefined;
    },

    async recordAudit(record) {
      const profileId = profileKey(record.profileId) ?? record.profileId;
      return auditFromRow(await first(sql.insertAudit(randomUUID(), { ...record, profileId }, now())));
    },

    async listAudit(query) {
      const profileId = query.profileId === undefined ? undefined : profileKey(query.profileId);
      if (query.profileId !== undefined && !profileId) return [];
      return (await rows(sql.selectAudit({ ...query, profileId }))).map(auditFromRow);
    },

    close: () => dialect.close(),
  };
}
