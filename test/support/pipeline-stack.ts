import { randomBytes } from 'node:crypto';
import type { ServiceBusReceiver } from '@azure/service-bus';
import { startServiceBusStandIn } from '../../dev/servicebus/index.js';
import { applyMessages } from '../../lib/pipeline/apply-queued-changes.js';
import type { ExportProfile } from '../../lib/profiles/schema.js';
import { withDefaults } from '../../lib/profiles/schema.js';
import { CHANGES_QUEUE } from '../../lib/queue/envelope.js';
import { createRuntime, type Runtime } from '../../lib/runtime.js';
import { testAzuriteConnectionString } from './azurite.js';
import { createTestDatabase, type TestDatabase } from './postgres.js';

export interface PipelineStack extends AsyncDisposable {
  runtime: Runtime;
  db: TestDatabase;
  standIn: Awaited<ReturnType<typeof startServiceBusStandIn>>;
  organizationId: string;
  /** The settings the runtime was built from (a test may copy them into process.env for `getRuntime()`). */
  settings: Record<string, string>;
  createProfile(overrides?: Partial<Parameters<typeof withDefaults>[0]>): Promise<ExportProfile>;
  /** Runs the apply trigger's loop (receive a batch, apply, complete; abandon on throw) until the queue is idle. */
  drain(options?: { timeoutMs?: number; batchSize?: number }): Promise<{ batches: number; abandoned: number }>;
}

/**
 * The pipeline's real parts in one test process: control store and target in an embedded PostgreSQL
 * database, claim checks and failure logs in Azurite, the queue in the AMQP stand-in, wired by the same
 * `createRuntime` the functions use.
 */
export async function startPipelineStack(
  options: { settings?: Record<string, string>; secrets?: Record<string, string> } = {},
): Promise<PipelineStack> {
  const db = await createTestDatabase();
  // The queue's lock in Azure (PT1M): a batch outlasting a shorter lock on a busy machine is redelivered, counted twice.
  const standIn = await startServiceBusStandIn({ lockDurationMs: 60_000 });
  const storage = await testAzuriteConnectionString();
  const settings: Record<string, string> = {
    ControlStoreKind: 'postgres',
    ControlStoreConnection: db.url,
    ServiceBusConnection: standIn.connectionString,
    PayloadStorageConnection: storage,
    LocalSecrets: JSON.stringify({
      target: db.url,
      'payload-encryption-key': randomBytes(32).toString('base64'),
      ...options.secrets,
    }),
    DataverseCredential: 'none',
    AllowLoopbackDataverse: 'true',
    TargetOutageBackoffSeconds: '1',
    LogLevel: 'error',
    ...options.settings,
  };
  const runtime = await createRuntime(settings);
  const organizationId = crypto.randomUUID();
  let receiver: ServiceBusReceiver | undefined;

  return {
    runtime,
    db,
    standIn,
    organizationId,
    settings,
    async createProfile(overrides = {}) {
      const profile = await runtime.store.createProfile(
        withDefaults({
          name: 'pipeline test',
          organizationId,
          source: { url: 'http://127.0.0.1:9' },
          target: { kind: 'postgres', connectionSecret: 'target' },
          entities: ['account'],
          options: { retryCount: 2, retryIntervalSeconds: 1 },
          ...overrides,
        }),
      );
      const active = await runtime.store.setProfileState(profile.id, 'Active');
      if (!active) throw new Error('profile vanished');
      return active;
    },
    async drain({ timeoutMs = 60_000, batchSize = 500 } = {}) {
      receiver ??= runtime.serviceBus.createReceiver(CHANGES_QUEUE);
      const deadline = Date.now() + timeoutMs;
      let batches = 0;
      let abandoned = 0;
      let idlePolls = 0;
      while (Date.now() < deadline) {
        const messages = await receiver.receiveMessages(batchSize, { maxWaitTimeInMs: 200 });
        if (!messages.length) {
          const s = standIn.stats(CHANGES_QUEUE);
          if (s.active + s.scheduled + s.locked === 0 && ++idlePolls >= 2) return { batches, abandoned };
          continue;
        }
        idlePolls = 0;
        batches++;
        try {
          await applyMessages(
            runtime.applyDeps(),
            messages.map((m) => m.body),
          );
          await Promise.all(messages.map((m) => receiver!.completeMessage(m)));
        } catch (err) {
          console.error('[drain] batch abandoned:', err);
          abandoned++;
          await Promise.all(messages.map((m) => receiver!.abandonMessage(m).catch(() => undefined)));
        }
      }
      throw new Error(
        `the queue did not drain within ${timeoutMs} ms: ${JSON.stringify(standIn.stats(CHANGES_QUEUE))}`,
      );
    },
    async [Symbol.asyncDispose]() {
      await receiver?.close().catch(() => undefined);
      await runtime.close();
      await standIn.stop();
      await db[Symbol.asyncDispose]();
    },
  };
}
