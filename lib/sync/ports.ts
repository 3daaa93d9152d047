import type { ChangeEvent } from '../change/change-event.js';
import type { EntityMetadata as DataverseEntityMetadata, RelationshipMetadata } from '../dataverse/webapi/metadata.js';
import type { Logger } from '../log.js';
import type { ControlStore } from '../profiles/control-store.js';
import type { ExportProfile } from '../profiles/schema.js';
import type { ApplyOptions, ApplyOutcome, EntityMetadata as SinkEntityMetadata } from '../sink/index.js';
import type { FailureEntry, FailureRange } from '../storage/failure-log.js';
import type { PartitionSettings } from './partitioned-copy.js';

/**
 * The narrow views initial sync, reconcile and resync have of what they compose: the control store, a
 * Dataverse Web API client, a target sink and the failure log. The runtime passes the real ones; nothing
 * here knows how they are built.
 */

/** The control-store calls the sync steps make. */
export type SyncStore = Pick<
  ControlStore,
  | 'getProfile'
  | 'listProfiles'
  | 'entityStatuses'
  | 'updateSyncState'
  | 'recordMetrics'
  | 'getCheckpoint'
  | 'saveCheckpoint'
  | 'saveCopyProgress'
  | 'clearCheckpoints'
  | 'startPartitionedCopy'
  | 'copyPartitions'
  | 'savePartitionProgress'
  | 'splitPartition'
>;

/** One page of an entity set or of a delta, its rows already ChangeEvents. */
export interface SourcePage {
  rows: ChangeEvent[];
  /** The next page of this read; absent on the last page. */
  nextLink?: string;
  /** On the last page of a change-tracked read: where the next delta read starts. */
  deltaLink?: string;
}

export interface ReadPagesOptions {
  pageSize?: number;
  /** Ask for change tracking, so the last page carries a delta link. */
  trackChanges?: boolean;
  /** Resume from a saved `@odata.nextLink` instead of the first page. */
  startLink?: string;
}

/** The Web API reads the sync steps make (lib/dataverse/webapi/client.ts implements them). */
export interface DataverseSource {
  /** Cached per client; `refresh` reads it again. */
  entityMetadata(entity: string, options?: { refresh?: boolean }): Promise<DataverseEntityMetadata>;
  /** An N:N relationship by schema name: its intersect entity and the two sides. */
  relationshipMetadata(schemaName: string): Promise<RelationshipMetadata>;
  readPages(entity: string, options: ReadPagesOptions): AsyncIterable<SourcePage>;
  /**
   * Follows a delta link page by page, with today's exported columns if asked; throws DELTA_TOKEN_EXPIRED when
   * Dataverse no longer knows it.
   */
  readDelta(deltaLink: string, options?: { exportedColumns?: boolean }): AsyncIterable<SourcePage>;
  /** The record as it is now; undefined when it no longer exists. */
  retrieve(entity: string, id: string): Promise<ChangeEvent | undefined>;
  /** Rows in the table; undefined when Dataverse cannot tell (no snapshot count, and more than `$count` counts). */
  estimateCount(entity: string): Promise<number | undefined>;
  /** The first and last primary id in SQL Server's order; undefined for an empty table. */
  idBounds(entity: string): Promise<{ first: string; last: string } | undefined>;
  /** One keyset page of the rows whose primary id is in (after, upTo], in id order. */
  readIdRange(
    entity: string,
    options: { after?: string | null; upTo?: string | null; pageSize?: number },
  ): Promise<{ rows: ChangeEvent[]; more: boolean }>;
  /** One page of a change-tracked read of primary ids; its last page's delta link brings whole rows. */
  readTrackedIds(
    entity: string,
    options: { link?: string; pageSize?: number },
  ): Promise<{ rows: number; nextLink?: string; deltaLink?: string }>;
}

/** The sink calls the sync steps make: version-guarded batches and the metadata side tables. */
export interface SyncSink {
  applyBatch(changes: ChangeEvent[], options?: ApplyOptions): Promise<ApplyOutcome[]>;
  writeMetadata(metadata: SinkEntityMetadata): Promise<void>;
  /** The entity table's column names as the target folds them (to notice attributes Dataverse deleted). */
  readColumns?(entity: string): Promise<string[] | undefined>;
}

export interface SyncFailureLog {
  writeFailures(profileId: string, entries: FailureEntry[]): Promise<unknown>;
  listFailures(profileId: string, options?: FailureRange & { limit?: number }): Promise<FailureEntry[]>;
  deleteFailureEntries(
    profileId: string,
    predicate: (entry: FailureEntry) => boolean,
    range?: FailureRange,
  ): Promise<number>;
}

export interface SyncDeps {
  store: SyncStore;
  dataverseFor(profile: ExportProfile): DataverseSource;
  sinkFor(profile: ExportProfile): Promise<SyncSink>;
  failureLog: SyncFailureLog;
  logger: Logger;
  /** Rows per Web API page (Dataverse allows up to 5,000). */
  pageSize?: number;
  /** When and how a large entity is read as parallel id ranges. */
  partitions?: PartitionSettings;
  now?: () => Date;
}

/** The runtime fields {@link syncDepsFromRuntime} reads (lib/runtime.ts's Runtime has them). */
export interface SyncRuntime {
  store: SyncStore;
  dataverseFor(profile: ExportProfile): DataverseSource;
  sinks: { sinkFor(profile: ExportProfile): Promise<SyncSink> };
  failureLog: SyncFailureLog;
  logger: Logger;
  /** This instance's claims on organizations' Dataverse concurrency, shared with other instances. */
  shares?: PartitionSettings['shares'];
}

export function syncDepsFromRuntime(runtime: SyncRuntime, overrides: Partial<SyncDeps> = {}): SyncDeps {
  return {
    store: runtime.store,
    dataverseFor: (profile) => runtime.dataverseFor(profile),
    sinkFor: (profile) => runtime.sinks.sinkFor(profile),
    failureLog: runtime.failureLog,
    logger: runtime.logger,
    ...(runtime.shares ? { partitions: { shares: runtime.shares } } : {}),
    ...overrides,
  };
}
