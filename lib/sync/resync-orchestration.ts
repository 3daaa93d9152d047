/**
 * The `resyncFailures` orchestration: `POST /api/profiles/{id}/failures/resync` starts it and answers 202 with
 * its status URL, so a large failure log never runs inside an HTTP request. It calls one bounded resync step
 * after another; its custom status carries the running totals, and its output the final ones.
 */
import type { Orchestrator } from './initial-sync-orchestration.js';
import {
  addResyncResult,
  emptyResyncResult,
  type ResyncResult,
  type ResyncStepInput,
  type ResyncStepOutput,
} from './resync.js';

export const ResyncNames = {
  orchestration: 'resyncFailures',
  step: 'resyncFailuresStep',
} as const;

/** One resync per profile at a time: a second request while one runs answers the running one's status. */
export function resyncInstanceId(profileId: string): string {
  return `resync-${profileId}`;
}

export interface ResyncInput {
  profileId: string;
  /** Set by the starter (ISO), so replays agree on which failures belong to this resync. */
  startedAt: string;
  /** Where a continued generation goes on, and what was done before it. */
  after?: string | null;
  totals?: ResyncResult;
}

export interface ResyncProgress extends ResyncResult {
  profileId: string;
  stage: 'resyncing' | 'done';
}

/** Steps per generation before continuing as new, so the history stays short however long the log is. */
const STEPS_PER_GENERATION = 50;

export function resyncOrchestrator<T>(options: { stepRetry: object }): Orchestrator<T> {
  return function* (context) {
    const df = context.df;
    const input = df.getInput() as ResyncInput;
    let totals = input.totals ?? emptyResyncResult();
    let after = input.after ?? null;
    for (let steps = 0; ; steps++) {
      if (steps >= STEPS_PER_GENERATION) {
        df.continueAsNew({ ...input, after, totals } satisfies ResyncInput);
        return undefined;
      }
      const stepInput: ResyncStepInput = { profileId: input.profileId, startedAt: input.startedAt, after };
      const { next, ...step } = (yield df.callActivityWithRetry(
        ResyncNames.step,
        options.stepRetry,
        stepInput,
      )) as ResyncStepOutput;
      totals = addResyncResult(totals, step);
      after = next;
      if (after === null) break;
      df.setCustomStatus({ profileId: input.profileId, stage: 'resyncing', ...totals } satisfies ResyncProgress);
    }
    const done: ResyncProgress = { profileId: input.profileId, stage: 'done', ...totals };
    df.setCustomStatus(done);
    return done;
  };
}
