import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ServiceBusClient } from '@azure/service-bus';
import { DevHost, loadFunctionApp } from '../../dev/host/index.js';
import { type ServiceBusStandIn, startServiceBusStandIn } from '../../dev/servicebus/index.js';
import { createLogger } from '../../lib/log.js';
import { observed } from '../fixtures/functions-app/state.js';

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/functions-app/${name}.js`, import.meta.url));

interface Change {
  id: string;
  failOnce?: boolean;
}

async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('dev host: Service Bus trigger against the AMQP stand-in', () => {
  let standIn: ServiceBusStandIn;
  let client: ServiceBusClient;
  let host: DevHost;
  const queue = `changes-${process.pid}`;

  before(async () => {
    standIn = await startServiceBusStandIn();
    client = new ServiceBusClient(standIn.connectionString);
    // Queued before the host starts, so the first receive can take them as one batch.
    const sender = client.createSender(queue);
    const bodies: Change[] = [{ id: 'm1' }, { id: 'm2' }, { id: 'm3', failOnce: true }, { id: 'm4' }, { id: 'm5' }];
    await sender.sendMessages(
      bodies.map((body) => ({ body, messageId: body.id, applicationProperties: { source: 'dev-host-test' } })),
    );
    await sender.close();

    const env = { ServiceBusConnection: standIn.connectionString, ChangesQueue: queue };
    const registry = await loadFunctionApp([fixture('servicebus')], { env });
    host = new DevHost(registry, {
      functionKey: 'unused',
      env,
      logger: createLogger({ level: 'error', sink: () => {} }),
      serviceBusMaxWaitMs: 200,
    });
    await host.start();
  });

  after(async () => {
    await host?.stop();
    await client?.close();
    await standIn?.stop();
  });

  it('delivers batches (cardinality many): an array of parsed bodies with the …Array metadata', async () => {
    await waitFor('every message handled', () => handledIds().length === 5, 10_000);
    const batch = observed.batches[0];
    assert.ok(batch.messages.length > 1, `the first batch held ${batch.messages.length} message(s)`);
    for (const { messages, metadata } of observed.batches) {
      const ids = (messages as Change[]).map((m) => m.id);
      assert.deepEqual(metadata.messageIdArray, ids, 'messageIdArray follows the bodies');
      assert.equal((metadata.deliveryCountArray as number[]).length, ids.length);
      assert.equal((metadata.sequenceNumberArray as number[]).length, ids.length);
      assert.equal((metadata.enqueuedTimeUtcArray as string[]).length, ids.length);
      for (const props of metadata.applicationPropertiesArray as Record<string, unknown>[]) {
        assert.deepEqual(props, { source: 'dev-host-test' });
      }
    }
  });

  it('abandons a batch whose handler threw, so the broker redelivers it with a higher delivery count', async () => {
    await waitFor('every message handled', () => handledIds().length === 5, 10_000);
    const failed = observed.batches.find((b) => (b.messages as Change[]).some((m) => m.id === 'm3'))!;
    const retried = observed.batches.filter((b) => b !== failed && (b.messages as Change[]).some((m) => m.id === 'm3'));
    assert.equal(retried.length, 1, 'm3 came back once');
    const at = (retried[0].messages as Change[]).findIndex((m) => m.id === 'm3');
    assert.equal((failed.metadata.deliveryCountArray as number[])[0], 1);
    assert.equal((retried[0].metadata.deliveryCountArray as number[])[at], 2);
    // Every message of the failed batch came back, not only the one that caused the throw.
    for (const m of failed.messages as Change[]) {
      assert.ok(
        retried.some((b) => (b.messages as Change[]).some((r) => r.id === m.id)),
        `${m.id} was redelivered`,
      );
    }
  });

  it('completes messages after the handler succeeded: the queue ends empty, nothing dead-lettered', async () => {
    await waitFor('every message handled', () => handledIds().length === 5, 10_000);
    await waitFor(
      'the queue to drain',
      () => {
        const s = standIn.stats(queue);
        return s.active === 0 && s.locked === 0;
      },
      5000,
    );
    assert.equal(standIn.stats(queue).deadLetter, 0);
  });
});

/** Ids of messages that were in a batch the handler finished without throwing. */
function handledIds(): string[] {
  const ok = observed.batches.filter((b) => !(b.messages as Change[]).some((m) => m.failOnce && !seenBefore(b, m.id)));
  return [...new Set(ok.flatMap((b) => (b.messages as Change[]).map((m) => m.id)))].sort();
}

/** True when the message with this id was already in an earlier batch (its failOnce already spent). */
function seenBefore(batch: (typeof observed.batches)[number], id: string): boolean {
  const at = observed.batches.indexOf(batch);
  return observed.batches.slice(0, at).some((b) => (b.messages as Change[]).some((m) => m.id === id));
}

describe('dev host: Service Bus batch size from host.json', () => {
  it('hands the handler at most maxMessageBatchSize messages per call', async () => {
    const standIn = await startServiceBusStandIn();
    const queue = `small-batches-${process.pid}`;
    const dir = mkdtempSync(join(tmpdir(), 'dev-host-sb-'));
    const hostJson = join(dir, 'host.json');
    writeFileSync(hostJson, JSON.stringify({ extensions: { serviceBus: { maxMessageBatchSize: 2 } } }));
    const client = new ServiceBusClient(standIn.connectionString);
    const env = { ServiceBusConnection: standIn.connectionString, ChangesQueue: queue };
    const host = new DevHost(await loadFunctionApp([fixture('servicebus')], { env }), {
      functionKey: 'unused',
      env,
      hostJson,
      logger: createLogger({ level: 'error', sink: () => {} }),
      serviceBusMaxWaitMs: 200,
    });
    try {
      const ids = ['s1', 's2', 's3', 's4', 's5'];
      const sender = client.createSender(queue);
      await sender.sendMessages(ids.map((id) => ({ body: { id }, messageId: id })));
      await sender.close();
      await host.start();
      const mine = () => observed.batches.filter((b) => (b.messages as Change[]).some((m) => ids.includes(m.id)));
      await waitFor('all five messages', () => mine().flatMap((b) => b.messages).length === 5, 10_000);
      assert.ok(
        mine().every((b) => b.messages.length <= 2),
        `batch sizes ${mine().map((b) => b.messages.length)}`,
      );
    } finally {
      await host.stop();
      await client.close();
      await standIn.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('dev host: Service Bus trigger with one message per call', () => {
  it('runs up to maxConcurrentCalls handlers at once and passes single-message metadata', async () => {
    const standIn = await startServiceBusStandIn();
    const queue = `single-${process.pid}`;
    const client = new ServiceBusClient(standIn.connectionString);
    const env = { ServiceBusConnection: standIn.connectionString, SingleQueue: queue };
    const host = new DevHost(await loadFunctionApp([fixture('servicebus-single')], { env }), {
      functionKey: 'unused',
      env,
      serviceBusConcurrency: 3,
      logger: createLogger({ level: 'error', sink: () => {} }),
      serviceBusMaxWaitMs: 200,
    });
    try {
      const ids = ['o1', 'o2', 'o3', 'o4', 'o5', 'o6'];
      const sender = client.createSender(queue);
      await sender.sendMessages(ids.map((id) => ({ body: { id }, messageId: id })));
      await sender.close();
      observed.slowSteps.mostAtOnce = 0;
      await host.start();
      const mine = () => observed.batches.filter((b) => (b.messages as Change[]).some((m) => ids.includes(m.id)));
      await waitFor('all six messages', () => mine().length === 6, 10_000);
      assert.ok(
        observed.slowSteps.mostAtOnce > 1 && observed.slowSteps.mostAtOnce <= 3,
        `${observed.slowSteps.mostAtOnce}`,
      );
      for (const { messages, metadata } of mine()) {
        assert.equal(metadata.messageId, (messages[0] as Change).id);
        assert.equal(metadata.deliveryCount, 1);
      }
      await waitFor('the queue to drain', () => standIn.stats(queue).active + standIn.stats(queue).locked === 0, 5000);
    } finally {
      await host.stop();
      await client.close();
      await standIn.stop();
    }
  });
});

describe('dev host: Service Bus batches and their locks', () => {
  it('renews no lock on a batch, as the extension does: a batch slower than the lock loses it and comes back', async () => {
    const standIn = await startServiceBusStandIn({ lockDurationMs: 300 });
    const queue = `slow-${process.pid}`;
    const client = new ServiceBusClient(standIn.connectionString);
    const env = { ServiceBusConnection: standIn.connectionString, SlowQueue: queue };
    const host = new DevHost(await loadFunctionApp([fixture('servicebus-slow')], { env }), {
      functionKey: 'unused',
      env,
      logger: createLogger({ level: 'error', sink: () => {} }),
      serviceBusMaxWaitMs: 200,
    });
    try {
      const ids = ['l1', 'l2', 'l3'];
      const sender = client.createSender(queue);
      await sender.sendMessages(ids.map((id) => ({ body: { id }, messageId: id })));
      await sender.close();
      await host.start();
      await waitFor('the first batch', () => observed.slowBatches.length === 1, 10_000);
      const first = observed.slowBatches[0];
      // The handler is still running: only an expired lock makes its messages visible again.
      await waitFor(
        'the broker to expire the running batch’s locks',
        () => standIn.stats(queue).locked === 0 && standIn.stats(queue).active === first.messages.length,
        10_000,
      );
      observed.slowBatchRelease.resolve();
      await waitFor(
        'every message redelivered and completed',
        () => standIn.stats(queue).active + standIn.stats(queue).locked === 0,
        10_000,
      );
      const redelivered = observed.slowBatches.slice(1);
      const again = redelivered.flatMap((b) => (b.messages as Change[]).map((m) => m.id)).sort();
      assert.deepEqual(again, (first.messages as Change[]).map((m) => m.id).sort(), 'the whole batch came back');
      assert.ok(
        redelivered.every((b) => b.deliveryCounts.every((n) => n === 2)),
        'each redelivery counts the lost lock',
      );
      assert.equal(standIn.stats(queue).deadLetter, 0);
    } finally {
      observed.slowBatchRelease.resolve();
      await host.stop();
      await client.close();
      await standIn.stop();
    }
  });
});

describe('dev host: an idle Service Bus trigger', () => {
  it('polls an empty queue without piling up abort listeners', async () => {
    const standIn = await startServiceBusStandIn();
    const env = { ServiceBusConnection: standIn.connectionString, ChangesQueue: `idle-${process.pid}` };
    const host = new DevHost(await loadFunctionApp([fixture('servicebus')], { env }), {
      functionKey: 'unused',
      env,
      logger: createLogger({ level: 'error', sink: () => {} }),
      serviceBusMaxWaitMs: 30,
    });
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
    process.on('warning', onWarning);
    try {
      await host.start();
      // Dozens of empty receives: more than the 10 listeners Node warns about.
      await new Promise((resolve) => setTimeout(resolve, 1000));
    } finally {
      await host.stop();
      await standIn.stop();
      process.off('warning', onWarning);
    }
    assert.deepEqual(
      warnings.filter((w) => w.startsWith('MaxListenersExceededWarning')),
      [],
    );
  });
});
