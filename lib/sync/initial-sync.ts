/**
 * The steps of an initial sync (docs/architecture.md §1), as plain functions the orchestration calls as
 * activities. Every page is one version-guarded applyBatch, and the checkpoint (next link, delta link,
 * pages done) is saved after every page, so a crash anywhere re-reads at most the page in flight.
 */
import pLimit from 'p-limit';
import { AppError, toAppError } from '../errors.js';
import type { SyncCheckpoint } from '../profiles/control-store.js';
import type { ExportProfile } from '../profiles/schema.js';
import { applyChanges } from './apply-read-changes.js';
import { EntitySchemaCache } from './entity-schema.js';
import { copyPartitions, type PartitionedTable, planPartitions, worthPartitioning } from './partitioned-copy.js';
import type { SyncDeps } from './ports.js';
import { toAssociations } from './relationship-rows.js';
import { attributeSpecs, toSinkMetadata } from './target-metadata.js';

/** Dataverse's largest page; fewer, larger pages mean fewer round trips and set-based writes. */
export const DEFAULT_PAGE_SIZE = 5000;
/** Entities a plan prepares at once (each asks Dataverse for its metadata, count and, when large, bounds). */
export const PLAN_CONCURRENCY = 4;

export interface PlanOptions {
  /** Copy every entity again from the first page, Completed ones included. */
  full?: boolean;
}

export interface CopyResult {
  /** The entity's last page has been applied; its checkpoint holds the delta link for reconcile. */
  done: boolean;
  /** Rows read and handed to the sink by this call. */
  rows: number;
  pages: number;
  /** The profile is no longer active: the copy stops where it is (its checkpoint stays). */
  stopped?: boolean;
  /** A failure retrying cannot fix (set by {@link copyStep}); the entity is to be marked Failed. */
  error?: string;
}

export async function activeProfile(deps: Pick<SyncDeps, 'store'>, profileId: string): Promise<ExportProfile> {
  const profile = await deps.store.getProfile(profileId);
  if (!profile) {
    throw new AppError('PROFILE_NOT_FOUND', `Export profile '${profileId}' does not exist; it may have been deleted.`, {
      details: [{ field: 'profileId', message: 'unknown profile', value: profileId }],
    });
  }
  return profile;
}

/** What a profile copies: its entities, then its N:N relationships (their intersect tables). */
export function copyTargets(profile: ExportProfile): string[] {
  return [...profile.entities, ...profile.relationships.filter((r) => !profile.entities.includes(r))];
}

export function isRelationship(profile: ExportProfile, name: string): boolean {
  return profile.relationships.includes(name) && !profile.entities.includes(name);
}

/**
 * Chooses what to copy (all with `full`, else what is not yet Completed), writes the entities' metadata
 * side tables, and marks each InProgress with the source's row estimate. A resumed entity keeps its
 * checkpoint and its rows copied so far.
 */
export async function planInitialSync(deps: SyncDeps, profileId: string, options: PlanOptions = {}): Promise<string[]> {
  const profile = await activeProfile(deps, profileId);
  const statuses = new Map((await deps.store.entityStatuses(profileId)).map((s) => [s.entity, s]));
  const entities = copyTargets(profile).filter((e) => options.full || statuses.get(e)?.syncState !== 'Completed');
  if (entities.length === 0) return [];
  // Against Dataverse each entity's plan takes a second or more (metadata, count, the tracked read's first
  // page): a few are prepared at once, and a transient failure is thrown once every started one has ended.
  const limit = pLimit(PLAN_CONCURRENCY);
  const prepared = await Promise.allSettled(
    entities.map((entity) =>
      limit(async () => {
        try {
          await prepareEntity(deps, profile, entity, options);
          return true;
        } catch (err) {
          const error = toAppError(err);
          if (error.transient) throw error;
          // One table Dataverse refuses (unknown, not readable) must not keep the others from being copied.
          await failEntity(deps, profileId, entity, `${error.code}: ${error.message}`);
          return false;
        }
      }),
    ),
  );
  const failed = prepared.find((p) => p.status === 'rejected');
  if (failed) throw failed.reason;
  const planned = entities.filter((_, i) => prepared[i].status === 'fulfilled' && prepared[i].value);
  deps.logger.info('initial sync planned', { profileId, entities: planned, full: Boolean(options.full) });
  return planned;
}

/** Metadata side tables, the row estimate and the InProgress mark of one entity (or relationship). */
async function prepareEntity(deps: SyncDeps, profile: ExportProfile, entity: string, options: PlanOptions) {
  const now = deps.now ?? (() => new Date());
  const source = deps.dataverseFor(profile);
  if (options.full) await deps.store.clearCheckpoints(profile.id, entity);
  // The table counted and, when large, partitioned: a relationship's intersect entity.
  let table = entity;
  if (isRelationship(profile, entity)) {
    table = (await source.relationshipMetadata(entity)).intersectEntityName;
  } else {
    const sink = await deps.sinkFor(profile);
    await sink.writeMetadata(toSinkMetadata(await source.entityMetadata(entity)));
  }
  const estimate = await source.estimateCount(table);
  const fresh = options.full || !isCopyCheckpoint(await deps.store.getCheckpoint(profile.id, entity));
  await deps.store.updateSyncState(profile.id, entity, {
    syncState: 'InProgress',
    rowsEstimated: estimate ?? null,
    syncCompletedAt: null,
    lastError: null,
    ...(fresh ? { rowsCopied: 0, syncStartedAt: now() } : {}),
  });
  // A large entity, or N:N relationship by its intersect table, is read as parallel id ranges (partitioned-copy.ts).
  if (fresh) {
    const pageSize = deps.pageSize ?? DEFAULT_PAGE_SIZE;
    if (worthPartitioning(estimate, deps.partitions?.minRows)) {
      await deps.store.clearCheckpoints(profile.id, entity);
      await planPartitions(deps, profile, { entity, table }, estimate, pageSize);
    }
  }
}

