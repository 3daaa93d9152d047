/**
 * The copy of a large entity, read in parallel as ranges of its primary id (docs/architecture.md, "Partitioned
 * reads"). Dataverse orders and compares uniqueidentifiers as SQL Server does, so a range is
 * `$filter=<id> gt <after> and <id> le <upTo>` with `$orderby=<id> asc`, read keyset style: each page starts
 * after the last id the partition applied, and its checkpoint (last id, pages, rows) is saved with the rows
 * it added to the entity's count in one statement. A crash re-reads at most the page each partition had in
 * flight, and the count stays exact.
 *
 * An N:N relationship is copied the same way, by ranges of its intersect entity's primary id (e.g.
 * `systemuserroleid`), each page's intersect rows turned into Associate changes before they are applied
 * ({@link PartitionedTable}).
 *
 * Reconcile's delta link comes from a change-tracked read of the primary ids alone (change tracking takes no
 * `$filter`, so it cannot be partitioned). Its first page is read when the copy is planned, before any
 * partition, which fixes the version the delta starts from: every change after it — to a row a partition has
 * read already or has yet to read, a create, a delete — is in the delta, and the version guard and tombstones
 * make replaying it over the copied rows neither lose nor resurrect anything. The rest of that read is paged
 * alongside the partitions (one lane). It cannot go faster than one page after another, so it does not hold
 * the entity back: the entity is Completed when its rows are in, and reconcile pages the id read on to its
 * delta link (TRACKED_ID_PAGES_PER_RUN a run), then follows it like any other. Webhooks flow meanwhile;
 * what they miss is healed by the first delta, which starts at the plan's version.
 */
import type { ChangeEvent } from '../change/change-event.js';
import { guidOfSqlKey, sqlGuidKey } from '../dataverse/sql-guid-order.js';
import { organizationLimits, type ReadLanes, Slots } from '../dataverse/webapi/organization-limits.js';
import type { CopyPartition, PartitionRange } from '../profiles/control-store.js';
import type { ExportProfile } from '../profiles/schema.js';
import type { ApplyOptions } from '../sink/index.js';
import { applyChanges } from './apply-read-changes.js';
import type { CopyResult } from './initial-sync.js';
import type { OrganizationShares } from './organization-share.js';
import type { SyncDeps, SyncSink } from './ports.js';

/** Below this estimate an entity is copied by one change-tracked read (its last page is the delta link). */
export const PARTITION_MIN_ROWS = 10_000;
/** Partitions a plan starts with at most; work stealing adds more while lanes would otherwise idle. */
export const INITIAL_PARTITIONS = 16;
/**
 * Pages being read or awaiting their apply, across every copy in the process. A read starts only with one of
 * these in hand and gives it back once its page is applied, so reads start as fast as pages are applied: the
 * reads in flight hide Dataverse's latency (at 1 s a page about 10 are in flight while the applies stay busy)
 * and memory is bounded by this many parsed pages at most, however many copies run. More than 16 hid no more
 * latency at 1 s a page and cost CPU (garbage collection) where pages arrive at once; 12 no longer hid it all.
 */
export const MAX_PAGES_HELD = 16;
/** Pages applied at once per copy call (each is one set-based batch on the target). */
export const APPLY_CONCURRENCY = 4;

/** What a partitioned copy reads: an entity's own rows, or an N:N relationship's intersect rows. */
export interface PartitionedRead {
  /** The profile's name (entity or relationship): the key of its status, checkpoint and partitions. */
  entity: string;
  /** The Dataverse table read by ranges of its primary id: the entity, or the relationship's intersect entity. */
  table: string;
}

/** A partitioned read and how its rows are applied. */
export interface PartitionedTable extends PartitionedRead {
  /** A page's rows → the changes applied (intersect rows → Associates); `readTime` is when it was asked for. */
  toChanges(rows: ChangeEvent[], readTime: string): ChangeEvent[];
  options?: ApplyOptions;
}

/**
 * Whether a table is copied by partitions: its estimate reaches `minRows`, or it has none because it holds more
 * rows than `$count` counts (5,000), so it may hold millions.
 */
export function worthPartitioning(estimate: number | undefined, minRows = PARTITION_MIN_ROWS): boolean {
  return estimate === undefined || estimate >= minRows;
}

export interface PartitionSettings {
  /** Default {@link PARTITION_MIN_ROWS}. */
  minRows?: number;
  /** Default {@link INITIAL_PARTITIONS}. */
  initialPartitions?: number;
  /** Default {@link APPLY_CONCURRENCY}. */
  applyConcurrency?: number;
  /** Pages being read or awaiting apply; by default the process-wide {@link MAX_PAGES_HELD}. */
  pagesHeld?: Slots;
  /** The organization's read lanes; by default the process-wide ones of the profile's organization URL. */
  lanes?: ReadLanes;
  /** Splits the organization's cap with the other instances copying from it; without it this one takes it all. */
  shares?: OrganizationShares;
}

