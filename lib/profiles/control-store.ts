import type {
  MetricsDelta,
  MetricsRecorder,
  ProfileDirectory,
  TargetStateRecorder,
  TargetStateReport,
} from '../pipeline/ports.js';
import type { AuditTrail } from './audit.js';
import type { ExportProfile, ProfileDefinition, ProfileState } from './schema.js';

/** Initial-sync state of one entity of a profile (docs/architecture.md §3 status). */
export type EntitySyncState = 'NotStarted' | 'Queued' | 'InProgress' | 'Completed' | 'Failed';

/** One row of `GET /api/profiles/{id}/status`: sync progress plus the change counters. */
export interface EntityStatus {
  entity: string;
  syncState: EntitySyncState;
  rowsCopied: number;
  rowsEstimated: number | null;
  syncStartedAt: string | null;
  syncCompletedAt: string | null;
  lastError: string | null;
  received: number;
  applied: number;
  stale: number;
  failed: number;
  lastAppliedAt: string | null;
  /** Lag of the most recent applied batch (apply time minus Dataverse operation time). */
  lastLagMs: number | null;
  /** Running mean of the reported lags: one per `recordMetrics` call carrying `lagMs` (the batch's worst). */
  meanLagMs: number | null;
}

export interface SyncStatePatch {
  syncState?: EntitySyncState;
  rowsEstimated?: number | null;
  /** Adds to rowsCopied (atomic). */
  rowsCopiedDelta?: number;
  /** Overwrites rowsCopied (used when a copy restarts from zero). */
  rowsCopied?: number;
  syncStartedAt?: Date | null;
  syncCompletedAt?: Date | null;
  lastError?: string | null;
}

/** Why a profile's target is not taking its changes, as last seen by the apply pipeline. */
export interface TargetState extends TargetStateReport {
  /** When this condition was first seen (kept while it persists). */
  since: string;
  /** When it was last seen. */
  updatedAt: string;
}

/** Where an entity's initial sync or reconcile stands; saved after every page. */
export interface SyncCheckpoint {
  profileId: string;
  entity: string;
  /** `@odata.nextLink` of the next page to read; null when the copy is complete. */
  nextLink: string | null;
  /** `@odata.deltaLink` for reconcile. */
  deltaLink: string | null;
  pagesDone: number;
  updatedAt: string;
}

/**
 * One range of an entity's primary ids read by a partitioned copy: ids after `after` up to `upTo` in SQL
 * Server's uniqueidentifier order (null: open), read keyset style from `lastId`. Saved after every page.
 */
export interface CopyPartition {
  profileId: string;
  entity: string;
  /** Unique within the entity; a split adds the next free number. */
  partition: number;
  after: string | null;
  upTo: string | null;
  /** The last id applied; null before the first page (the read starts after `after`). */
  lastId: string | null;
  pagesDone: number;
  rowsCopied: number;
  done: boolean;
  updatedAt: string;
}

/** A partition's bounds, as a plan or a split creates it. */
export type PartitionRange = Pick<CopyPartition, 'partition' | 'after' | 'upTo'>;

/** One page of a partition applied: where it stands now. */
export type PartitionProgress = Pick<
  CopyPartition,
  'profileId' | 'entity' | 'partition' | 'lastId' | 'pagesDone' | 'done'
>;

/**
 * The control store: profiles, per-entity status and counters, checkpoints. Implementations for
 * PostgreSQL and Azure SQL apply versioned migrations in `migrate()`; counters are updated atomically
 * in SQL (`x = x + $n`), so concurrent writers never lose an increment.
 */
