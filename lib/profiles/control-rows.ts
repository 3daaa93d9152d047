/**
 * What both control-store dialects share: the schema-name check, the profile-id guard and the mapping of
 * stored rows to the contract's shapes. Drivers differ in what they hand back (pg: bigint as text, jsonb
 * parsed; mssql: uniqueidentifier in upper case, JSON as text), so every reader normalises here.
 */
import { AppError } from '../errors.js';
import type { CopyPartition, EntityStatus, EntitySyncState, SyncCheckpoint, TargetState } from './control-store.js';
import {
  DEFAULT_RETRY_COUNT,
  DEFAULT_RETRY_INTERVAL_SECONDS,
  type ExportProfile,
  type ProfileDefinition,
  type ProfileState,
} from './schema.js';

export const DEFAULT_CONTROL_SCHEMA = 'dvexport';
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** The control store's schema; it becomes an identifier, so only a plain name is accepted. */
export function controlSchemaName(schema: string | undefined): string {
  const name = schema ?? DEFAULT_CONTROL_SCHEMA;
  if (!SCHEMA_NAME.test(name)) {
    throw new AppError(
      'CONFIG_INVALID',
      `control store schema "${name}" is not a plain identifier; use letters, digits and _ (at most 63), starting with a letter or _`,
      { details: [{ field: 'schema', message: 'must match ^[A-Za-z_][A-Za-z0-9_]{0,62}$', value: name }] },
    );
  }
  return name;
}

/** A profile id as stored (lower-case GUID), or undefined when the text cannot be one, so no query is needed. */
export function profileKey(id: string): string | undefined {
  return GUID.test(id) ? id.toLowerCase() : undefined;
}

/** The tables a profile writes, in the order its status is shown: entities, then N:N relationships. */
export function profileTables(definition: Pick<ProfileDefinition, 'entities' | 'relationships'>): string[] {
  return [...definition.entities, ...(definition.relationships ?? [])];
}

/** The definition as stored: organization id in lower case, so routing compares GUIDs case-insensitively. */
export function storedDefinition(definition: ProfileDefinition): ProfileDefinition {
  return {
    name: definition.name,
    organizationId: definition.organizationId.toLowerCase(),
    source: { url: definition.source.url },
    target: { ...definition.target },
    entities: [...definition.entities],
    relationships: [...(definition.relationships ?? [])],
    options: { ...definition.options },
  };
}

type Row = Record<string, unknown>;

const text = (value: unknown): string | null => (value === null || value === undefined ? null : String(value));
const count = (value: unknown): number => (value === null || value === undefined ? 0 : Number(value));
const numberOrNull = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value));
const isoOrNull = (value: unknown): string | null => {
  if (value === null || value === undefined) return null;
  return (value instanceof Date ? value : new Date(String(value))).toISOString();
};
const iso = (value: unknown): string => isoOrNull(value) ?? new Date(0).toISOString();

/** A `profiles` row (id, name, organization_id, state, definition, created_on, modified_on) → ExportProfile. */
export function profileFromRow(row: Row): ExportProfile {
  const raw = row.definition;
  const definition = (typeof raw === 'string' ? JSON.parse(raw) : raw) as Partial<ProfileDefinition>;
  const target = definition.target ?? { kind: 'postgres', connectionSecret: '', schema: '', tablePrefix: '' };
  const options: Partial<ProfileDefinition['options']> = definition.options ?? {};
  // Field order is fixed here (jsonb does not keep it), and defaults back-fill definitions stored before a field existed.
  return {
    id: String(row.id).toLowerCase(),
    name: String(row.name),
    organizationId: String(row.organization_id).toLowerCase(),
    source: { url: definition.source?.url ?? '' },
    target: {
      kind: target.kind,
      connectionSecret: target.connectionSecret,
      schema: target.schema ?? (target.kind === 'mssql' ? 'dbo' : 'public'),
      tablePrefix: target.tablePrefix ?? '',
    },
    entities: [...(definition.entities ?? [])],
    relationships: [...(definition.relationships ?? [])],
    options: {
      writeDeleteLog: options.writeDeleteLog ?? true,
      retryCount: options.retryCount ?? DEFAULT_RETRY_COUNT,
      retryIntervalSeconds: options.retryIntervalSeconds ?? DEFAULT_RETRY_INTERVAL_SECONDS,
      initialSync: options.initialSync ?? true,
      registerWebhook: options.registerWebhook ?? true,
      enableChangeTracking: options.enableChangeTracking ?? false,
    },
    state: String(row.state) as ProfileState,
    createdOn: iso(row.created_on),
    modifiedOn: iso(row.modified_on),
  };
}

/** A status row joined to the profile's table list; columns are null where the entity has no row yet. */
export function statusFromRow(row: Row): EntityStatus {
  const lagCount = count(row.lag_count);
  return {
    entity: String(row.entity),
    syncState: (text(row.sync_state) ?? 'NotStarted') as EntitySyncState,
    rowsCopied: count(row.rows_copied),
    rowsEstimated: numberOrNull(row.rows_estimated),
    syncStartedAt: isoOrNull(row.sync_started_at),
    syncCompletedAt: isoOrNull(row.sync_completed_at),
    lastError: text(row.last_error),
    received: count(row.received),
    applied: count(row.applied),
    stale: count(row.stale),
    failed: count(row.failed),
    lastAppliedAt: isoOrNull(row.last_applied_at),
    lastLagMs: numberOrNull(row.last_lag_ms),
    meanLagMs: lagCount > 0 ? Math.round(count(row.lag_sum_ms) / lagCount) : null,
  };
}

export function checkpointFromRow(row: Row): SyncCheckpoint {
  return {
    profileId: String(row.profile_id).toLowerCase(),
    entity: String(row.entity),
    nextLink: text(row.next_link),
    deltaLink: text(row.delta_link),
    pagesDone: count(row.pages_done),
    updatedAt: iso(row.updated_at),
  };
}

export function partitionFromRow(row: Row): CopyPartition {
  return {
    profileId: String(row.profile_id).toLowerCase(),
    entity: String(row.entity),
    partition: count(row.partition_no),
    after: text(row.range_after),
    upTo: text(row.range_up_to),
    lastId: text(row.last_id),
    pagesDone: count(row.pages_done),
    rowsCopied: count(row.rows_copied),
    done: row.done === true || row.done === 1,
    updatedAt: iso(row.updated_at),
  };
}

export function targetStateFromRow(row: Row): TargetState {
  return {
    state: String(row.state) as TargetState['state'],
    reason: String(row.reason),
    action: String(row.action),
    since: iso(row.since),
    updatedAt: iso(row.updated_at),
  };
}
