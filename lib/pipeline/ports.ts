import type { ChangeEvent } from '../change/change-event.js';
import type { ApplyOutcome } from '../sink/apply-outcome.js';
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
  applyBatch(changes: ChangeEvent[]): Promise<ApplyOutcome[]>;
}

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

/** Re-reads a record from the Web API when Dataverse stripped the payload; undefined when it is gone. */
export interface RecordRereader {
  reread(profile: RoutedProfile, change: ChangeEvent): Promise<ChangeEvent | undefined>;
}
