import { app, type InvocationContext, type Timer } from '@azure/functions';
import * as df from 'durable-functions';
import { loggerFor } from '../lib/log.js';
import { getRuntime } from '../lib/runtime.js';
import { InitialSyncNames, initialSyncInstanceId, RUNNING_STATUSES } from '../lib/sync/initial-sync-orchestration.js';
import { syncDepsFromRuntime } from '../lib/sync/ports.js';
import { reconcileActiveProfiles } from '../lib/sync/reconcile.js';
import { triggerBoundary } from '../lib/trigger-boundary.js';

/**
 * Follows every completed entity's delta link to apply what webhooks missed, and (re)starts the initial
 * sync for entities waiting for a copy (an expired delta token sends an entity back to one).
 */
export async function reconcile(timer: Timer, context: InvocationContext): Promise<void> {
  const logger = loggerFor(context, { function: 'reconcile' });
  await triggerBoundary(logger, 'reconcile failed', async () => {
    const runtime = await getRuntime();
    const durable = df.getClient(context);
    const results = await reconcileActiveProfiles({
      ...syncDepsFromRuntime(runtime, { logger }),
      async startInitialSync(profile) {
        const instanceId = initialSyncInstanceId(profile.id);
        const status = await durable.getStatus(instanceId).catch(() => undefined);
        if (status && RUNNING_STATUSES.has(String(status.runtimeStatus))) return;
        await durable.startNew(InitialSyncNames.orchestration, { instanceId, input: { profileId: profile.id } });
      },
    });
    logger.info('reconcile finished', { profiles: results.length, isPastDue: timer.isPastDue });
  });
}

app.timer('reconcile', {
  schedule: '%ReconcileSchedule%',
  extraInputs: [df.input.durableClient()],
  handler: reconcile,
});
