/**
 * PostgreSQL control-store schema history. Append new steps; never edit an applied one. Each step runs
 * inside the migration transaction (PostgreSQL DDL is transactional), so a failed step leaves nothing behind.
 */
import type { Migration } from './migration.js';

const q = (name: string): string => `"${name}"`;

export function postgresMigrations(schema: string): Migration[] {
  const t = (name: string): string => `${q(schema)}.${q(name)}`;
  return [
    {
      version: 1,
      name: 'profiles, entity status, checkpoints',
      sql: `CREATE TABLE ${t('profiles')} (
  id uuid PRIMARY KEY,
  name text NOT NULL,
  organization_id text NOT NULL,
  state text NOT NULL CHECK (state IN ('Inactive', 'Active')),
  definition jsonb NOT NULL,
  created_on timestamptz NOT NULL,
  modified_on timestamptz NOT NULL
);
CREATE INDEX profiles_organization_state ON ${t('profiles')} (organization_id, state);

CREATE TABLE ${t('entity_status')} (
  profile_id uuid NOT NULL REFERENCES ${t('profiles')} (id) ON DELETE CASCADE,
  entity text NOT NULL,
  sync_state text NOT NULL DEFAULT 'NotStarted'
    CHECK (sync_state IN ('NotStarted', 'Queued', 'InProgress', 'Completed', 'Failed')),
  rows_copied bigint NOT NULL DEFAULT 0,
  rows_estimated bigint,
  sync_started_at timestamptz,
  sync_completed_at timestamptz,
  last_error text,
  received bigint NOT NULL DEFAULT 0,
  applied bigint NOT NULL DEFAULT 0,
  stale bigint NOT NULL DEFAULT 0,
  failed bigint NOT NULL DEFAULT 0,
  last_applied_at timestamptz,
  last_lag_ms bigint,
  lag_sum_ms bigint NOT NULL DEFAULT 0,
  lag_count bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (profile_id, entity)
);

CREATE TABLE ${t('checkpoints')} (
  profile_id uuid NOT NULL REFERENCES ${t('profiles')} (id) ON DELETE CASCADE,
  entity text NOT NULL,
  next_link text,
  delta_link text,
  pages_done integer NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (profile_id, entity)
);
CREATE INDEX checkpoints_delta ON ${t('checkpoints')} (profile_id, entity) WHERE delta_link IS NOT NULL;`,
    },
    {
      version: 2,
      name: 'target state',
      sql: `CREATE TABLE ${t('target_state')} (
  profile_id uuid PRIMARY KEY REFERENCES ${t('profiles')} (id) ON DELETE CASCADE,
  state text NOT NULL CHECK (state IN ('unreachable', 'unavailable', 'misconfigured')),
  reason text NOT NULL,
  action text NOT NULL,
  since timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);`,
    },
    {
      version: 3,
      name: 'audit trail',
      // No foreign key to profiles: a deleted profile keeps its trail.
      sql: `CREATE TABLE ${t('audit_log')} (
  id uuid PRIMARY KEY,
  at timestamptz NOT NULL,
  actor text NOT NULL,
  actor_kind text NOT NULL CHECK (actor_kind IN ('principal', 'functionKey')),
  action text NOT NULL CHECK (action IN ('create', 'replace', 'delete', 'activate', 'deactivate', 'resync')),
  profile_id uuid NOT NULL,
  profile_name text,
  before_profile jsonb,
  after_profile jsonb,
  details jsonb
);
CREATE INDEX audit_log_at ON ${t('audit_log')} (at DESC, id DESC);
CREATE INDEX audit_log_profile_at ON ${t('audit_log')} (profile_id, at DESC, id DESC);`,
    },
    {
      version: 4,
      name: 'copy partitions',
      // Partitions belong to the entity's checkpoint: clearing it (a full copy, an expired token) clears them.
      sql: `CREATE TABLE ${t('copy_partitions')} (
  profile_id uuid NOT NULL,
  entity text NOT NULL,
  partition_no integer NOT NULL,
  range_after text,
  range_up_to text,
  last_id text,
  pages_done integer NOT NULL DEFAULT 0,
  rows_copied bigint NOT NULL DEFAULT 0,
  done boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (profile_id, entity, partition_no),
  FOREIGN KEY (profile_id, entity) REFERENCES ${t('checkpoints')} (profile_id, entity) ON DELETE CASCADE
);`,
    },
    {
      version: 5,
      name: 'organization shares',
      // One row per instance copying from an organization, kept alive by its heartbeat (lib/sync/organization-share.ts).
      sql: `CREATE TABLE ${t('organization_shares')} (
  organization text NOT NULL,
  instance_id text NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (organization, instance_id)
);`,
    },
  ];
}
