/**
 * Reconcile heals what webhooks missed: for every entity whose copy is complete it follows the stored
 * delta link, applies the upserts and deletes it returns through the same version guard, and stores the
 * new delta link. A delta token Dataverse has forgotten sends the entity back to a full copy.
 *
 * A profile activated without an initial sync has no copy and so no delta link: reconcile first takes one
 * (a change-tracked read with nothing applied), and from then on heals it like any other. Its expired token
 * is replaced the same way rather than by a copy nobody asked for.
 */
import type { RelationshipMetadata } from '../dataverse/webapi/metadata.js';
import { AppError, type ErrorCode, toAppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ExportProfile } from '../profiles/schema.js';
import type { ApplyOptions } from '../sink/index.js';
import { applyChanges } from './apply-read-changes.js';
import { noteDeletedAttributes } from './deleted-attributes.js';
import { EntitySchemaCache } from './entity-schema.js';
import { activeProfile, copyTargets, DEFAULT_PAGE_SIZE, isRelationship } from './initial-sync.js';
import { readTrackedIds, TRACKED_ID_PAGES_PER_RUN } from './partitioned-copy.js';
import type { DataverseSource, SyncDeps, SyncSink } from './ports.js';
import { toAssociations } from './relationship-rows.js';
import { attributeSpecs, toSinkMetadata } from './target-metadata.js';

export interface ReconcileDeps extends SyncDeps {
  /**
   * Starts (or joins) the initial-sync orchestration of the profile for its Queued entities. Must be
   * idempotent: reconcile calls it on every run while an entity waits for its copy.
   */
  startInitialSync(profile: ExportProfile): Promise<void>;
  /**
   * Pages a delta baseline reads per run at most (default {@link BASELINE_PAGES_PER_RUN}); a larger table
   * goes on from where it stopped on the next run, so one run stays well inside the function timeout.
   */
  baselinePagesPerRun?: number;
  /** Pages of a partitioned copy's tracked id read per run (default {@link TRACKED_ID_PAGES_PER_RUN}). */
  trackedIdPagesPerRun?: number;
}

/** 60 pages of 5,000 rows: a few minutes of Dataverse reads at most, inside the 10-minute function timeout. */
export const BASELINE_PAGES_PER_RUN = 60;

export interface EntityReconcile {
  entity: string;
  /**
   * `baselined`: a first delta link was taken for an entity that streams changes without a copy, or after a
   * partitioned copy; `baselining`: that read is part-way and goes on at the next run.
   */
  outcome: 'reconciled' | 'recopy' | 'baselined' | 'baselining' | 'skipped' | 'failed';
  applied: number;
  stale: number;
  failed: number;
  pages: number;
  error?: string;
  code?: ErrorCode;
}

export interface ProfileReconcile {
  profileId: string;
  entities: EntityReconcile[];
  /** The initial sync was (re)started for entities waiting for a copy. */
  copyStarted: boolean;
}

export async function reconcileProfile(deps: ReconcileDeps, profileId: string): Promise<ProfileReconcile> {
  const profile = await activeProfile(deps, profileId);
  const result: ProfileReconcile = { profileId, entities: [], copyStarted: false };
  if (profile.state !== 'Active') return result;
  const statuses = new Map((await deps.store.entityStatuses(profileId)).map((s) => [s.entity, s]));
  let needsCopy = false;
  for (const entity of copyTargets(profile)) {
    const state = statuses.get(entity)?.syncState ?? 'NotStarted';
    if (state === 'Queued') needsCopy = true;
    // Until its copy completes, the entity's checkpoint belongs to the copy, unless no copy is wanted.
    const withoutCopy = !profile.options.initialSync && state === 'NotStarted';
    if (state !== 'Completed' && !withoutCopy) {
      result.entities.push(tallyOf(entity, 'skipped'));
      continue;
    }
    const entry = await reconcileEntity(deps, profile, entity, withoutCopy);
    if (entry.outcome === 'recopy') needsCopy = true;
    result.entities.push(entry);
  }
  if (needsCopy) {
    await deps.startInitialSync(profile);
    result.copyStarted = true;
  }
  return result;
}

