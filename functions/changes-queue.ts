import { app, type InvocationContext } from '@azure/functions';
import { loggerFor } from '../lib/log.js';
import { applyMessages } from '../lib/pipeline/apply-queued-changes.js';
import { getRuntime } from '../lib/runtime.js';
import { triggerBoundary } from '../lib/trigger-boundary.js';

/**
 * Applies a batch from queue `changes`. Returning completes every message; throwing (only when the failure
 * log or the queue itself cannot be written) abandons the batch for redelivery, which is idempotent.
 */
export async function applyChanges(messages: unknown[], context: InvocationContext): Promise<void> {
  const logger = loggerFor(context, { function: 'applyChanges', messages: messages.length });
  await triggerBoundary(logger, 'batch abandoned for redelivery', async () => {
    const runtime = await getRuntime();
    const summary = await applyMessages(runtime.applyDeps(logger), messages);
    logger.info('batch applied', { ...summary });
  });
}

app.serviceBusQueue('applyChanges', {
  connection: 'ServiceBusConnection',
  queueName: 'changes',
  cardinality: 'many',
  autoCompleteMessages: true,
  handler: (messages, context) => applyChanges(messages as unknown[], context),
});