const MAX_KEY = (1n << 128n) - 1n;

const processPagesHeld = new Slots(MAX_PAGES_HELD);

/**
 * Plans a partitioned copy when the entity is large enough: the tracked read's first page (fixing the delta's
 * version), then the first and last id, and [first, last] cut evenly in SQL order into partitions, plus an
 * open head and tail for ids created outside it meanwhile. False when the entity stays on the single read.
 */
export async function planPartitions(
  deps: SyncDeps,
  profile: ExportProfile,
  read: PartitionedRead,
  estimate: number | undefined,
  pageSize: number,
): Promise<boolean> {
  const settings = deps.partitions ?? {};
  if (!worthPartitioning(estimate, settings.minRows)) return false;
  const { entity, table } = read;
  const source = deps.dataverseFor(profile);
  // Asked together: the bounds only place the cuts (ids outside them fall in the open head and tail), and the
  // tracked read's first page is in before any partition is read.
  const [tracked, bounds] = await Promise.all([source.readTrackedIds(table, { pageSize }), source.idBounds(table)]);
  if (!bounds) return false;
  const first = sqlGuidKey(bounds.first);
  const last = sqlGuidKey(bounds.last);
  const most = settings.initialPartitions ?? INITIAL_PARTITIONS;
  const count = estimate === undefined ? most : Math.max(1, Math.min(most, Math.ceil(estimate / pageSize)));
  const cuts: bigint[] = [];
  const span = last - first;
  for (let i = 1; i < count; i++) cuts.push(first + (span * BigInt(i)) / BigInt(count));
  // Head (ids below the first), the even ranges, tail (ids above the last); duplicates of a tiny span dropped.
  const edges = [...new Set([first - 1n, ...cuts, last])].filter((k) => k >= -1n && k <= MAX_KEY);
  const ranges: PartitionRange[] = [];
  const id = (key: bigint) => guidOfSqlKey(key);
  if (first > 0n) ranges.push({ partition: 0, after: null, upTo: id(first - 1n) });
  for (let i = 1; i < edges.length; i++) {
    ranges.push({ partition: ranges.length, after: edges[i - 1] < 0n ? null : id(edges[i - 1]), upTo: id(edges[i]) });
  }
  if (last < MAX_KEY) ranges.push({ partition: ranges.length, after: id(last), upTo: null });
  await deps.store.startPartitionedCopy(
    {
      profileId: profile.id,
      entity,
      nextLink: tracked.nextLink ?? null,
      deltaLink: tracked.deltaLink ?? null,
      pagesDone: 1,
    },
    ranges,
  );
  deps.logger.info('partitioned copy planned', {
    profileId: profile.id,
    entity,
    ...(table === entity ? {} : { table }),
    partitions: ranges.length,
    estimate,
  });
  return true;
}

/** A partition as one copy call holds it. */
interface Lane {
  state: CopyPartition;
  /** A read of this partition is in flight. */
  busy: boolean;
  /** Its page is in and being applied: its last id is about to move, so it is not split now. */
  settling: boolean;
  pagesThisCall: number;
  /** Serialises a split with the cut, apply and save of a page, so no row is counted by two partitions. */
  serial: Promise<unknown>;
}

const keyOrUndefined = (id: string | null): bigint | undefined => (id === null ? undefined : sqlGuidKey(id));

/**
 * Copies pages of every partition of the entity, as many at once as the organization's read lanes allow,
 * each partition at most `maxPages` pages; pages read ahead of their apply are bounded by `maxPagesHeld`.
 * When a lane would idle, the partition with the most rows left is split at the midpoint between its last
 * id and its upper bound. Pages the change-tracked id read on meanwhile; done when every partition is.
 */
export async function copyPartitions(
  deps: SyncDeps,
  profile: ExportProfile,
  copied: PartitionedTable,
  maxPages: number,
  sink: SyncSink,
): Promise<CopyResult> {
  const copy = () => copyPartitionsOnShare(deps, profile, copied, maxPages, sink);
  const shares = deps.partitions?.shares;
  return shares ? shares.during(profile.source.url, copy) : copy();
}

