import { app, type InvocationContext, type Timer } from '@azure/functions';
import * as df from 'durable-functions';
import { toAppError } from '../lib/errors.js';
import { loggerFor } from '../lib/log.js';
import { getRuntime } from '../lib/runtime.js';
import { InitialSyncNames, initialSyncInstanceId } from '../lib/sync/initial-sync-orchestration.js';
import { syncDepsFromRuntime } from '../lib/sync/ports.js';
import { reconcileActiveProfiles } from '../lib/sync/reconcile.js';

const RUNNING = new Set(['Running', 'Pending', 'ContinuedAsNew']);

/**
 * Follows every completed entity's delta link to apply what webhooks missed, and (re)starts the initial
 * sync for entities waiting for a copy (an expired delta token sends an entity back to one).
 */
export async function reconcile(timer: Timer, context: InvocationContext): Promise<void> {
  const logger = loggerFor(context, { function: 'reconcile' });
  try {
    const runtime = await getRuntime();
    const durable = df.getClient(context);
    const results = await reconcileActiveProfiles({
      ...syncDepsFromRuntime(runtime, { logger }),
      async startInitialSync(profile) {
        const instanceId = initialSyncInstanceId(profile.id);
        const status = await durable.getStatus(instanceId).catch(() => undefined);
        if (status && RUNNING.has(String(status.runtimeStatus))) return;
        await durable.startNew(InitialSyncNames.orchestration, { instanceId, input: { profileId: profile.id } });
      },
    });
    logger.info('reconcile finished', { profiles: results.length, isPastDue: timer.isPastDue });
  } catch (thrown) {
    const error = toAppError(thrown);
    logger.error('reconcile failed', { error });
    throw error;
  }
}

app.timer('reconcile', {
  schedule: '%ReconcileSchedule%',
  extraInputs: [df.input.durableClient()],
  handler: reconcile,
});