async function reconcileEntity(
  deps: ReconcileDeps,
  profile: ExportProfile,
  entity: string,
  withoutCopy: boolean,
): Promise<EntityReconcile> {
  const log = deps.logger.child({ profileId: profile.id, entity });
  const entry = tallyOf(entity, 'reconciled');
  const failed = (error: AppError): EntityReconcile => {
    log.warn('reconcile of entity failed', { error });
    return { ...entry, outcome: 'failed', error: error.message, code: error.code };
  };
  const recopy = async (error: AppError): Promise<EntityReconcile> => {
    log.warn('delta token expired: the entity is copied again', { error });
    await deps.store.clearCheckpoints(profile.id, entity);
    await deps.store.updateSyncState(profile.id, entity, {
      syncState: 'Queued',
      rowsCopied: 0,
      syncStartedAt: null,
      syncCompletedAt: null,
      lastError: error.message,
    });
    return { ...entry, outcome: 'recopy', error: error.message };
  };
  const checkpoint = await deps.store.getCheckpoint(profile.id, entity);
  const source = deps.dataverseFor(profile);
  // A partitioned copy completes with its rows; its change-tracked id read goes on here to the delta link.
  const idReadPending = !checkpoint?.deltaLink && !withoutCopy;
  if (idReadPending && (!checkpoint?.nextLink || (await deps.store.copyPartitions(profile.id, entity)).length === 0)) {
    return { ...entry, outcome: 'skipped' };
  }
  let relationship: RelationshipMetadata | undefined;
  try {
    relationship = isRelationship(profile, entity) ? await source.relationshipMetadata(entity) : undefined;
  } catch (err) {
    return failed(toAppError(err));
  }
  if (idReadPending) {
    try {
      // A relationship's id read is of its intersect entity; its delta then follows the same path as below.
      const table = relationship?.intersectEntityName ?? entity;
      const maxPages = deps.trackedIdPagesPerRun ?? TRACKED_ID_PAGES_PER_RUN;
      const read = await readTrackedIds(deps, profile, { entity, table }, { maxPages });
      if (read.deltaStored) log.info('reconcile took the delta link of a partitioned copy', { pages: read.pages });
      return { ...entry, outcome: read.deltaStored ? 'baselined' : 'baselining', pages: read.pages };
    } catch (err) {
      const error = toAppError(err);
      return error.code === 'DELTA_TOKEN_EXPIRED' ? recopy(error) : failed(error);
    }
  }
  if (!checkpoint?.deltaLink) {
    try {
      return await baseline(deps, profile, entity, relationship, checkpoint?.nextLink ?? undefined);
    } catch (err) {
      return failed(toAppError(err));
    }
  }
  const sink = await deps.sinkFor(profile);
  const options = relationship ? undefined : await refreshMetadata(sink, source, profile, entity, log);
  const now = deps.now ?? (() => new Date());
  let deltaLink = checkpoint.deltaLink;
  try {
    // The link selects the attributes of its day: with fresh metadata it asks for today's (one added since
    // comes with the rows, one deleted since would make Dataverse refuse the link).
    const pages = source
      .readDelta(checkpoint.deltaLink, { exportedColumns: options !== undefined })
      [Symbol.asyncIterator]();
    for (;;) {
      const requestedAt = now().toISOString();
      const next = await pages.next();
      if (next.done) break;
      const page = next.value;
      // An intersect row's delete names no pair; the Disassociate webhook is what removes a pair.
      const changes = relationship ? toAssociations(page.rows, relationship, requestedAt).changes : page.rows;
      const tally = await applyChanges(deps, profile, sink, changes, options);
      entry.applied += tally.applied;
      entry.stale += tally.stale;
      entry.failed += tally.failed;
      entry.pages++;
      if (changes.length) {
        await deps.store.recordMetrics(profile.id, entity, {
          received: changes.length,
          applied: tally.applied,
          stale: tally.stale,
          failed: tally.failed,
          ...(tally.applied ? { lastAppliedAt: now() } : {}),
        });
      }
      // Only a final page's delta link is a new starting point; a crash mid-way repeats the delta (idempotent).
      if (page.deltaLink) deltaLink = page.deltaLink;
    }
  } catch (err) {
    const error = toAppError(err);
    if (error.code !== 'DELTA_TOKEN_EXPIRED') return failed(error);
    if (withoutCopy) {
      log.warn('delta token expired: a new one is taken; changes a webhook missed before now stay missed', {
        error,
      });
      await deps.store.clearCheckpoints(profile.id, entity);
      try {
        return { ...(await baseline(deps, profile, entity, relationship, undefined)), error: error.message };
      } catch (again) {
        return failed(toAppError(again));
      }
    }
    return recopy(error);
  }
  await deps.store.saveCheckpoint({
    profileId: profile.id,
    entity,
    nextLink: null,
    deltaLink,
    pagesDone: checkpoint.pagesDone,
  });
  if (entry.applied || entry.failed) log.info('reconcile applied missed changes', { ...entry });
  return entry;
}

