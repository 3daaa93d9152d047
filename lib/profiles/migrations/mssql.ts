/**
 * Azure SQL control-store schema history (T-SQL). Append new steps; never edit an applied one. Each step is
 * one batch run inside the migration transaction; SQL Server DDL is transactional, so a failed step rolls back.
 */
import type { Migration } from './migration.js';

const q = (name: string): string => `[${name}]`;

export function mssqlMigrations(schema: string): Migration[] {
  const t = (name: string): string => `${q(schema)}.${q(name)}`;
  return [
    {
      version: 1,
      name: 'profiles, entity status, checkpoints',
      sql: `CREATE TABLE ${t('profiles')} (
  [id] UNIQUEIDENTIFIER NOT NULL CONSTRAINT [pk_profiles] PRIMARY KEY,
  [name] NVARCHAR(200) NOT NULL,
  [organization_id] NVARCHAR(36) NOT NULL,
  [state] NVARCHAR(16) NOT NULL CONSTRAINT [ck_profiles_state] CHECK ([state] IN (N'Inactive', N'Active')),
  [definition] NVARCHAR(MAX) NOT NULL CONSTRAINT [ck_profiles_definition] CHECK (ISJSON([definition]) = 1),
  [created_on] DATETIME2(3) NOT NULL,
  [modified_on] DATETIME2(3) NOT NULL,
  INDEX [ix_profiles_organization_state] ([organization_id], [state])
);

CREATE TABLE ${t('entity_status')} (
  [profile_id] UNIQUEIDENTIFIER NOT NULL
    CONSTRAINT [fk_entity_status_profile] REFERENCES ${t('profiles')} ([id]) ON DELETE CASCADE,
  [entity] NVARCHAR(128) NOT NULL,
  [sync_state] NVARCHAR(16) NOT NULL CONSTRAINT [df_entity_status_sync_state] DEFAULT N'NotStarted'
    CONSTRAINT [ck_entity_status_sync_state]
    CHECK ([sync_state] IN (N'NotStarted', N'Queued', N'InProgress', N'Completed', N'Failed')),
  [rows_copied] BIGINT NOT NULL CONSTRAINT [df_entity_status_rows_copied] DEFAULT 0,
  [rows_estimated] BIGINT NULL,
  [sync_started_at] DATETIME2(3) NULL,
  [sync_completed_at] DATETIME2(3) NULL,
  [last_error] NVARCHAR(MAX) NULL,
  [received] BIGINT NOT NULL CONSTRAINT [df_entity_status_received] DEFAULT 0,
  [applied] BIGINT NOT NULL CONSTRAINT [df_entity_status_applied] DEFAULT 0,
  [stale] BIGINT NOT NULL CONSTRAINT [df_entity_status_stale] DEFAULT 0,
  [failed] BIGINT NOT NULL CONSTRAINT [df_entity_status_failed] DEFAULT 0,
  [last_applied_at] DATETIME2(3) NULL,
  [last_lag_ms] BIGINT NULL,
  [lag_sum_ms] BIGINT NOT NULL CONSTRAINT [df_entity_status_lag_sum_ms] DEFAULT 0,
  [lag_count] BIGINT NOT NULL CONSTRAINT [df_entity_status_lag_count] DEFAULT 0,
  [updated_at] DATETIME2(3) NOT NULL,
  CONSTRAINT [pk_entity_status] PRIMARY KEY ([profile_id], [entity])
);

CREATE TABLE ${t('checkpoints')} (
  [profile_id] UNIQUEIDENTIFIER NOT NULL
    CONSTRAINT [fk_checkpoints_profile] REFERENCES ${t('profiles')} ([id]) ON DELETE CASCADE,
  [entity] NVARCHAR(128) NOT NULL,
  [next_link] NVARCHAR(MAX) NULL,
  [delta_link] NVARCHAR(MAX) NULL,
  [pages_done] INT NOT NULL CONSTRAINT [df_checkpoints_pages_done] DEFAULT 0,
  [updated_at] DATETIME2(3) NOT NULL,
  CONSTRAINT [pk_checkpoints] PRIMARY KEY ([profile_id], [entity])
);`,
    },
    {
      version: 2,
      name: 'target state',
      sql: `CREATE TABLE ${t('target_state')} (
  [profile_id] UNIQUEIDENTIFIER NOT NULL CONSTRAINT [pk_target_state] PRIMARY KEY
    CONSTRAINT [fk_target_state_profile] REFERENCES ${t('profiles')} ([id]) ON DELETE CASCADE,
  [state] NVARCHAR(16) NOT NULL
    CONSTRAINT [ck_target_state_state] CHECK ([state] IN (N'unreachable', N'unavailable', N'misconfigured')),
  [reason] NVARCHAR(MAX) NOT NULL,
  [action] NVARCHAR(MAX) NOT NULL,
  [since] DATETIME2(3) NOT NULL,
  [updated_at] DATETIME2(3) NOT NULL
);`,
    },
    {
      version: 3,
      name: 'audit trail',
      // No foreign key to profiles: a deleted profile keeps its trail.
      sql: `CREATE TABLE ${t('audit_log')} (
  [id] UNIQUEIDENTIFIER NOT NULL CONSTRAINT [pk_audit_log] PRIMARY KEY NONCLUSTERED,
  [at] DATETIME2(3) NOT NULL,
  [actor] NVARCHAR(200) NOT NULL,
  [actor_kind] NVARCHAR(16) NOT NULL CONSTRAINT [ck_audit_log_actor_kind] CHECK ([actor_kind] IN (N'principal', N'functionKey')),
  [action] NVARCHAR(16) NOT NULL
    CONSTRAINT [ck_audit_log_action]
    CHECK ([action] IN (N'create', N'replace', N'delete', N'activate', N'deactivate', N'resync')),
  [profile_id] UNIQUEIDENTIFIER NOT NULL,
  [profile_name] NVARCHAR(200) NULL,
  [before_profile] NVARCHAR(MAX) NULL CONSTRAINT [ck_audit_log_before] CHECK (ISJSON([before_profile]) = 1),
  [after_profile] NVARCHAR(MAX) NULL CONSTRAINT [ck_audit_log_after] CHECK (ISJSON([after_profile]) = 1),
  [details] NVARCHAR(MAX) NULL CONSTRAINT [ck_audit_log_details] CHECK (ISJSON([details]) = 1),
  INDEX [ix_audit_log_at] CLUSTERED ([at] DESC, [id] DESC),
  INDEX [ix_audit_log_profile_at] ([profile_id], [at] DESC, [id] DESC)
);`,
    },
    {
      version: 4,
      name: 'copy partitions',
      // Partitions belong to the entity's checkpoint: clearing it (a full copy, an expired token) clears them.
      sql: `CREATE TABLE ${t('copy_partitions')} (
  [profile_id] UNIQUEIDENTIFIER NOT NULL,
  [entity] NVARCHAR(128) NOT NULL,
  [partition_no] INT NOT NULL,
  [range_after] NVARCHAR(36) NULL,
  [range_up_to] NVARCHAR(36) NULL,
  [last_id] NVARCHAR(36) NULL,
  [pages_done] INT NOT NULL CONSTRAINT [df_copy_partitions_pages_done] DEFAULT 0,
  [rows_copied] BIGINT NOT NULL CONSTRAINT [df_copy_partitions_rows_copied] DEFAULT 0,
  [done] BIT NOT NULL CONSTRAINT [df_copy_partitions_done] DEFAULT 0,
  [updated_at] DATETIME2(3) NOT NULL,
  CONSTRAINT [pk_copy_partitions] PRIMARY KEY ([profile_id], [entity], [partition_no]),
  CONSTRAINT [fk_copy_partitions_checkpoint] FOREIGN KEY ([profile_id], [entity])
    REFERENCES ${t('checkpoints')} ([profile_id], [entity]) ON DELETE CASCADE
);`,
    },
    {
      version: 5,
      name: 'organization shares',
      // One row per instance copying from an organization, kept alive by its heartbeat (lib/sync/organization-share.ts).
      sql: `CREATE TABLE ${t('organization_shares')} (
  [organization] NVARCHAR(255) NOT NULL,
  [instance_id] NVARCHAR(36) NOT NULL,
  [expires_at] DATETIME2(3) NOT NULL,
  CONSTRAINT [pk_organization_shares] PRIMARY KEY ([organization], [instance_id])
);`,
    },
  ];
}
