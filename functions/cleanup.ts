import { app, type InvocationContext, type Timer } from '@azure/functions';
import { toAppError } from '../lib/errors.js';
import { loggerFor } from '../lib/log.js';
import { runCleanup } from '../lib/maintenance/cleanup.js';
import { openDeadLetterReceiver } from '../lib/maintenance/dead-letter-receiver.js';
import { drainDeadLetters } from '../lib/maintenance/dead-letters.js';
import { getRuntime } from '../lib/runtime.js';
import { triggerBoundary } from '../lib/trigger-boundary.js';

/**
 * Turns dead-lettered changes into failure-log lines, then removes orphaned claim checks, expired and
 * deleted profiles' failure logs, and old tombstones. The drain goes first so its lines are subject to the
 * same run's deleted-profile pass. A failed drain does not stop the cleanup; the invocation still fails.
 */
export async function cleanup(timer: Timer, context: InvocationContext): Promise<void> {
  const logger = loggerFor(context, { function: 'cleanup' });
  let drainError: unknown;
  await triggerBoundary(logger, 'cleanup failed', async () => {
    const runtime = await getRuntime();
    const receiver = openDeadLetterReceiver(runtime.serviceBus);
    try {
      await drainDeadLetters({ receiver, failureLog: runtime.failureLog, logger });
    } catch (thrown) {
      drainError = toAppError(thrown);
      logger.error('dead-letter drain failed; cleanup goes on', { error: drainError });
    } finally {
      await receiver.close().catch(() => undefined);
    }
    const report = await runCleanup({
      claimChecks: runtime.claimChecks,
      blobs: runtime.blobs,
      failureLog: runtime.failureLog,
      knownProfileIds: async () => new Set((await runtime.store.listProfiles()).map((p) => p.id)),
      purgeTombstones: (olderThan) => runtime.sinks.purgeTombstones(olderThan),
      failureRetentionDays: runtime.config.failureLogRetentionDays,
      logger,
    });
    (report.failed ? logger.warn : logger.info)('cleanup finished', { ...report, isPastDue: timer.isPastDue });
  });
  if (drainError) throw drainError;
}

app.timer('cleanup', { schedule: '%CleanupSchedule%', handler: cleanup });