/**
 * Reads the entity's metadata again each run and writes the metadata tables whose rows changed (a new
 * option's label appears within one reconcile period); its specs widen columns for the changes applied
 * now. Unreadable metadata leaves the tables as they are and the changes still apply.
 */
async function refreshMetadata(
  sink: SyncSink,
  source: DataverseSource,
  profile: ExportProfile,
  entity: string,
  log: Logger,
): Promise<ApplyOptions | undefined> {
  try {
    const metadata = await source.entityMetadata(entity, { refresh: true });
    await sink.writeMetadata(toSinkMetadata(metadata));
    await noteDeletedAttributes(sink, profile.id, entity, metadata, log);
    return {
      attributeSpecs: { [entity]: attributeSpecs(metadata) },
      schema: new EntitySchemaCache(source, log).forProfile(profile),
    };
  } catch (err) {
    log.warn('metadata not refreshed', { error: toAppError(err) });
    return undefined;
  }
}

/**
 * Takes the entity's first delta link without copying anything: a change-tracked read whose rows are
 * dropped. It reads every exported column because the delta link keeps the read's `$select`, and deltas
 * must bring whole rows. A large table is read over several runs: where the read stopped is saved as a
 * checkpoint without pages copied (which the initial sync does not take for its own).
 */
async function baseline(
  deps: ReconcileDeps,
  profile: ExportProfile,
  entity: string,
  relationship: RelationshipMetadata | undefined,
  startLink: string | undefined,
): Promise<EntityReconcile> {
  const entry = tallyOf(entity, 'baselining');
  const budget = deps.baselinePagesPerRun ?? BASELINE_PAGES_PER_RUN;
  const save = (nextLink: string | null, deltaLink: string | null) =>
    deps.store.saveCheckpoint({ profileId: profile.id, entity, nextLink, deltaLink, pagesDone: 0 });
  const pages = deps
    .dataverseFor(profile)
    .readPages(relationship?.intersectEntityName ?? entity, {
      pageSize: deps.pageSize ?? DEFAULT_PAGE_SIZE,
      trackChanges: true,
      startLink,
    })
    [Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await pages.next();
      if (next.done) break;
      const page = next.value;
      entry.pages++;
      if (page.deltaLink) {
        await save(null, page.deltaLink);
        deps.logger.info('reconcile took a first delta link', { profileId: profile.id, entity });
        return { ...entry, outcome: 'baselined' };
      }
      if (!page.nextLink) break;
      if (entry.pages >= budget) {
        await save(page.nextLink, null);
        deps.logger.info('reconcile baseline goes on next run', { profileId: profile.id, entity, pages: entry.pages });
        return entry;
      }
    }
  } finally {
    await pages.return?.();
  }
  throw new AppError(
    'DATAVERSE_REQUEST_FAILED',
    `Dataverse answered the change-tracked read of ${entity} without a delta link: enable change tracking for the table.`,
    { details: [{ field: 'entity', message: 'change tracking is off', value: entity }] },
  );
}

function tallyOf(entity: string, outcome: EntityReconcile['outcome']): EntityReconcile {
  return { entity, outcome, applied: 0, stale: 0, failed: 0, pages: 0 };
}

/**
 * Reconciles every active profile, one after another. A profile that fails does not stop the others;
 * the run then throws one error naming each failed profile, so the timer's invocation shows it.
 */
export async function reconcileActiveProfiles(deps: ReconcileDeps): Promise<ProfileReconcile[]> {
  const results: ProfileReconcile[] = [];
  const failures: { profileId: string; message: string; code: ErrorCode }[] = [];
  for (const profile of await deps.store.listProfiles()) {
    if (profile.state !== 'Active') continue;
    try {
      const result = await reconcileProfile(deps, profile.id);
      results.push(result);
      for (const e of result.entities) {
        if (e.outcome === 'failed')
          failures.push({ profileId: profile.id, message: `${e.entity}: ${e.error}`, code: e.code ?? 'INTERNAL' });
      }
    } catch (err) {
      const error = toAppError(err);
      deps.logger.error('reconcile of profile failed', { profileId: profile.id, error });
      failures.push({ profileId: profile.id, message: error.message, code: error.code });
    }
  }
  if (failures.length) {
    throw new AppError(
      failures[0].code,
      `Reconcile failed for ${failures.length} profile entit${failures.length === 1 ? 'y' : 'ies'}: ${failures.map((f) => `${f.profileId} (${f.message})`).join('; ')}. The next run tries again.`,
      { details: failures.map((f) => ({ field: 'profileId', message: f.message, value: f.profileId })) },
    );
  }
  return results;
}