export interface ControlStore extends ProfileDirectory, MetricsRecorder, TargetStateRecorder, AuditTrail {
  migrate(): Promise<void>;
  createProfile(definition: ProfileDefinition): Promise<ExportProfile>;
  listProfiles(): Promise<ExportProfile[]>;
  getProfile(id: string): Promise<ExportProfile | undefined>;
  /**
   * Replaces the definition; keeps id, state and createdOn. Status rows and checkpoints of entities the new
   * definition drops are removed. Undefined when the id is unknown.
   */
  replaceProfile(id: string, definition: ProfileDefinition): Promise<ExportProfile | undefined>;
  /** Deletes the profile with its status rows and checkpoints. False when the id is unknown. */
  deleteProfile(id: string): Promise<boolean>;
  setProfileState(id: string, state: ProfileState): Promise<ExportProfile | undefined>;
  activeProfilesFor(organizationId: string): Promise<ExportProfile[]>;

  /**
   * One row per entity of the profile, in the profile's entity order, then one per N:N relationship (their
   * changes are counted under the relationship name); missing rows read as NotStarted. [] for an unknown id.
   */
  entityStatuses(profileId: string): Promise<EntityStatus[]>;
  /** Throws PROFILE_NOT_FOUND when the profile does not exist (e.g. deleted while a sync ran). */
  updateSyncState(profileId: string, entity: string, patch: SyncStatePatch): Promise<void>;
  /** Counters for an unknown profile are dropped silently: they are reporting, not data. */
  recordMetrics(profileId: string, entity: string, delta: MetricsDelta): Promise<void>;

  getCheckpoint(profileId: string, entity: string): Promise<SyncCheckpoint | undefined>;
  /** Throws PROFILE_NOT_FOUND when the profile does not exist. */
  saveCheckpoint(checkpoint: Omit<SyncCheckpoint, 'updatedAt'>): Promise<void>;
  /**
   * Saves a copied page's checkpoint and adds its rows to rowsCopied in one statement, so a crash cannot
   * keep one without the other. Throws PROFILE_NOT_FOUND when the profile does not exist.
   */
  saveCopyProgress(checkpoint: Omit<SyncCheckpoint, 'updatedAt'>, rowsCopied: number): Promise<void>;
  /** Removes checkpoints and, with them, the copy partitions of the entity (or of every entity). */
  clearCheckpoints(profileId: string, entity?: string): Promise<void>;
  /**
   * Starts a partitioned copy: the entity's checkpoint (the change-tracked read's first page) and its
   * partitions, saved together. Throws PROFILE_NOT_FOUND when the profile does not exist.
   */
  startPartitionedCopy(checkpoint: Omit<SyncCheckpoint, 'updatedAt'>, partitions: PartitionRange[]): Promise<void>;
  /** The profile's copy partitions (of one entity when given), by entity then partition. */
  copyPartitions(profileId: string, entity?: string): Promise<CopyPartition[]>;
  /**
   * Keeps this instance's claim on an organization's Dataverse concurrency alive for `ttlSeconds` and drops
   * claims that expired; answers how many instances hold one now, this one included.
   */
  claimOrganizationShare(organization: string, instanceId: string, ttlSeconds: number): Promise<number>;
  releaseOrganizationShare(organization: string, instanceId: string): Promise<void>;
  /**
   * Saves a partition's page and adds its rows to the entity's rowsCopied in one statement, so a crash cannot
   * keep one without the other. Throws PROFILE_NOT_FOUND when the partition no longer exists.
   */
  savePartitionProgress(progress: PartitionProgress, rowsCopied: number): Promise<void>;
  /**
   * Ends partition `partition` (whose upper bound is `upTo`) at `at` and adds partition `added` for the rest,
   * (at, upTo], in one statement. Throws PROFILE_NOT_FOUND when the partition no longer exists.
   */
  splitPartition(
    split: Pick<CopyPartition, 'profileId' | 'entity' | 'partition' | 'upTo'> & { at: string; added: number },
  ): Promise<void>;
  /** Every checkpoint with a delta link, for reconcile. */
  listDeltaCheckpoints(): Promise<SyncCheckpoint[]>;

  /** A report for an unknown profile is dropped; `null` clears the profile's target state. */
  recordTargetState(profileId: string, report: TargetStateReport | null): Promise<void>;
  /** Undefined when the target took its last batch (or was never refused). */
  targetState(profileId: string): Promise<TargetState | undefined>;

  close(): Promise<void>;
}
