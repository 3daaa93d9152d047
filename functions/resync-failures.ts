import type { InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { loggerFor } from '../lib/log.js';
import { getRuntime } from '../lib/runtime.js';
import { syncDepsFromRuntime } from '../lib/sync/ports.js';
import { type ResyncStepInput, resyncStep } from '../lib/sync/resync.js';
import { ResyncNames, resyncOrchestrator } from '../lib/sync/resync-orchestration.js';
import { triggerBoundary } from '../lib/trigger-boundary.js';

/** The `resyncFailures` orchestration (started by `POST /api/profiles/{id}/failures/resync`) and its step. */
df.app.activity(ResyncNames.step, {
  handler: (input: unknown, context: InvocationContext) => {
    const logger = loggerFor(context, { function: context.functionName });
    return triggerBoundary(logger, 'resync step failed', async () =>
      resyncStep(syncDepsFromRuntime(await getRuntime(), { logger }), input as ResyncStepInput),
    );
  },
});

// A target outage or throttling is ridden out: 6 attempts, 10 s doubling to at most 5 min.
const stepRetry = new df.RetryOptions(10_000, 6);
stepRetry.backoffCoefficient = 2;
stepRetry.maxRetryIntervalInMilliseconds = 300_000;

df.app.orchestration(ResyncNames.orchestration, resyncOrchestrator<df.Task>({ stepRetry }));
