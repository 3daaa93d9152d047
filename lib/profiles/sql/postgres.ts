/**
 * Every statement the PostgreSQL control store runs, as text plus positional values. Only the schema name
 * (validated) is spliced into the text; all values are parameters. Upserts are single
 * `INSERT … SELECT … FROM profiles … ON CONFLICT DO UPDATE` statements, so a counter update is atomic and
 * a row for a deleted profile is never created.
 */
import type { TargetStateReport } from '../../pipeline/ports.js';
import { AUDIT_COLUMNS, type AuditQuery, type AuditRecord } from '../audit.js';
import type {
  CopyPartition,
  PartitionProgress,
  PartitionRange,
  SyncCheckpoint,
  SyncStatePatch,
} from '../control-store.js';
import type { MetricsIncrement } from '../metrics-increment.js';
import type { ProfileDefinition, ProfileState } from '../schema.js';

export interface PgStatement {
  text: string;
  values: unknown[];
}

const q = (name: string): string => `"${name}"`;

const PROFILE_COLUMNS = 'id, name, organization_id, state, definition, created_on, modified_on';
const STATUS_COLUMNS =
  's.sync_state, s.rows_copied, s.rows_estimated, s.sync_started_at, s.sync_completed_at, s.last_error, ' +
  's.received, s.applied, s.stale, s.failed, s.last_applied_at, s.last_lag_ms, s.lag_sum_ms, s.lag_count';
const CHECKPOINT_COLUMNS = 'profile_id, entity, next_link, delta_link, pages_done, updated_at';
const PARTITION_COLUMNS =
  'profile_id, entity, partition_no, range_after, range_up_to, last_id, pages_done, rows_copied, done, updated_at';

/** Whether a patch field was given at all: `null` clears a column, a missing key keeps it. */
const given = (patch: SyncStatePatch, key: keyof SyncStatePatch): boolean => patch[key] !== undefined;

const jsonOrNull = (value: unknown): string | null => (value === null ? null : JSON.stringify(value));