async function copyPartitionsOnShare(
  deps: SyncDeps,
  profile: ExportProfile,
  copied: PartitionedTable,
  maxPages: number,
  sink: SyncSink,
): Promise<CopyResult> {
  const { entity, table, options } = copied;
  const now = deps.now ?? (() => new Date());
  const settings = deps.partitions ?? {};
  const lanesOf = settings.lanes ?? organizationLimits(profile.source.url).lanes;
  const held = settings.pagesHeld ?? processPagesHeld;
  const applying = new Slots(settings.applyConcurrency ?? APPLY_CONCURRENCY);
  const pageSize = deps.pageSize ?? 5000;
  const source = deps.dataverseFor(profile);
  const log = deps.logger.child({ profileId: profile.id, entity });
  const lanes: Lane[] = (await deps.store.copyPartitions(profile.id, entity)).map((state) => ({
    state,
    busy: false,
    settling: false,
    pagesThisCall: 0,
    serial: Promise.resolve(),
  }));
  const result: CopyResult = { done: false, rows: 0, pages: 0 };
  const running = new Set<Promise<void>>();
  const errors: unknown[] = [];
  let nextPartition = Math.max(-1, ...lanes.map((l) => l.state.partition)) + 1;
  // The entity's density (rows per key) over the planned span, for partitions that have read nothing yet.
  const head = lanes.find((l) => l.state.after === null)?.state.upTo;
  const tail = lanes.find((l) => l.state.upTo === null)?.state.after;
  const span = head && tail ? sqlGuidKey(tail) - sqlGuidKey(head) : 0n;
  const rowsEstimated =
    (await deps.store.entityStatuses(profile.id)).find((s) => s.entity === entity)?.rowsEstimated ?? 0;

  /** Rows a partition is expected to still hold; undefined for the open head and tail (never split). */
  const rowsLeft = (lane: Lane): number | undefined => {
    const { after, upTo, lastId, rowsCopied } = lane.state;
    if (after === null || upTo === null) return undefined;
    const from = sqlGuidKey(lastId ?? after);
    const width = sqlGuidKey(upTo) - from;
    if (width <= 1n) return 0;
    const readWidth = from - sqlGuidKey(after);
    const density =
      lastId && rowsCopied > 0 && readWidth > 0n
        ? rowsCopied / Number(readWidth)
        : span > 0n
          ? rowsEstimated / Number(span)
          : 0;
    return Number(width) * density;
  };

  const split = (lane: Lane): Lane | undefined => {
    const { after, upTo, lastId } = lane.state;
    if (after === null || upTo === null) return undefined;
    const from = sqlGuidKey(lastId ?? after);
    const to = sqlGuidKey(upTo);
    const at = from + (to - from) / 2n;
    if (at <= from || at >= to) return undefined;
    const added: Lane = {
      state: {
        ...lane.state,
        partition: nextPartition++,
        after: guidOfSqlKey(at),
        upTo,
        lastId: null,
        pagesDone: 0,
        rowsCopied: 0,
        done: false,
      },
      busy: false,
      settling: false,
      pagesThisCall: 0,
      serial: Promise.resolve(),
    };
    // Narrowed at once, so a page in flight is cut to the new bound; persisted under the partition's turn.
    lane.state.upTo = added.state.after;
    const persisted = lane.serial.then(async () => {
      try {
        await deps.store.splitPartition({
          profileId: profile.id,
          entity,
          partition: lane.state.partition,
          upTo,
          at: added.state.after as string,
          added: added.state.partition,
        });
      } catch (err) {
        lane.state.upTo = upTo;
        added.state.done = true;
        throw err;
      }
    });
    persisted.catch((err: unknown) => errors.push(err));
    lane.serial = persisted;
    added.serial = persisted;
    lanes.push(added);
    log.debug('partition split', { partition: lane.state.partition, added: added.state.partition });
    return added;
  };

  /** The next partition to read: an idle one with budget left, else a split of the one with most left. */
  const pick = (): Lane | undefined => {
    const idle = lanes.find((l) => !l.state.done && !l.busy && l.pagesThisCall < maxPages);
    if (idle) return idle;
    let best: Lane | undefined;
    let most = 2 * pageSize;
    for (const lane of lanes) {
      if (lane.state.done || lane.settling || lane.pagesThisCall >= maxPages) continue;
      const left = rowsLeft(lane);
      if (left !== undefined && left >= most) {
        best = lane;
        most = left;
      }
    }
    return best ? split(best) : undefined;
  };

  const readPage = async (lane: Lane): Promise<void> => {
    const state = lane.state;
    // The dispatcher took a read lane for this page; it is given back as soon as the page is in.
    const page = await (async () => {
      let rows = 0;
      try {
        // Taken before the request: a change Dataverse makes after the read is dated later than the page.
        const readTime = now().toISOString();
        const read = await source.readIdRange(table, {
          after: state.lastId ?? state.after,
          upTo: state.upTo,
          pageSize,
        });
        rows = read.rows.length;
        return { ...read, readTime };
      } finally {
        lanesOf.release(rows);
      }
    })();
    // A split from here on would cut above rows this page is applying (they would count twice): none until saved.
    lane.settling = true;
    const turn = lane.serial.then(async () => {
      // A split while the page was read moved the upper bound down: the rows above it are the new partition's.
      const upTo = keyOrUndefined(state.upTo);
      // The page is in id order: only when its last row is above the bound do its rows need sorting out.
      const last = page.rows.at(-1);
      const rows =
        upTo !== undefined && last !== undefined && sqlGuidKey(last.recordId) > upTo
          ? page.rows.filter((r) => sqlGuidKey(r.recordId) <= upTo)
          : page.rows;
      const cut = rows.length < page.rows.length;
      const changes = copied.toChanges(rows, page.readTime);
      const tally = await applying.run(() => applyChanges(deps, profile, sink, changes, options));
      const lastId = rows.length ? rows[rows.length - 1].recordId.toLowerCase() : state.lastId;
      const done = cut || !page.more || rows.length === 0;
      await deps.store.savePartitionProgress(
        { profileId: profile.id, entity, partition: state.partition, lastId, pagesDone: state.pagesDone + 1, done },
        rows.length,
      );
      if (tally.failed) await deps.store.recordMetrics(profile.id, entity, { failed: tally.failed });
      state.lastId = lastId;
      state.pagesDone++;
      state.rowsCopied += rows.length;
      state.done = done;
      result.rows += rows.length;
      result.pages++;
    });
    lane.serial = turn.catch(() => undefined);
    try {
      await turn;
    } finally {
      lane.settling = false;
    }
  };

  // The tracked id read goes on, one lane, for as long as this call reads partitions.
  let partitionsRunning = true;
  const trackedRead = () =>
    readTrackedIds(deps, profile, copied, { lanes: lanesOf, pageSize, more: () => partitionsRunning });

  const tracked = trackedRead().catch((err) => {
    errors.push(err);
  });
  while (errors.length === 0) {
    // A page is started with a held-page slot and a read lane in hand, so partitions are picked (and split)
    // only as fast as pages are applied and the organization's lanes open.
    await held.acquire();
    await lanesOf.acquire();
    const lane = errors.length ? undefined : pick();
    if (!lane) {
      lanesOf.giveBack();
      held.release();
      if (running.size === 0) break;
      await Promise.race(running);
      continue;
    }
    lane.busy = true;
    lane.pagesThisCall++;
    const work: Promise<void> = readPage(lane)
      .catch((err) => {
        errors.push(err);
      })
      .finally(() => {
        lane.busy = false;
        held.release();
        running.delete(work);
      });
    running.add(work);
  }
  await Promise.all(running);
  partitionsRunning = false;
  await tracked;
  await Promise.all(lanes.map((l) => l.serial.catch(() => undefined)));
  if (errors.length) throw errors[0];
  result.done = lanes.every((l) => l.state.done);
  log.debug('partitioned copy call', { ...result, partitions: lanes.length, lanes: lanesOf.limit });
  return result;
}

