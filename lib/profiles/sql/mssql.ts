/**
 * Every statement the Azure SQL control store runs (T-SQL), as text plus typed parameters `@p1…@pn`.
 * Only the schema name (validated) is spliced into the text. Upserts follow the UPDATE-then-INSERT
 * pattern under `WITH (UPDLOCK, SERIALIZABLE)` inside one batch transaction: the key range stays locked
 * until commit, so two writers of a missing row cannot both insert, and `x = x + @n` never loses an
 * increment. Rows are only inserted for a profile that exists (INSERT … SELECT FROM profiles).
 * The text is pinned by golden files (test/fixtures/golden/control-store), since no SQL Server runs here.
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

/** Parameter types, spelled as T-SQL declares them; the connection maps each to its `mssql` type. */
export type MssqlParamType =
  | 'UNIQUEIDENTIFIER'
  | 'NVARCHAR(16)'
  | 'NVARCHAR(36)'
  | 'NVARCHAR(128)'
  | 'NVARCHAR(200)'
  | 'NVARCHAR(255)'
  | 'NVARCHAR(MAX)'
  | 'BIGINT'
  | 'INT'
  | 'BIT'
  | 'DATETIME2(3)';

export interface MssqlParam {
  name: string;
  type: MssqlParamType;
  value: unknown;
}

export interface MssqlStatement {
  text: string;
  params: MssqlParam[];
}

/** Names the parameters @p1…@pn in the order given. */
/** @p1…@p6 of a checkpoint write (`writeCheckpoint`). */
function checkpointParams(c: Omit<SyncCheckpoint, 'updatedAt'>, now: Date): Array<[MssqlParamType, unknown]> {
  return [
    ['UNIQUEIDENTIFIER', c.profileId],
    ['NVARCHAR(128)', c.entity],
    ['NVARCHAR(MAX)', c.nextLink],
    ['NVARCHAR(MAX)', c.deltaLink],
    ['INT', c.pagesDone],
    ['DATETIME2(3)', now],
  ];
}

function statement(text: string, ...params: Array<[MssqlParamType, unknown]>): MssqlStatement {
  return { text, params: params.map(([type, value], i) => ({ name: `p${i + 1}`, type, value })) };
}

const q = (name: string): string => `[${name}]`;
/** A name inside an N'…' literal (validated names hold no quote). */
const literal = (text: string): string => `N'${text}'`;

/** Milliseconds an instance waits for another's migration before giving up. */
export const MIGRATION_LOCK_TIMEOUT_MS = 60_000;

const PROFILE_COLUMN_NAMES = ['id', 'name', 'organization_id', 'state', 'definition', 'created_on', 'modified_on'];
const PROFILE_COLUMNS = PROFILE_COLUMN_NAMES.map(q).join(', ');
const prefixed = (prefix: string): string => PROFILE_COLUMN_NAMES.map((c) => `${prefix}.${q(c)}`).join(', ');
const STATUS_COLUMNS = [
  'sync_state',
  'rows_copied',
  'rows_estimated',
  'sync_started_at',
  'sync_completed_at',
  'last_error',
  'received',
  'applied',
  'stale',
  'failed',
  'last_applied_at',
  'last_lag_ms',
  'lag_sum_ms',
  'lag_count',
]
  .map((c) => `s.${q(c)}`)
  .join(', ');
const CHECKPOINT_COLUMNS = ['profile_id', 'entity', 'next_link', 'delta_link', 'pages_done', 'updated_at']
  .map(q)
  .join(', ');
const PARTITION_COLUMNS = [
  'profile_id',
  'entity',
  'partition_no',
  'range_after',
  'range_up_to',
  'last_id',
  'pages_done',
  'rows_copied',
  'done',
  'updated_at',
]
  .map(q)
  .join(', ');

/**
 * Rows written by a statement reach the client through this table variable, never by plain OUTPUT, which
 * fails (error 334) on a table with an enabled trigger.
 */
