/**
 * The `initialSync` orchestration, written against the few calls it makes of a durable orchestration
 * context (durable-functions' context satisfies {@link OrchestrationContextLike}; lib/ does not import it).
 *
 * The planned entities are dealt round-robin into at most `parallelism` lanes, run in parallel as
 * sub-orchestrations (Task.all). A lane copies its entities one after another, a bounded number of pages per
 * activity call, and continues as new after a bounded number of calls, so no history grows with table size.
 * A large entity's call reads its partitions in parallel inside the activity (partitioned-copy.ts), each up
 * to `pagesPerCall` pages: the orchestration's shape is the same for both.
 */
import type { CopyResult } from './initial-sync.js';

/** The durable context's calls used here; `T` is what an orchestrator yields (a durable task, opaque here). */
export interface OrchestrationDf<T> {
  readonly instanceId: string;
  readonly isReplaying: boolean;
  getInput(): unknown;
  callActivity(name: string, input?: unknown): T;
  callActivityWithRetry(name: string, retryOptions: object, input?: unknown): T;
  callSubOrchestrator(name: string, input?: unknown, instanceId?: string): T;
  continueAsNew(input: unknown): void;
  setCustomStatus(status: unknown): void;
  readonly Task: { all(tasks: T[]): T };
}

export interface OrchestrationContextLike<T> {
  readonly df: OrchestrationDf<T>;
}

export type Orchestrator<T> = (context: OrchestrationContextLike<T>) => Generator<T, unknown, unknown>;

export const InitialSyncNames = {
  orchestration: 'initialSync',
  lane: 'initialSyncLane',
  plan: 'initialSyncPlan',
  copyPages: 'initialSyncCopyPages',
  complete: 'initialSyncCompleteEntity',
  fail: 'initialSyncFailEntity',
} as const;

/** Durable runtime statuses of an instance that is still under way (a starter joins it instead of racing it). */
export const RUNNING_STATUSES: ReadonlySet<string> = new Set(['Running', 'Pending', 'ContinuedAsNew']);

/** One initial sync per profile at a time: starters use this id, so a second start is refused or joins. */
export function initialSyncInstanceId(profileId: string): string {
  return `initialSync-${profileId}`;
}

export interface InitialSyncInput {
  profileId: string;
  full?: boolean;
  /** Entities copied at once (default 4). */
  parallelism?: number;
  /** Pages per activity call (default 5): one call's work, and what a lost call repeats at most. */
  pagesPerCall?: number;
  /** Activity calls per lane before it continues as new (default 50). */
  callsPerGeneration?: number;
  /** Rows per Web API page; the activity's default (Dataverse's maximum) when absent. */
  pageSize?: number;
  /** Entities estimated at this many rows or more are read as parallel id ranges (default 10,000). */
  partitionMinRows?: number;
}

export interface InitialSyncOutput {
  profileId: string;
  completed: string[];
  failed: string[];
  stopped: string[];
}

interface LaneInput {
  profileId: string;
  entities: string[];
  /** Index of the entity being copied. */
  position: number;
  pagesPerCall: number;
  callsPerGeneration: number;
  pageSize?: number;
  completed: string[];
  failed: string[];
  stopped: string[];
  /** Pages copied of the current entity (for the custom status). */
  pages: number;
}

export interface EntityStepInput {
  profileId: string;
  entity: string;
}

export interface CopyPagesInput extends EntityStepInput {
  maxPages: number;
  pageSize?: number;
}

export interface FailEntityInput extends EntityStepInput {
  reason: string;
}

export interface OrchestrationOptions {
  /** durable-functions' `RetryOptions` for the copy activity (throttling and target outages ride it out). */
  copyRetry: object;
}

/** The orchestrators, by registration name. */
export function initialSyncOrchestrators<T>(options: OrchestrationOptions): Record<string, Orchestrator<T>> {
  const initialSync: Orchestrator<T> = function* (context) {
    const df = context.df;
    const input = df.getInput() as InitialSyncInput;
    df.setCustomStatus({ stage: 'planning' });
    const entities = (yield df.callActivity(InitialSyncNames.plan, {
      profileId: input.profileId,
      full: input.full ?? false,
      ...(input.pageSize ? { pageSize: input.pageSize } : {}),
      ...(input.partitionMinRows !== undefined ? { partitionMinRows: input.partitionMinRows } : {}),
    })) as string[];
    if (entities.length === 0) {
      const nothing: InitialSyncOutput = { profileId: input.profileId, completed: [], failed: [], stopped: [] };
      df.setCustomStatus({ stage: 'done', ...nothing });
      return nothing;
    }
    const parallelism = Math.max(1, input.parallelism ?? 4);
    const lanes: string[][] = [];
    entities.forEach((entity, i) => {
      lanes[i % parallelism] ??= [];
      lanes[i % parallelism].push(entity);
    });
    df.setCustomStatus({ stage: 'copying', entities });
    const results = (yield df.Task.all(
      lanes.map((laneEntities) =>
        df.callSubOrchestrator(InitialSyncNames.lane, {
          profileId: input.profileId,
          entities: laneEntities,
          position: 0,
          pagesPerCall: input.pagesPerCall ?? 5,
          callsPerGeneration: input.callsPerGeneration ?? 50,
          ...(input.pageSize ? { pageSize: input.pageSize } : {}),
          completed: [],
          failed: [],
          stopped: [],
          pages: 0,
        } satisfies LaneInput),
      ),
    )) as Omit<InitialSyncOutput, 'profileId'>[];
    const output: InitialSyncOutput = {
      profileId: input.profileId,
      completed: results.flatMap((r) => r.completed),
      failed: results.flatMap((r) => r.failed),
      stopped: results.flatMap((r) => r.stopped),
    };
    df.setCustomStatus({ stage: 'done', ...output });
    return output;
  };

  const lane: Orchestrator<T> = function* (context) {
    const df = context.df;
    const state = { ...(df.getInput() as LaneInput) };
    for (let calls = 0; state.position < state.entities.length; calls++) {
      if (calls >= state.callsPerGeneration) {
        // Keeps the history short however many pages the tables have; the checkpoint carries the place.
        df.continueAsNew(state);
        return undefined;
      }
      const entity = state.entities[state.position];
      const step: EntityStepInput = { profileId: state.profileId, entity };
      let result: CopyResult;
      try {
        result = (yield df.callActivityWithRetry(InitialSyncNames.copyPages, options.copyRetry, {
          ...step,
          maxPages: state.pagesPerCall,
          ...(state.pageSize ? { pageSize: state.pageSize } : {}),
        } satisfies CopyPagesInput)) as CopyResult;
      } catch (err) {
        // The retry policy is spent: a transient failure that did not pass.
        result = { done: false, rows: 0, pages: 0, error: err instanceof Error ? err.message : String(err) };
      }
      if (result.error !== undefined) {
        yield df.callActivity(InitialSyncNames.fail, { ...step, reason: result.error } satisfies FailEntityInput);
        state.failed.push(entity);
        state.position++;
        state.pages = 0;
        continue;
      }
      state.pages += result.pages;
      if (result.stopped) {
        state.stopped.push(...state.entities.slice(state.position));
        break;
      }
      if (result.done) {
        yield df.callActivity(InitialSyncNames.complete, step);
        state.completed.push(entity);
        state.position++;
        state.pages = 0;
      }
      df.setCustomStatus({ entity, pages: state.pages, completed: state.completed, failed: state.failed });
    }
    return { completed: state.completed, failed: state.failed, stopped: state.stopped };
  };

  return { [InitialSyncNames.orchestration]: initialSync, [InitialSyncNames.lane]: lane };
}