/** Pages of the tracked id read one reconcile run reads at most: small pages, well inside its timeout. */
export const TRACKED_ID_PAGES_PER_RUN = 300;

/**
 * Pages the change-tracked id read of a partitioned copy on from its checkpoint until its delta link is
 * stored, `more()` turns false, or `maxPages` pages are read; each page's place is saved. Answers whether the
 * delta link is stored. Throws DELTA_TOKEN_EXPIRED when Dataverse no longer knows the read's version.
 */
export async function readTrackedIds(
  deps: SyncDeps,
  profile: ExportProfile,
  { entity, table }: PartitionedRead,
  options: { lanes?: ReadLanes; pageSize?: number; more?: () => boolean; maxPages?: number } = {},
): Promise<{ deltaStored: boolean; pages: number }> {
  const source = deps.dataverseFor(profile);
  const lanes = options.lanes ?? deps.partitions?.lanes ?? organizationLimits(profile.source.url).lanes;
  for (let pages = 0; ; pages++) {
    const checkpoint = await deps.store.getCheckpoint(profile.id, entity);
    if (checkpoint?.deltaLink) return { deltaStored: true, pages };
    if (!checkpoint?.nextLink || pages >= (options.maxPages ?? Number.POSITIVE_INFINITY)) {
      return { deltaStored: false, pages };
    }
    if (options.more && !options.more()) return { deltaStored: false, pages };
    await lanes.acquire();
    let page: Awaited<ReturnType<typeof source.readTrackedIds>> | undefined;
    try {
      page = await source.readTrackedIds(table, {
        link: checkpoint.nextLink,
        pageSize: options.pageSize ?? deps.pageSize ?? 5000,
      });
    } finally {
      lanes.release(page?.rows ?? 0);
    }
    await deps.store.saveCheckpoint({
      profileId: profile.id,
      entity,
      nextLink: page.nextLink ?? null,
      deltaLink: page.deltaLink ?? null,
      pagesDone: checkpoint.pagesDone + 1,
    });
  }
}