const SAVED_PROFILE = `DECLARE @saved TABLE (
  [id] UNIQUEIDENTIFIER, [name] NVARCHAR(200), [organization_id] NVARCHAR(36), [state] NVARCHAR(16),
  [definition] NVARCHAR(MAX), [created_on] DATETIME2(3), [modified_on] DATETIME2(3)
);`;

const given = (patch: SyncStatePatch, key: keyof SyncStatePatch): boolean => patch[key] !== undefined;

const jsonOrNull = (value: unknown): string | null => (value === null ? null : JSON.stringify(value));

export function mssqlControlSql(schema: string) {
  const t = (name: string): string => `${q(schema)}.${q(name)}`;
  const profiles = t('profiles');
  const status = t('entity_status');
  const checkpoints = t('checkpoints');
  const targetState = t('target_state');
  const history = t('schema_migrations');
  const audit = t('audit_log');
  const partitions = t('copy_partitions');
  const shares = t('organization_shares');

  /** One batch transaction whose body leaves in @written the rows it wrote, answered as [written]. */
  const writtenBatch = (body: string): string => `SET XACT_ABORT ON;
DECLARE @written INT;
BEGIN TRANSACTION;
${body}COMMIT TRANSACTION;
SELECT @written AS [written];`;

  /**
   * A profile's row: UPDATE under the key-range lock, or when there is none INSERT it if profile @p1 exists;
   * @written counts the rows written.
   */
  const updateElseInsert = (row: { table: string; set: string; where: string; columns: string; values: string }) =>
    `UPDATE ${row.table} WITH (UPDLOCK, SERIALIZABLE)
SET ${row.set}
WHERE ${row.where};
SET @written = @@ROWCOUNT;
IF @written = 0
BEGIN
  INSERT INTO ${row.table} (${row.columns})
  SELECT ${row.values}
  FROM ${profiles} AS p
  WHERE p.[id] = @p1;
  SET @written = @@ROWCOUNT;
END;
`;

  /** Writes checkpoint @p1/@p2 (next link @p3, delta link @p4, pages @p5, at @p6); @written counts its rows. */
  const writeCheckpoint = updateElseInsert({
    table: checkpoints,
    set: '[next_link] = @p3, [delta_link] = @p4, [pages_done] = @p5, [updated_at] = @p6',
    where: '[profile_id] = @p1 AND [entity] = @p2',
    columns: CHECKPOINT_COLUMNS,
    values: 'p.[id], @p2, @p3, @p4, @p5, @p6',
  });

  /** Once @written says the progress row was written: adds @p7 rows to entity @p1/@p2's rows copied, at `at`. */
  const addRowsCopied = (at: string) => `IF @written > 0
BEGIN
  UPDATE ${status} WITH (UPDLOCK, SERIALIZABLE)
  SET [rows_copied] = [rows_copied] + @p7, [updated_at] = ${at}
  WHERE [profile_id] = @p1 AND [entity] = @p2;
  IF @@ROWCOUNT = 0
    INSERT INTO ${status} ([profile_id], [entity], [sync_state], [rows_copied], [updated_at])
    VALUES (@p1, @p2, N'NotStarted', @p7, ${at});
END;
`;

  return {
    /** Serialises migrations of this schema across instances; the lock is released with the transaction. */
    migrationLock: (): MssqlStatement =>
      statement(
        `DECLARE @result int;
EXEC @result = sys.sp_getapplock @Resource = @p1, @LockMode = N'Exclusive', @LockOwner = N'Transaction', @LockTimeout = @p2;
SELECT @result AS [result];`,
        ['NVARCHAR(255)', `dvexport.migrate:${schema}`],
        ['INT', MIGRATION_LOCK_TIMEOUT_MS],
      ),

    /** CREATE SCHEMA must be alone in its batch, hence EXEC. */
    createSchema: (): MssqlStatement =>
      statement(`IF SCHEMA_ID(${literal(schema)}) IS NULL EXEC(N'CREATE SCHEMA ${q(schema)}');`),

    createHistory: (): MssqlStatement =>
      statement(`IF OBJECT_ID(${literal(history)}, N'U') IS NULL
CREATE TABLE ${history} (
  [version] INT NOT NULL CONSTRAINT [pk_schema_migrations] PRIMARY KEY,
  [name] NVARCHAR(200) NOT NULL,
  [applied_at] DATETIME2(3) NOT NULL CONSTRAINT [df_schema_migrations_applied_at] DEFAULT SYSUTCDATETIME()
);`),

    appliedVersions: (): MssqlStatement => statement(`SELECT [version], [name] FROM ${history} ORDER BY [version];`),

    recordMigration: (version: number, name: string): MssqlStatement =>
      statement(
        `INSERT INTO ${history} ([version], [name]) VALUES (@p1, @p2);`,
        ['INT', version],
        ['NVARCHAR(200)', name],
      ),

    insertProfile: (id: string, definition: ProfileDefinition, state: ProfileState, now: Date): MssqlStatement =>
      statement(
        `${SAVED_PROFILE}
INSERT INTO ${profiles} (${PROFILE_COLUMNS})
OUTPUT ${prefixed('INSERTED')} INTO @saved
VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p6);
SELECT ${PROFILE_COLUMNS} FROM @saved;`,
        ['UNIQUEIDENTIFIER', id],
        ['NVARCHAR(200)', definition.name],
        ['NVARCHAR(36)', definition.organizationId],
        ['NVARCHAR(16)', state],
        ['NVARCHAR(MAX)', JSON.stringify(definition)],
        ['DATETIME2(3)', now],
      ),

    selectProfiles: (): MssqlStatement =>
      statement(`SELECT ${PROFILE_COLUMNS} FROM ${profiles} ORDER BY [created_on], [id];`),

    selectProfile: (id: string): MssqlStatement =>
      statement(`SELECT ${PROFILE_COLUMNS} FROM ${profiles} WHERE [id] = @p1;`, ['UNIQUEIDENTIFIER', id]),

    /** Replaces the definition and forgets status and checkpoints of tables the profile no longer has. */
    replaceProfile: (id: string, definition: ProfileDefinition, tables: string[], now: Date): MssqlStatement =>
      statement(
        `SET XACT_ABORT ON;
BEGIN TRANSACTION;
DECLARE @replaced TABLE (
  [id] UNIQUEIDENTIFIER, [name] NVARCHAR(200), [organization_id] NVARCHAR(36), [state] NVARCHAR(16),
  [definition] NVARCHAR(MAX), [created_on] DATETIME2(3), [modified_on] DATETIME2(3)
);
UPDATE ${profiles}
SET [name] = @p2, [organization_id] = @p3, [definition] = @p4, [modified_on] = @p5
OUTPUT ${prefixed('INSERTED')} INTO @replaced
WHERE [id] = @p1;
DELETE FROM ${status}
WHERE [profile_id] IN (SELECT [id] FROM @replaced) AND [entity] NOT IN (SELECT [value] FROM OPENJSON(@p6));
DELETE FROM ${checkpoints}
WHERE [profile_id] IN (SELECT [id] FROM @replaced) AND [entity] NOT IN (SELECT [value] FROM OPENJSON(@p6));
COMMIT TRANSACTION;
SELECT ${PROFILE_COLUMNS} FROM @replaced;`,
        ['UNIQUEIDENTIFIER', id],
        ['NVARCHAR(200)', definition.name],
        ['NVARCHAR(36)', definition.organizationId],
        ['NVARCHAR(MAX)', JSON.stringify(definition)],
        ['DATETIME2(3)', now],
        ['NVARCHAR(MAX)', JSON.stringify(tables)],
      ),

    /** Status rows and checkpoints go with it (ON DELETE CASCADE). */
    deleteProfile: (id: string): MssqlStatement =>
      statement(
        `DECLARE @deleted TABLE ([id] UNIQUEIDENTIFIER);
DELETE FROM ${profiles} OUTPUT DELETED.[id] INTO @deleted WHERE [id] = @p1;
SELECT [id] FROM @deleted;`,
        ['UNIQUEIDENTIFIER', id],
      ),

    updateProfileState: (id: string, state: ProfileState, now: Date): MssqlStatement =>
      statement(
        `${SAVED_PROFILE}
UPDATE ${profiles}
SET [state] = @p2, [modified_on] = @p3
OUTPUT ${prefixed('INSERTED')} INTO @saved
WHERE [id] = @p1;
SELECT ${PROFILE_COLUMNS} FROM @saved;`,
        ['UNIQUEIDENTIFIER', id],
        ['NVARCHAR(16)', state],
        ['DATETIME2(3)', now],
      ),

    selectActiveProfiles: (organizationId: string): MssqlStatement =>
      statement(
        `SELECT ${PROFILE_COLUMNS} FROM ${profiles}
WHERE [organization_id] = LOWER(@p1) AND [state] = N'Active'
ORDER BY [created_on], [id];`,
        ['NVARCHAR(36)', organizationId],
      ),

    /** One row per table of the profile, in its order; the status columns are null where no row exists yet. */
    selectEntityStatuses: (profileId: string): MssqlStatement =>
      statement(
        `SELECT e.[value] AS [entity], ${STATUS_COLUMNS}
FROM ${profiles} AS p
CROSS APPLY (
  SELECT 0 AS [list], CAST([key] AS INT) AS [position], [value] FROM OPENJSON(p.[definition], N'$.entities')
  UNION ALL
  SELECT 1, CAST([key] AS INT), [value] FROM OPENJSON(p.[definition], N'$.relationships')
) AS e
LEFT JOIN ${status} AS s ON s.[profile_id] = p.[id] AND s.[entity] = e.[value]
WHERE p.[id] = @p1
ORDER BY e.[list], e.[position];`,
        ['UNIQUEIDENTIFIER', profileId],
      ),

    /**
     * Applies a patch: each nullable field travels as (given?, value) so NULL can clear it; rows_copied is
     * overwritten when given, then incremented in place. Answers [written] = 0 when the profile is gone.
     */
    upsertSyncState: (profileId: string, entity: string, patch: SyncStatePatch, now: Date): MssqlStatement =>
      statement(
        writtenBatch(
          updateElseInsert({
            table: status,
            set: `[sync_state] = COALESCE(@p3, [sync_state]),
  [rows_copied] = COALESCE(@p4, [rows_copied]) + @p5,
  [rows_estimated] = CASE WHEN @p6 = 1 THEN @p7 ELSE [rows_estimated] END,
  [sync_started_at] = CASE WHEN @p8 = 1 THEN @p9 ELSE [sync_started_at] END,
  [sync_completed_at] = CASE WHEN @p10 = 1 THEN @p11 ELSE [sync_completed_at] END,
  [last_error] = CASE WHEN @p12 = 1 THEN @p13 ELSE [last_error] END,
  [updated_at] = @p14`,
            where: '[profile_id] = @p1 AND [entity] = @p2',
            columns:
              '[profile_id], [entity], [sync_state], [rows_copied], [rows_estimated], [sync_started_at], [sync_completed_at], [last_error], [updated_at]',
            values: `p.[id], @p2, COALESCE(@p3, N'NotStarted'), COALESCE(@p4, 0) + @p5, @p7, @p9, @p11, @p13, @p14`,
          }),
        ),
        ['UNIQUEIDENTIFIER', profileId],
        ['NVARCHAR(128)', entity],
        ['NVARCHAR(16)', patch.syncState ?? null],
        ['BIGINT', patch.rowsCopied ?? null],
        ['BIGINT', patch.rowsCopiedDelta ?? 0],
        ['BIT', given(patch, 'rowsEstimated')],
        ['BIGINT', patch.rowsEstimated ?? null],
        ['BIT', given(patch, 'syncStartedAt')],
        ['DATETIME2(3)', patch.syncStartedAt ?? null],
        ['BIT', given(patch, 'syncCompletedAt')],
        ['DATETIME2(3)', patch.syncCompletedAt ?? null],
        ['BIT', given(patch, 'lastError')],
        ['NVARCHAR(MAX)', patch.lastError ?? null],
        ['DATETIME2(3)', now],
      ),

    /**
     * Adds the increments in place; last_applied_at keeps the later time and the last lag follows it, so an
     * out-of-order report cannot move either backwards. The mean lag is a running sum and count.
     */
    upsertMetrics: (profileId: string, entity: string, m: MetricsIncrement, now: Date): MssqlStatement =>
      statement(
        writtenBatch(
          updateElseInsert({
            table: status,
            set: `[received] = [received] + @p3,
  [applied] = [applied] + @p4,
  [stale] = [stale] + @p5,
  [failed] = [failed] + @p6,
  [last_applied_at] = CASE
    WHEN @p7 IS NOT NULL AND ([last_applied_at] IS NULL OR @p7 > [last_applied_at]) THEN @p7
    ELSE [last_applied_at]
  END,
  [last_lag_ms] = CASE
    WHEN @p8 IS NULL THEN [last_lag_ms]
    WHEN [last_applied_at] IS NULL OR @p7 IS NULL OR @p7 >= [last_applied_at] THEN @p8
    ELSE [last_lag_ms]
  END,
  [lag_sum_ms] = [lag_sum_ms] + COALESCE(@p8, 0),
  [lag_count] = [lag_count] + CASE WHEN @p8 IS NULL THEN 0 ELSE 1 END,
  [updated_at] = @p9`,
            where: '[profile_id] = @p1 AND [entity] = @p2',
            columns:
              '[profile_id], [entity], [received], [applied], [stale], [failed], [last_applied_at], [last_lag_ms], [lag_sum_ms], [lag_count], [updated_at]',
            values:
              'p.[id], @p2, @p3, @p4, @p5, @p6, @p7, @p8, COALESCE(@p8, 0), CASE WHEN @p8 IS NULL THEN 0 ELSE 1 END, @p9',
          }),
        ),
        ['UNIQUEIDENTIFIER', profileId],
        ['NVARCHAR(128)', entity],
        ['BIGINT', m.received],
        ['BIGINT', m.applied],
        ['BIGINT', m.stale],
        ['BIGINT', m.failed],
        ['DATETIME2(3)', m.lastAppliedAt],
        ['BIGINT', m.lagMs],
        ['DATETIME2(3)', now],
      ),

    selectCheckpoint: (profileId: string, entity: string): MssqlStatement =>
      statement(
        `SELECT ${CHECKPOINT_COLUMNS} FROM ${checkpoints} WHERE [profile_id] = @p1 AND [entity] = @p2;`,
        ['UNIQUEIDENTIFIER', profileId],
        ['NVARCHAR(128)', entity],
      ),

    upsertCheckpoint: (c: Omit<SyncCheckpoint, 'updatedAt'>, now: Date): MssqlStatement =>
      statement(writtenBatch(writeCheckpoint), ...checkpointParams(c, now)),

    /** The checkpoint and the rows copied move together: one transaction, answering the status rows written. */
    saveCopyProgress: (c: Omit<SyncCheckpoint, 'updatedAt'>, rowsCopied: number, now: Date): MssqlStatement =>
      statement(writtenBatch(`${writeCheckpoint}${addRowsCopied('@p6')}`), ...checkpointParams(c, now), [
        'BIGINT',
        rowsCopied,
      ]),

    /** Without an entity: every checkpoint of the profile. */
    deleteCheckpoints: (profileId: string, entity: string | null): MssqlStatement =>
      statement(
        `DELETE FROM ${checkpoints} WHERE [profile_id] = @p1 AND (@p2 IS NULL OR [entity] = @p2);`,
        ['UNIQUEIDENTIFIER', profileId],
        ['NVARCHAR(128)', entity],
      ),

    /** The checkpoint and the partitions (JSON @p7) in one transaction; answers the checkpoint rows written. */
    startPartitionedCopy: (c: Omit<SyncCheckpoint, 'updatedAt'>, ranges: PartitionRange[], now: Date): MssqlStatement =>
      statement(
        writtenBatch(`${writeCheckpoint}IF @written > 0
  INSERT INTO ${partitions} (${PARTITION_COLUMNS})
  SELECT @p1, @p2, x.[partition_no], x.[range_after], x.[range_up_to], NULL, 0, 0, 0, @p6
  FROM OPENJSON(@p7) WITH (
    [partition_no] INT '$.partition_no', [range_after] NVARCHAR(36) '$.range_after', [range_up_to] NVARCHAR(36) '$.range_up_to'
  ) AS x;
`),
        ...checkpointParams(c, now),
        [
          'NVARCHAR(MAX)',
          JSON.stringify(ranges.map((r) => ({ partition_no: r.partition, range_after: r.after, range_up_to: r.upTo }))),
        ],
      ),

    selectPartitions: (profileId: string, entity: string | null): MssqlStatement =>
      statement(
        `SELECT ${PARTITION_COLUMNS} FROM ${partitions}
WHERE [profile_id] = @p1 AND (@p2 IS NULL OR [entity] = @p2)
ORDER BY [entity], [partition_no];`,
        ['UNIQUEIDENTIFIER', profileId],
        ['NVARCHAR(128)', entity],
      ),

    /** The partition's page and the entity's rows copied move together: one transaction, answering [written]. */
    savePartitionProgress: (p: PartitionProgress, rowsCopied: number, now: Date): MssqlStatement =>
      statement(
        writtenBatch(`UPDATE ${partitions} WITH (UPDLOCK, SERIALIZABLE)
SET [last_id] = @p4, [pages_done] = @p5, [done] = @p6, [rows_copied] = [rows_copied] + @p7, [updated_at] = @p8
WHERE [profile_id] = @p1 AND [entity] = @p2 AND [partition_no] = @p3;
SET @written = @@ROWCOUNT;
${addRowsCopied('@p8')}`),
        ['UNIQUEIDENTIFIER', p.profileId],
        ['NVARCHAR(128)', p.entity],
        ['INT', p.partition],
        ['NVARCHAR(36)', p.lastId],
        ['INT', p.pagesDone],
        ['BIT', p.done],
        ['BIGINT', rowsCopied],
        ['DATETIME2(3)', now],
      ),

    /** Narrows the partition to (…, @p4] and adds (@p4, @p6] as partition @p5, in one transaction. */
    splitPartition: (
      split: Pick<CopyPartition, 'profileId' | 'entity' | 'partition' | 'upTo'> & { at: string; added: number },
      now: Date,
    ): MssqlStatement =>
      statement(
        writtenBatch(`UPDATE ${partitions} WITH (UPDLOCK, SERIALIZABLE)
SET [range_up_to] = @p4, [updated_at] = @p7
WHERE [profile_id] = @p1 AND [entity] = @p2 AND [partition_no] = @p3;
SET @written = @@ROWCOUNT;
IF @written > 0
  INSERT INTO ${partitions} (${PARTITION_COLUMNS})
  VALUES (@p1, @p2, @p5, @p4, @p6, NULL, 0, 0, 0, @p7);
`),
        ['UNIQUEIDENTIFIER', split.profileId],
        ['NVARCHAR(128)', split.entity],
        ['INT', split.partition],
        ['NVARCHAR(36)', split.at],
        ['INT', split.added],
        ['NVARCHAR(36)', split.upTo],
        ['DATETIME2(3)', now],
      ),

    /** `since` stays while the condition is the same one. Answers `[written]`. */
    upsertTargetState: (profileId: string, r: TargetStateReport, now: Date): MssqlStatement =>
      statement(
        writtenBatch(
          updateElseInsert({
            table: targetState,
            set: `[since] = CASE WHEN [state] = @p2 THEN [since] ELSE @p5 END,
  [state] = @p2, [reason] = @p3, [action] = @p4, [updated_at] = @p5`,
            where: '[profile_id] = @p1',
            columns: '[profile_id], [state], [reason], [action], [since], [updated_at]',
            values: 'p.[id], @p2, @p3, @p4, @p5, @p5',
          }),
        ),
        ['UNIQUEIDENTIFIER', profileId],
        ['NVARCHAR(16)', r.state],
        ['NVARCHAR(MAX)', r.reason],
        ['NVARCHAR(MAX)', r.action],
        ['DATETIME2(3)', now],
      ),

    deleteTargetState: (profileId: string): MssqlStatement =>
      statement(`DELETE FROM ${targetState} WHERE [profile_id] = @p1;`, ['UNIQUEIDENTIFIER', profileId]),

    selectTargetState: (profileId: string): MssqlStatement =>
      statement(
        `SELECT [state], [reason], [action], [since], [updated_at] FROM ${targetState} WHERE [profile_id] = @p1;`,
        ['UNIQUEIDENTIFIER', profileId],
      ),

    /**
     * Keeps instance @p2's claim on organization @p1 alive until @p3 and drops the claims that expired by @p4;
     * answers how many instances hold one (this one included).
     */
    claimOrganizationShare: (organization: string, instanceId: string, expiresAt: Date, now: Date): MssqlStatement =>
      statement(
        `SET XACT_ABORT ON;
DELETE FROM ${shares} WHERE [organization] = @p1 AND [instance_id] <> @p2 AND [expires_at] <= @p4;
UPDATE ${shares} SET [expires_at] = @p3 WHERE [organization] = @p1 AND [instance_id] = @p2;
IF @@ROWCOUNT = 0
  INSERT INTO ${shares} ([organization], [instance_id], [expires_at]) VALUES (@p1, @p2, @p3);
SELECT COUNT(*) AS [holders] FROM ${shares} WHERE [organization] = @p1 AND [expires_at] > @p4;`,
        ['NVARCHAR(255)', organization],
        ['NVARCHAR(36)', instanceId],
        ['DATETIME2(3)', expiresAt],
        ['DATETIME2(3)', now],
      ),

    releaseOrganizationShare: (organization: string, instanceId: string): MssqlStatement =>
      statement(
        `DELETE FROM ${shares} WHERE [organization] = @p1 AND [instance_id] = @p2;`,
        ['NVARCHAR(255)', organization],
        ['NVARCHAR(36)', instanceId],
      ),

    selectDeltaCheckpoints: (): MssqlStatement =>
      statement(
        `SELECT ${CHECKPOINT_COLUMNS} FROM ${checkpoints} WHERE [delta_link] IS NOT NULL ORDER BY [profile_id], [entity];`,
      ),

    insertAudit: (id: string, record: AuditRecord, at: Date): MssqlStatement =>
      statement(
        `INSERT INTO ${audit} (${AUDIT_COLUMNS.map(q).join(', ')})
OUTPUT ${AUDIT_COLUMNS.map((c) => `INSERTED.${q(c)}`).join(', ')}
VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p9, @p10);`,
        ['UNIQUEIDENTIFIER', id],
        ['DATETIME2(3)', at],
        ['NVARCHAR(200)', record.actor],
        ['NVARCHAR(16)', record.actorKind],
        ['NVARCHAR(16)', record.action],
        ['UNIQUEIDENTIFIER', record.profileId],
        ['NVARCHAR(200)', record.profileName],
        ['NVARCHAR(MAX)', jsonOrNull(record.before)],
        ['NVARCHAR(MAX)', jsonOrNull(record.after)],
        ['NVARCHAR(MAX)', jsonOrNull(record.details)],
      ),

    /** Newest first; a null filter matches every row. */
    selectAudit: (query: AuditQuery): MssqlStatement =>
      statement(
        `SELECT ${AUDIT_COLUMNS.map(q).join(', ')} FROM ${audit}
WHERE (@p1 IS NULL OR [profile_id] = @p1)
  AND (@p2 IS NULL OR [at] >= @p2)
  AND (@p3 IS NULL OR [at] <= @p3)
ORDER BY [at] DESC, [id] DESC
OFFSET @p5 ROWS FETCH NEXT @p4 ROWS ONLY;`,
        ['UNIQUEIDENTIFIER', query.profileId ?? null],
        ['DATETIME2(3)', query.from ?? null],
        ['DATETIME2(3)', query.to ?? null],
        ['INT', query.limit],
        ['INT', query.offset],
      ),
  };
}

export type MssqlControlSql = ReturnType<typeof mssqlControlSql>;
