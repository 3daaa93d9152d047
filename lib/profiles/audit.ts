/**
 * The audit trail of profile changes: who (a signed-in principal or "function key"), when, what, and the
 * profile before and after. Rows carry the profile id without a foreign key, so a deleted profile keeps its trail.
 */
import type { ExportProfile } from './schema.js';

export const AUDIT_ACTIONS = ['create', 'replace', 'delete', 'activate', 'deactivate', 'resync'] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditRecord {
  actor: string;
  actorKind: 'principal' | 'functionKey';
  action: AuditAction;
  profileId: string;
  profileName: string | null;
  before: ExportProfile | null;
  after: ExportProfile | null;
  /** What else the change reported: dropTables, the initial sync it started, the resync's counts. */
  details: Record<string, unknown> | null;
}

export interface AuditEntry extends AuditRecord {
  id: string;
  at: string;
}

export interface AuditQuery {
  profileId?: string;
  from?: Date;
  to?: Date;
  limit: number;
  offset: number;
}

/** Read and written through the control store. */
export interface AuditTrail {
  recordAudit(record: AuditRecord): Promise<AuditEntry>;
  /** Newest first. */
  listAudit(query: AuditQuery): Promise<AuditEntry[]>;
}

type Row = Record<string, unknown>;

const json = <T>(value: unknown): T | null =>
  value === null || value === undefined ? null : ((typeof value === 'string' ? JSON.parse(value) : value) as T);

export function auditFromRow(row: Row): AuditEntry {
  const at = row.at instanceof Date ? row.at : new Date(String(row.at));
  return {
    id: String(row.id).toLowerCase(),
    at: at.toISOString(),
    actor: String(row.actor),
    actorKind: row.actor_kind === 'functionKey' ? 'functionKey' : 'principal',
    action: String(row.action) as AuditAction,
    profileId: String(row.profile_id).toLowerCase(),
    profileName: row.profile_name === null || row.profile_name === undefined ? null : String(row.profile_name),
    before: json<ExportProfile>(row.before_profile),
    after: json<ExportProfile>(row.after_profile),
    details: json<Record<string, unknown>>(row.details),
  };
}

export const AUDIT_COLUMNS = [
  'id',
  'at',
  'actor',
  'actor_kind',
  'action',
  'profile_id',
  'profile_name',
  'before_profile',
  'after_profile',
  'details',
] as const;