export function postgresControlSql(schema: string) {
  const t = (name: string): string => `${q(schema)}.${q(name)}`;
  const profiles = t('profiles');
  const status = t('entity_status');
  const checkpoints = t('checkpoints');
  /** Writes checkpoint $2 ($3 next link, $4 delta link, $5 pages, $6 time) of profile $1, if the profile exists. */
  const checkpointUpsert = `INSERT INTO ${checkpoints} AS c (${CHECKPOINT_COLUMNS})
SELECT p.id, $2, $3, $4, $5, $6 FROM ${profiles} AS p WHERE p.id = $1
ON CONFLICT (profile_id, entity) DO UPDATE SET
  next_link = EXCLUDED.next_link,
  delta_link = EXCLUDED.delta_link,
  pages_done = EXCLUDED.pages_done,
  updated_at = EXCLUDED.updated_at`;
  /** After a `saved` CTE answering profile_id: adds $7 rows to entity $2's rows copied, at `at`. */
  const addRowsCopied = (
    at: string,
  ) => `INSERT INTO ${status} AS s (profile_id, entity, sync_state, rows_copied, updated_at)
SELECT saved.profile_id, $2, 'NotStarted', $7::bigint, ${at} FROM saved
ON CONFLICT (profile_id, entity) DO UPDATE SET
  rows_copied = s.rows_copied + EXCLUDED.rows_copied,
  updated_at = EXCLUDED.updated_at`;
  const targetState = t('target_state');
  const history = t('schema_migrations');
  const audit = t('audit_log');
  const partitions = t('copy_partitions');
  const shares = t('organization_shares');

  return {
    /** Serialises migrations of this schema across instances; released at commit. */
    migrationLock: (): PgStatement => ({
      text: 'SELECT pg_advisory_xact_lock(hashtext($1))',
      values: [`dvexport.migrate:${schema}`],
    }),

    createHistory: (): PgStatement => ({
      text: `CREATE SCHEMA IF NOT EXISTS ${q(schema)};
CREATE TABLE IF NOT EXISTS ${history} (
  version integer PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`,
      values: [],
    }),

    appliedVersions: (): PgStatement => ({ text: `SELECT version, name FROM ${history} ORDER BY version`, values: [] }),

    recordMigration: (version: number, name: string): PgStatement => ({
      text: `INSERT INTO ${history} (version, name) VALUES ($1, $2)`,
      values: [version, name],
    }),

    insertProfile: (id: string, definition: ProfileDefinition, state: ProfileState, now: Date): PgStatement => ({
      text: `INSERT INTO ${profiles} (${PROFILE_COLUMNS})
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $6)
RETURNING ${PROFILE_COLUMNS}`,
      values: [id, definition.name, definition.organizationId, state, JSON.stringify(definition), now],
    }),

    selectProfiles: (): PgStatement => ({
      text: `SELECT ${PROFILE_COLUMNS} FROM ${profiles} ORDER BY created_on, id`,
      values: [],
    }),

    selectProfile: (id: string): PgStatement => ({
      text: `SELECT ${PROFILE_COLUMNS} FROM ${profiles} WHERE id = $1`,
      values: [id],
    }),

    /** Replaces the definition and forgets status and checkpoints of tables the profile no longer has. */
    replaceProfile: (id: string, definition: ProfileDefinition, tables: string[], now: Date): PgStatement => ({
      text: `WITH replaced AS (
  UPDATE ${profiles}
  SET name = $2, organization_id = $3, definition = $4::jsonb, modified_on = $5
  WHERE id = $1
  RETURNING ${PROFILE_COLUMNS}
), dropped_status AS (
  DELETE FROM ${status}
  WHERE profile_id IN (SELECT id FROM replaced) AND entity <> ALL ($6::text[])
), dropped_checkpoints AS (
  DELETE FROM ${checkpoints}
  WHERE profile_id IN (SELECT id FROM replaced) AND entity <> ALL ($6::text[])
)
SELECT ${PROFILE_COLUMNS} FROM replaced`,
      values: [id, definition.name, definition.organizationId, JSON.stringify(definition), now, tables],
    }),

    /** Status rows and checkpoints go with it (ON DELETE CASCADE). */
    deleteProfile: (id: string): PgStatement => ({
      text: `DELETE FROM ${profiles} WHERE id = $1 RETURNING id`,
      values: [id],
    }),

    updateProfileState: (id: string, state: ProfileState, now: Date): PgStatement => ({
      text: `UPDATE ${profiles} SET state = $2, modified_on = $3 WHERE id = $1 RETURNING ${PROFILE_COLUMNS}`,
      values: [id, state, now],
    }),

    selectActiveProfiles: (organizationId: string): PgStatement => ({
      text: `SELECT ${PROFILE_COLUMNS} FROM ${profiles}
WHERE organization_id = lower($1) AND state = 'Active'
ORDER BY created_on, id`,
      values: [organizationId],
    }),

    /** One row per table of the profile, in its order; the status columns are null where no row exists yet. */
    selectEntityStatuses: (profileId: string): PgStatement => ({
      text: `SELECT e.entity, ${STATUS_COLUMNS}
FROM ${profiles} AS p
CROSS JOIN LATERAL jsonb_array_elements_text(
  COALESCE(p.definition -> 'entities', '[]'::jsonb) || COALESCE(p.definition -> 'relationships', '[]'::jsonb)
) WITH ORDINALITY AS e (entity, position)
LEFT JOIN ${status} AS s ON s.profile_id = p.id AND s.entity = e.entity
WHERE p.id = $1
ORDER BY e.position`,
      values: [profileId],
    }),

    /**
     * Applies a patch: each nullable field travels as (given?, value) so `null` can clear it; rows_copied is
     * overwritten when given, then incremented in place.
     */
    upsertSyncState: (profileId: string, entity: string, patch: SyncStatePatch, now: Date): PgStatement => ({
      text: `INSERT INTO ${status} AS s
  (profile_id, entity, sync_state, rows_copied, rows_estimated, sync_started_at, sync_completed_at, last_error, updated_at)
SELECT p.id, $2, COALESCE($3::text, 'NotStarted'), COALESCE($4::bigint, 0) + $5::bigint,
  $7::bigint, $9::timestamptz, $11::timestamptz, $13::text, $14::timestamptz
FROM ${profiles} AS p
WHERE p.id = $1
ON CONFLICT (profile_id, entity) DO UPDATE SET
  sync_state = COALESCE($3::text, s.sync_state),
  rows_copied = COALESCE($4::bigint, s.rows_copied) + $5::bigint,
  rows_estimated = CASE WHEN $6::boolean THEN $7::bigint ELSE s.rows_estimated END,
  sync_started_at = CASE WHEN $8::boolean THEN $9::timestamptz ELSE s.sync_started_at END,
  sync_completed_at = CASE WHEN $10::boolean THEN $11::timestamptz ELSE s.sync_completed_at END,
  last_error = CASE WHEN $12::boolean THEN $13::text ELSE s.last_error END,
  updated_at = $14::timestamptz`,
      values: [
        profileId,
        entity,
        patch.syncState ?? null,
        patch.rowsCopied ?? null,
        patch.rowsCopiedDelta ?? 0,
        given(patch, 'rowsEstimated'),
        patch.rowsEstimated ?? null,
        given(patch, 'syncStartedAt'),
        patch.syncStartedAt ?? null,
        given(patch, 'syncCompletedAt'),
        patch.syncCompletedAt ?? null,
        given(patch, 'lastError'),
        patch.lastError ?? null,
        now,
      ],
    }),

    /**
     * Adds the increments in place; lastAppliedAt keeps the later time and the last lag follows it, so an
     * out-of-order report cannot move either backwards. The mean lag is kept as a running sum and count.
     */
    upsertMetrics: (profileId: string, entity: string, m: MetricsIncrement, now: Date): PgStatement => ({
      text: `INSERT INTO ${status} AS s
  (profile_id, entity, received, applied, stale, failed, last_applied_at, last_lag_ms, lag_sum_ms, lag_count, updated_at)
SELECT p.id, $2, $3::bigint, $4::bigint, $5::bigint, $6::bigint, $7::timestamptz, $8::bigint,
  COALESCE($8::bigint, 0), CASE WHEN $8::bigint IS NULL THEN 0 ELSE 1 END, $9::timestamptz
FROM ${profiles} AS p
WHERE p.id = $1
ON CONFLICT (profile_id, entity) DO UPDATE SET
  received = s.received + EXCLUDED.received,
  applied = s.applied + EXCLUDED.applied,
  stale = s.stale + EXCLUDED.stale,
  failed = s.failed + EXCLUDED.failed,
  last_applied_at = GREATEST(s.last_applied_at, EXCLUDED.last_applied_at),
  last_lag_ms = CASE
    WHEN EXCLUDED.last_lag_ms IS NULL THEN s.last_lag_ms
    WHEN s.last_applied_at IS NULL OR EXCLUDED.last_applied_at IS NULL
      OR EXCLUDED.last_applied_at >= s.last_applied_at THEN EXCLUDED.last_lag_ms
    ELSE s.last_lag_ms
  END,
  lag_sum_ms = s.lag_sum_ms + EXCLUDED.lag_sum_ms,
  lag_count = s.lag_count + EXCLUDED.lag_count,
  updated_at = EXCLUDED.updated_at`,
      values: [profileId, entity, m.received, m.applied, m.stale, m.failed, m.lastAppliedAt, m.lagMs, now],
    }),

    selectCheckpoint: (profileId: string, entity: string): PgStatement => ({
      text: `SELECT ${CHECKPOINT_COLUMNS} FROM ${checkpoints} WHERE profile_id = $1 AND entity = $2`,
      values: [profileId, entity],
    }),

    upsertCheckpoint: (c: Omit<SyncCheckpoint, 'updatedAt'>, now: Date): PgStatement => ({
      text: checkpointUpsert,
      values: [c.profileId, c.entity, c.nextLink, c.deltaLink, c.pagesDone, now],
    }),

    /** The checkpoint and the rows copied move together: one statement, answering the status rows written. */
    saveCopyProgress: (c: Omit<SyncCheckpoint, 'updatedAt'>, rowsCopied: number, now: Date): PgStatement => ({
      text: `WITH saved AS (
${checkpointUpsert}
  RETURNING c.profile_id
)
${addRowsCopied('$6')}`,
      values: [c.profileId, c.entity, c.nextLink, c.deltaLink, c.pagesDone, now, rowsCopied],
    }),

    /** Without an entity: every checkpoint of the profile. */
    deleteCheckpoints: (profileId: string, entity: string | null): PgStatement => ({
      text: `DELETE FROM ${checkpoints} WHERE profile_id = $1 AND ($2::text IS NULL OR entity = $2::text)`,
      values: [profileId, entity],
    }),

    /** The checkpoint and the partitions in one statement (the foreign key is checked at its end). */
    startPartitionedCopy: (c: Omit<SyncCheckpoint, 'updatedAt'>, ranges: PartitionRange[], now: Date): PgStatement => ({
      text: `WITH saved AS (
${checkpointUpsert}
  RETURNING c.profile_id, c.entity
)
INSERT INTO ${partitions} (${PARTITION_COLUMNS})
SELECT saved.profile_id, saved.entity, x.partition_no, x.range_after, x.range_up_to, NULL, 0, 0, false, $6
FROM saved CROSS JOIN jsonb_to_recordset($7::jsonb) AS x (partition_no integer, range_after text, range_up_to text)`,
      values: [
        c.profileId,
        c.entity,
        c.nextLink,
        c.deltaLink,
        c.pagesDone,
        now,
        JSON.stringify(ranges.map((r) => ({ partition_no: r.partition, range_after: r.after, range_up_to: r.upTo }))),
      ],
    }),

    selectPartitions: (profileId: string, entity: string | null): PgStatement => ({
      text: `SELECT ${PARTITION_COLUMNS} FROM ${partitions}
WHERE profile_id = $1 AND ($2::text IS NULL OR entity = $2::text)
ORDER BY entity, partition_no`,
      values: [profileId, entity],
    }),

    /** The partition's page and the entity's rows copied move together; answers the status rows written. */
    savePartitionProgress: (p: PartitionProgress, rowsCopied: number, now: Date): PgStatement => ({
      text: `WITH saved AS (
  UPDATE ${partitions}
  SET last_id = $4, pages_done = $5, done = $6, rows_copied = rows_copied + $7::bigint, updated_at = $8
  WHERE profile_id = $1 AND entity = $2 AND partition_no = $3
  RETURNING profile_id
)
${addRowsCopied('$8')}`,
      values: [p.profileId, p.entity, p.partition, p.lastId, p.pagesDone, p.done, rowsCopied, now],
    }),

    /** Narrows the partition to (…, at] and adds (at, upTo] as a new one; answers the rows added. */
    splitPartition: (
      split: Pick<CopyPartition, 'profileId' | 'entity' | 'partition' | 'upTo'> & { at: string; added: number },
      now: Date,
    ): PgStatement => ({
      text: `WITH cut AS (
  UPDATE ${partitions} SET range_up_to = $4, updated_at = $7
  WHERE profile_id = $1 AND entity = $2 AND partition_no = $3
  RETURNING profile_id
)
INSERT INTO ${partitions} (${PARTITION_COLUMNS})
SELECT cut.profile_id, $2, $5::integer, $4::text, $6::text, NULL, 0, 0, false, $7 FROM cut`,
      values: [split.profileId, split.entity, split.partition, split.at, split.added, split.upTo, now],
    }),

    /** `since` stays while the condition is the same one. */
    upsertTargetState: (profileId: string, r: TargetStateReport, now: Date): PgStatement => ({
      text: `INSERT INTO ${targetState} AS ts (profile_id, state, reason, action, since, updated_at)
SELECT p.id, $2, $3, $4, $5, $5 FROM ${profiles} AS p WHERE p.id = $1
ON CONFLICT (profile_id) DO UPDATE SET
  since = CASE WHEN ts.state = EXCLUDED.state THEN ts.since ELSE EXCLUDED.since END,
  state = EXCLUDED.state,
  reason = EXCLUDED.reason,
  action = EXCLUDED.action,
  updated_at = EXCLUDED.updated_at`,
      values: [profileId, r.state, r.reason, r.action, now],
    }),

    deleteTargetState: (profileId: string): PgStatement => ({
      text: `DELETE FROM ${targetState} WHERE profile_id = $1`,
      values: [profileId],
    }),

    selectTargetState: (profileId: string): PgStatement => ({
      text: `SELECT state, reason, action, since, updated_at FROM ${targetState} WHERE profile_id = $1`,
      values: [profileId],
    }),

    /**
     * Keeps instance $2's claim on organization $1 alive until $3 and drops the claims that expired by $4;
     * answers how many instances hold one (this one included: the count runs on the snapshot before the upsert).
     */
    claimOrganizationShare: (organization: string, instanceId: string, expiresAt: Date, now: Date): PgStatement => ({
      text: `WITH purged AS (
  DELETE FROM ${shares} WHERE organization = $1 AND instance_id <> $2 AND expires_at <= $4
), claimed AS (
  INSERT INTO ${shares} (organization, instance_id, expires_at) VALUES ($1, $2, $3)
  ON CONFLICT (organization, instance_id) DO UPDATE SET expires_at = EXCLUDED.expires_at
)
SELECT 1 + count(*)::integer AS holders FROM ${shares} WHERE organization = $1 AND instance_id <> $2 AND expires_at > $4`,
      values: [organization, instanceId, expiresAt, now],
    }),

    releaseOrganizationShare: (organization: string, instanceId: string): PgStatement => ({
      text: `DELETE FROM ${shares} WHERE organization = $1 AND instance_id = $2`,
      values: [organization, instanceId],
    }),

    selectDeltaCheckpoints: (): PgStatement => ({
      text: `SELECT ${CHECKPOINT_COLUMNS} FROM ${checkpoints} WHERE delta_link IS NOT NULL ORDER BY profile_id, entity`,
      values: [],
    }),

    insertAudit: (id: string, record: AuditRecord, at: Date): PgStatement => ({
      text: `INSERT INTO ${audit} (${AUDIT_COLUMNS.join(', ')})
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10::jsonb)
RETURNING ${AUDIT_COLUMNS.join(', ')}`,
      values: [
        id,
        at,
        record.actor,
        record.actorKind,
        record.action,
        record.profileId,
        record.profileName,
        jsonOrNull(record.before),
        jsonOrNull(record.after),
        jsonOrNull(record.details),
      ],
    }),

    /** Newest first; a null filter matches every row. */
    selectAudit: (query: AuditQuery): PgStatement => ({
      text: `SELECT ${AUDIT_COLUMNS.join(', ')} FROM ${audit}
WHERE ($1::uuid IS NULL OR profile_id = $1::uuid)
  AND ($2::timestamptz IS NULL OR at >= $2::timestamptz)
  AND ($3::timestamptz IS NULL OR at <= $3::timestamptz)
ORDER BY at DESC, id DESC
LIMIT $4 OFFSET $5`,
      values: [query.profileId ?? null, query.from ?? null, query.to ?? null, query.limit, query.offset],
    }),
  };
}

export type PostgresControlSql = ReturnType<typeof postgresControlSql>;
