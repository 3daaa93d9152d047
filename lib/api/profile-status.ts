import type { CopyPartition, EntityStatus, EntitySyncState, TargetState } from '../profiles/control-store.js';
import type { ExportProfile, ProfileState } from '../profiles/schema.js';

/** One id range of a partitioned copy; the entity's rowsCopied is the sum over its partitions. */
export interface PartitionView {
  partition: number;
  /** Ids after this one (null: from the first). */
  from: string | null;
  /** Ids up to this one (null: to the last). */
  to: string | null;
  rowsCopied: number;
  pagesDone: number;
  done: boolean;
}

/** An entity's row in `GET /api/profiles/{id}/status`: the stored status plus copy speed and ETA. */
export interface EntityStatusView extends EntityStatus {
  /** The id ranges its copy is read in, in parallel; empty when it is copied by one read. */
  partitions: PartitionView[];
  /** Rows copied per second since the copy started; only while InProgress. */
  rowsPerSecond: number | null;
  /** Seconds until the copy is expected to finish; only while InProgress with a known estimate. */
  etaSeconds: number | null;
  estimatedCompletionAt: string | null;
}

export interface ProfileStatusView {
  id: string;
  name: string;
  state: ProfileState;
  organizationId: string;
  asOf: string;
  /** `ready`, or why the target is not taking this profile's changes (they wait, nothing is failure-logged). */
  targetState: 'ready' | TargetState['state'];
  /** What the target answered and what to do about it; null while ready. */
  targetError: { reason: string; action: string; since: string; lastSeenAt: string } | null;
  /** Overall initial-sync state: the least advanced of the entities' (Failed wins over everything). */
  initialSync: EntitySyncState;
  totals: {
    entities: number;
    bySyncState: Record<EntitySyncState, number>;
    rowsCopied: number;
    rowsEstimated: number | null;
    received: number;
    applied: number;
    stale: number;
    failed: number;
    lastAppliedAt: string | null;
    /** Largest last-batch lag over the entities. */
    maxLagMs: number | null;
  };
  entities: EntityStatusView[];
}

const SYNC_STATES: EntitySyncState[] = ['NotStarted', 'Queued', 'InProgress', 'Completed', 'Failed'];

export function profileStatus(
  profile: ExportProfile,
  statuses: EntityStatus[],
  now: Date,
  target?: TargetState,
  partitions: CopyPartition[] = [],
): ProfileStatusView {
  const entities = statuses.map((s) => ({
    ...withProgress(s, now),
    partitions: partitions.filter((p) => p.entity === s.entity).map(partitionView),
  }));
  const bySyncState = Object.fromEntries(SYNC_STATES.map((state) => [state, 0])) as Record<EntitySyncState, number>;
  for (const s of statuses) bySyncState[s.syncState]++;
  const estimates = statuses.map((s) => s.rowsEstimated);
  return {
    id: profile.id,
    name: profile.name,
    state: profile.state,
    organizationId: profile.organizationId,
    asOf: now.toISOString(),
    targetState: target?.state ?? 'ready',
    targetError: target
      ? { reason: target.reason, action: target.action, since: target.since, lastSeenAt: target.updatedAt }
      : null,
    initialSync: overall(bySyncState, statuses.length),
    totals: {
      entities: statuses.length,
      bySyncState,
      rowsCopied: sum(statuses.map((s) => s.rowsCopied)),
      rowsEstimated: estimates.some((e) => e === null) ? null : sum(estimates as number[]),
      received: sum(statuses.map((s) => s.received)),
      applied: sum(statuses.map((s) => s.applied)),
      stale: sum(statuses.map((s) => s.stale)),
      failed: sum(statuses.map((s) => s.failed)),
      lastAppliedAt: latest(statuses.map((s) => s.lastAppliedAt)),
      maxLagMs: max(statuses.map((s) => s.lastLagMs)),
    },
    entities,
  };
}

function partitionView(p: CopyPartition): PartitionView {
  return {
    partition: p.partition,
    from: p.after,
    to: p.upTo,
    rowsCopied: p.rowsCopied,
    pagesDone: p.pagesDone,
    done: p.done,
  };
}

function withProgress(status: EntityStatus, now: Date): Omit<EntityStatusView, 'partitions'> {
  const none = { rowsPerSecond: null, etaSeconds: null, estimatedCompletionAt: null };
  if (status.syncState !== 'InProgress' || !status.syncStartedAt) return { ...status, ...none };
  const elapsedSeconds = (now.getTime() - Date.parse(status.syncStartedAt)) / 1000;
  if (!(elapsedSeconds > 0)) return { ...status, ...none };
  const rate = status.rowsCopied / elapsedSeconds;
  const rowsPerSecond = Math.round(rate * 10) / 10;
  if (status.rowsEstimated === null || rate <= 0) return { ...status, ...none, rowsPerSecond };
  const etaSeconds = Math.ceil(Math.max(0, status.rowsEstimated - status.rowsCopied) / rate);
  return {
    ...status,
    rowsPerSecond,
    etaSeconds,
    estimatedCompletionAt: new Date(now.getTime() + etaSeconds * 1000).toISOString(),
  };
}

function overall(counts: Record<EntitySyncState, number>, total: number): EntitySyncState {
  if (counts.Failed > 0) return 'Failed';
  if (total > 0 && counts.Completed === total) return 'Completed';
  if (counts.InProgress > 0 || (counts.Completed > 0 && counts.Queued + counts.NotStarted > 0)) return 'InProgress';
  if (counts.Queued > 0) return 'Queued';
  return 'NotStarted';
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function max(values: (number | null)[]): number | null {
  const known = values.filter((v): v is number => v !== null);
  return known.length ? Math.max(...known) : null;
}

function latest(times: (string | null)[]): string | null {
  const known = times.filter((t): t is string => t !== null);
  return known.length ? known.reduce((a, b) => (Date.parse(a) >= Date.parse(b) ? a : b)) : null;
}
