import type { ChangeEvent } from '../change/change-event.js';
import type { ApplyOutcome } from '../sink/apply-outcome.js';
import type { EntitySchemaSource } from '../sink/index.js';
import type { FailureEntry } from '../storage/failure-log.js';

export type { ApplyOutcome } from '../sink/apply-outcome.js';
export type { FailureEntry } from '../storage/failure-log.js';

/**
 * The narrow views the pipeline has of the modules it composes. The control store, the blob store and
 * the sink implement them; tests may pass the real ones or small in-memory versions of these few calls.
 */

/** The part of an export profile the pipeline needs. */
export interface RoutedProfile {
  id: string;
  organizationId: string;
  state: 'Active' | 'Inactive';
  entities: string[];
  relationships?: string[];
  /** Where the profile's organization is (the live path reads its metadata). */
  source?: { url: string };
  target: { kind: 'postgres' | 'mssql'; connectionSecret: string; schema?: string; tablePrefix?: string };
  options: { writeDeleteLog?: boolean; retryCount?: number; retryIntervalSeconds?: number };
}

export interface ProfileDirectory {
  activeProfilesFor(organizationId: string): Promise<RoutedProfile[]>;
  getProfile(id: string): Promise<RoutedProfile | undefined>;
}

export interface ClaimCheckStore {
  put(json: string, meta: { organizationId: string; entity: string }): Promise<{ blobName: string; bytes: number }>;
  get(blobName: string): Promise<string>;
  delete(blobName: string): Promise<void>;
}

export interface FailureLogWriter {
  writeFailures(profileId: string, entries: FailureEntry[]): Promise<void>;
}

export interface TargetSink {
  /** `schema`: Dataverse's metadata, so new columns get their declared types and columns widen. */
  applyBatch(changes: ChangeEvent[], options?: { schema?: EntitySchemaSource }): Promise<ApplyOutcome[]>;
}

/** The metadata of a profile's organization, as the sink asks for it; undefined when it cannot be read. */
export type SchemaSourceFactory = (profile: RoutedProfile) => EntitySchemaSource | undefined;

/** Opens (or reuses) the sink of a profile's target. */
export interface SinkFactory {
  sinkFor(profile: RoutedProfile): Promise<TargetSink>;
}

export interface MetricsDelta {
  received?: number;
  applied?: number;
  stale?: number;
  failed?: number;
  lastAppliedAt?: Date;
  lagMs?: number;
}

export interface MetricsRecorder {
  recordMetrics(profileId: string, entity: string, delta: MetricsDelta): Promise<void>;
}

/** Why a profile's target is not taking its changes; they wait, re-scheduled, until it clears. */
export type TargetCondition = 'unreachable' | 'unavailable' | 'misconfigured';

export interface TargetStateReport {
  state: TargetCondition;
  /** The target's (or the driver's) own words. */
  reason: string;
  /** What an administrator does about it. */
  action: string;
}

/** Where the pipeline notes a target's condition, so status can say why changes wait. */
export interface TargetStateRecorder {
  /** `null`: the target took a batch, nothing is waiting on it. */
  recordTargetState(profileId: string, report: TargetStateReport | null): Promise<void>;
}

/** Where the pipeline notes why one entity's changes wait while the rest of the profile applies. */
export interface EntityConditionRecorder {
  /** `reason` (code and message) on the entity's status; `null`: a batch of the entity applied, it no longer waits. */
  recordEntityCondition(profileId: string, entity: string, reason: string | null): Promise<void>;
}

/** Re-reads a record from the Web API when Dataverse stripped the payload; undefined when it is gone. */
export interface RecordRereader {
  reread(profile: RoutedProfile, change: ChangeEvent): Promise<ChangeEvent | undefined>;
}