/**
 * Copies up to `maxPages` pages of one entity: of each of its partitions when its plan partitioned it, else
 * from the saved next link or, without a checkpoint, from the first page with change tracking (so the last
 * page yields the delta link reconcile follows).
 */
export async function copyEntityPages(
  deps: SyncDeps,
  profileId: string,
  entity: string,
  maxPages: number,
): Promise<CopyResult> {
  const profile = await activeProfile(deps, profileId);
  const log = deps.logger.child({ profileId, entity });
  if (profile.state !== 'Active') {
    log.info('initial sync stopped: profile inactive');
    return { done: false, rows: 0, pages: 0, stopped: true };
  }
  const partitioned = (await deps.store.copyPartitions(profileId, entity)).length > 0;
  const saved = await deps.store.getCheckpoint(profileId, entity);
  // A checkpoint without pages copied is reconcile's delta baseline, not a place in this copy.
  const checkpoint = isCopyCheckpoint(saved) ? saved : undefined;
  if (!partitioned && checkpoint && !checkpoint.nextLink) return { done: true, rows: 0, pages: 0 };

  const now = deps.now ?? (() => new Date());
  const source = deps.dataverseFor(profile);
  const sink = await deps.sinkFor(profile);
  const relationship = isRelationship(profile, entity) ? await source.relationshipMetadata(entity) : undefined;
  const copied: PartitionedTable = relationship
    ? {
        entity,
        table: relationship.intersectEntityName,
        toChanges: (rows, readTime) => toAssociations(rows, relationship, readTime).changes,
      }
    : {
        entity,
        table: entity,
        toChanges: (rows) => rows,
        options: {
          attributeSpecs: { [entity]: attributeSpecs(await source.entityMetadata(entity)) },
          // A value too long for its column has the metadata read again once before the row fails.
          schema: new EntitySchemaCache(source, log).forProfile(profile),
        },
      };
  if (partitioned) return copyPartitions(deps, profile, copied, maxPages, sink);
  let pagesDone = checkpoint?.pagesDone ?? 0;
  let deltaLink = checkpoint?.deltaLink ?? null;
  const result: CopyResult = { done: false, rows: 0, pages: 0 };
  const pages = source
    .readPages(copied.table, {
      pageSize: deps.pageSize ?? DEFAULT_PAGE_SIZE,
      trackChanges: true,
      startLink: checkpoint?.nextLink ?? undefined,
    })
    [Symbol.asyncIterator]();
  try {
    for (;;) {
      // Taken before the request: a change Dataverse makes after the read is dated later than the page.
      const requestedAt = now().toISOString();
      const next = await pages.next();
      if (next.done) break;
      const page = next.value;
      const tally = await applyChanges(deps, profile, sink, copied.toChanges(page.rows, requestedAt), copied.options);
      pagesDone++;
      deltaLink = page.deltaLink ?? deltaLink;
      const checkpoint = { profileId, entity, nextLink: page.nextLink ?? null, deltaLink, pagesDone };
      await deps.store.saveCopyProgress(checkpoint, page.rows.length);
      if (tally.failed) await deps.store.recordMetrics(profileId, entity, { failed: tally.failed });
      result.rows += page.rows.length;
      result.pages++;
      if (!page.nextLink) {
        result.done = true;
        break;
      }
      if (result.pages >= maxPages) break;
    }
  } finally {
    // Ends the read where it is rather than leaving the generator suspended.
    await pages.return?.();
  }
  log.debug('initial sync pages copied', { ...result, pagesDone });
  return result;
}

/** A checkpoint of a copy under way or done: at least one page applied (reconcile's baselines have none). */
function isCopyCheckpoint(checkpoint: SyncCheckpoint | undefined): checkpoint is SyncCheckpoint {
  return checkpoint !== undefined && checkpoint.pagesDone > 0;
}

/**
 * The copy activity: a transient failure (throttling, an outage) is thrown for Durable's retry policy to
 * ride out; a permanent one (an unknown entity, a refused request) is returned at once, so the entity is
 * marked Failed with its reason instead of being retried for minutes to the same end.
 */
export async function copyStep(
  deps: SyncDeps,
  input: { profileId: string; entity: string; maxPages: number },
): Promise<CopyResult> {
  try {
    return await copyEntityPages(deps, input.profileId, input.entity, input.maxPages);
  } catch (err) {
    const error = toAppError(err);
    if (error.transient) throw error;
    deps.logger.error('initial sync of entity cannot go on', {
      profileId: input.profileId,
      entity: input.entity,
      error,
    });
    return { done: false, rows: 0, pages: 0, error: `${error.code}: ${error.message}` };
  }
}

export async function completeEntity(deps: SyncDeps, profileId: string, entity: string): Promise<void> {
  const now = deps.now ?? (() => new Date());
  await deps.store.updateSyncState(profileId, entity, {
    syncState: 'Completed',
    syncCompletedAt: now(),
    lastError: null,
  });
  deps.logger.info('initial sync of entity completed', { profileId, entity });
}

/** Marks the entity Failed with the reason; its checkpoint stays, so a re-activation resumes it. */
export async function failEntity(deps: SyncDeps, profileId: string, entity: string, reason: string): Promise<void> {
  await deps.store.updateSyncState(profileId, entity, { syncState: 'Failed', lastError: reason });
  deps.logger.error('initial sync of entity failed', { profileId, entity, reason });
}
