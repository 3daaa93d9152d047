import type { InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { loggerFor } from '../lib/log.js';
import { getRuntime } from '../lib/runtime.js';
import { completeEntity, copyStep, failEntity, planInitialSync } from '../lib/sync/initial-sync.js';
import {
  type CopyPagesInput,
  type EntityStepInput,
  type FailEntityInput,
  type InitialSyncInput,
  InitialSyncNames,
  initialSyncOrchestrators,
} from '../lib/sync/initial-sync-orchestration.js';
import { type SyncDeps, syncDepsFromRuntime } from '../lib/sync/ports.js';
import { triggerBoundary } from '../lib/trigger-boundary.js';

/**
 * The `initialSync` orchestration (started by activation, one instance per profile) and its activities.
 * An activity turns what it throws into a coded error and rethrows it, so Durable's retry sees it.
 */
async function depsFor(context: InvocationContext): Promise<SyncDeps> {
  const runtime = await getRuntime();
  return syncDepsFromRuntime(runtime, { logger: loggerFor(context, { function: context.functionName }) });
}

function activity<I, O>(name: string, step: (deps: SyncDeps, input: I) => Promise<O>) {
  df.app.activity(name, {
    handler: (input: unknown, context: InvocationContext) =>
      triggerBoundary(loggerFor(context, { step: name, input }), 'initial sync step failed', async () =>
        step(await depsFor(context), input as I),
      ),
  });
}

activity(InitialSyncNames.plan, (deps, input: InitialSyncInput) =>
  planInitialSync(
    {
      ...deps,
      pageSize: input.pageSize ?? deps.pageSize,
      partitions: {
        ...deps.partitions,
        ...(input.partitionMinRows !== undefined ? { minRows: input.partitionMinRows } : {}),
      },
    },
    input.profileId,
    { full: input.full },
  ),
);
activity(InitialSyncNames.copyPages, (deps, input: CopyPagesInput) =>
  copyStep({ ...deps, pageSize: input.pageSize ?? deps.pageSize }, input),
);
activity(InitialSyncNames.complete, (deps, input: EntityStepInput) =>
  completeEntity(deps, input.profileId, input.entity),
);
activity(InitialSyncNames.fail, (deps, input: FailEntityInput) =>
  failEntity(deps, input.profileId, input.entity, input.reason),
);

// Throttling and target outages are ridden out: 8 attempts, 10 s doubling to at most 5 min.
const copyRetry = new df.RetryOptions(10_000, 8);
copyRetry.backoffCoefficient = 2;
copyRetry.maxRetryIntervalInMilliseconds = 300_000;

for (const [name, orchestrator] of Object.entries(initialSyncOrchestrators<df.Task>({ copyRetry }))) {
  df.app.orchestration(name, orchestrator);
}
