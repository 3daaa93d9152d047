import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ServiceBusClient,
  type ServiceBusMessage,
  type ServiceBusReceivedMessage,
  type ServiceBusReceiver,
} from '@azure/service-bus';
import { type ServiceBusStandInOptions, startServiceBusStandIn } from '../../dev/servicebus/index.js';

/** A stand-in with one client, torn down together. */
async function openStandIn(options: ServiceBusStandInOptions = {}) {
  const standIn = await startServiceBusStandIn(options);
  const client = new ServiceBusClient(standIn.connectionString);
  return {
    standIn,
    client,
    async [Symbol.asyncDispose]() {
      await client.close();
      await standIn.stop();
    },
  };
}

let queueCounter = 0;
const uniqueQueue = (label: string) => `${label}-${process.pid}-${++queueCounter}`;

async function receiveAll(receiver: ServiceBusReceiver, count: number, maxWaitTimeInMs = 2000) {
  const received: ServiceBusReceivedMessage[] = [];
  while (received.length < count) {
    const batch = await receiver.receiveMessages(Math.min(count - received.length, 500), { maxWaitTimeInMs });
    if (!batch.length) break;
    received.push(...batch);
  }
  return received;
}

async function sendInBatches(client: ServiceBusClient, queue: string, messages: ServiceBusMessage[]) {
  const sender = client.createSender(queue);
  let batch = await sender.createMessageBatch();
  for (const message of messages) {
    if (batch.tryAddMessage(message)) continue;
    await sender.sendMessages(batch);
    batch = await sender.createMessageBatch();
    assert.ok(batch.tryAddMessage(message), 'a single message fits an empty batch');
  }
  if (batch.count) await sender.sendMessages(batch);
  await sender.close();
}

describe('Service Bus stand-in with the real @azure/service-bus client', () => {
  let shared: Awaited<ReturnType<typeof openStandIn>>;
  before(async () => {
    shared = await openStandIn();
  });
  after(async () => {
    await shared[Symbol.asyncDispose]();
  });

  it('sends, receives and completes a message with its properties intact', async () => {
    const queue = uniqueQueue('roundtrip');
    const sender = shared.client.createSender(queue);
    await sender.sendMessages({
      body: { entity: 'account', id: 42, name: 'Contoso ✓' },
      messageId: 'msg-1',
      correlationId: 'corr-1',
      contentType: 'application/json',
      subject: 'change',
      applicationProperties: { profileId: 'p1', attempt: 3, negative: -7, ratio: 0.5, urgent: true },
    });
    const receiver = shared.client.createReceiver(queue);
    const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    assert.ok(message, 'a message arrives');
    assert.deepEqual(message.body, { entity: 'account', id: 42, name: 'Contoso ✓' });
    assert.equal(message.messageId, 'msg-1');
    assert.equal(message.correlationId, 'corr-1');
    assert.equal(message.contentType, 'application/json');
    assert.equal(message.subject, 'change');
    assert.deepEqual(message.applicationProperties, {
      profileId: 'p1',
      attempt: 3,
      negative: -7,
      ratio: 0.5,
      urgent: true,
    });
    assert.equal(message.deliveryCount, 0, 'first delivery carries 0 on the wire, as Service Bus does');
    assert.equal(message.sequenceNumber?.toNumber(), 1);
    assert.ok(message.enqueuedTimeUtc instanceof Date);
    assert.ok(message.lockedUntilUtc && message.lockedUntilUtc.getTime() > Date.now());
    assert.match(message.lockToken ?? '', /^[0-9a-f-]{36}$/);
    assert.deepEqual(shared.standIn.stats(queue), { active: 0, scheduled: 0, locked: 1, deadLetter: 0 });
    await receiver.completeMessage(message);
    assert.deepEqual(shared.standIn.stats(queue), { active: 0, scheduled: 0, locked: 0, deadLetter: 0 });
    await sender.close();
    await receiver.close();
  });

  it('delivers each of 500 batched messages exactly once', async () => {
    const queue = uniqueQueue('batch');
    const messages = Array.from({ length: 500 }, (_, i) => ({ body: { i }, messageId: `m-${i}` }));
    await sendInBatches(shared.client, queue, messages);
    assert.equal(shared.standIn.stats(queue).active, 500);
    const receiver = shared.client.createReceiver(queue);
    const received = await receiveAll(receiver, 600, 1000);
    await Promise.all(received.map((m) => receiver.completeMessage(m)));
    assert.equal(received.length, 500);
    assert.deepEqual(new Set(received.map((m) => (m.body as { i: number }).i)), new Set(messages.map((m) => m.body.i)));
    assert.deepEqual(shared.standIn.stats(queue), { active: 0, scheduled: 0, locked: 0, deadLetter: 0 });
    await receiver.close();
  });

  it('redelivers an abandoned message with its delivery count raised by one', async () => {
    const queue = uniqueQueue('abandon');
    await shared.client.createSender(queue).sendMessages({ body: 'again', messageId: 'a-1' });
    const receiver = shared.client.createReceiver(queue);
    const [first] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    await receiver.abandonMessage(first, { retriedBy: 'test' });
    const [second] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    assert.equal(second.messageId, 'a-1');
    assert.equal(second.deliveryCount, first.deliveryCount! + 1);
    assert.equal(second.applicationProperties?.retriedBy, 'test', 'propertiesToModify are applied');
    await receiver.completeMessage(second);
    await receiver.close();
  });

  it('moves a dead-lettered message to the DLQ with its reason and description', async () => {
    const queue = uniqueQueue('deadletter');
    await shared.client.createSender(queue).sendMessages({
      body: 'poison',
      messageId: 'd-1',
      applicationProperties: { source: 'webhook' },
    });
    const receiver = shared.client.createReceiver(queue);
    const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    await receiver.deadLetterMessage(message, {
      deadLetterReason: 'ValidationFailed',
      deadLetterErrorDescription: 'entity name is not a legal identifier',
    });
    assert.deepEqual(shared.standIn.stats(queue), { active: 0, scheduled: 0, locked: 0, deadLetter: 1 });
    const dlq = shared.client.createReceiver(queue, { subQueueType: 'deadLetter' });
    const [dead] = await dlq.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    assert.equal(dead.messageId, 'd-1');
    assert.equal(dead.body, 'poison');
    assert.equal(dead.deadLetterReason, 'ValidationFailed');
    assert.equal(dead.deadLetterErrorDescription, 'entity name is not a legal identifier');
    assert.equal(dead.applicationProperties?.source, 'webhook');
    await dlq.completeMessage(dead);
    assert.equal(shared.standIn.stats(queue).deadLetter, 0);
    await receiver.close();
    await dlq.close();
  });

  it('shows messages to peek without locking them', async () => {
    const queue = uniqueQueue('peek');
    await shared.client.createSender(queue).sendMessages([1, 2, 3].map((n) => ({ body: n, messageId: `p-${n}` })));
    const receiver = shared.client.createReceiver(queue);
    const peeked = await receiver.peekMessages(10);
    assert.deepEqual(
      peeked.map((m) => m.body),
      [1, 2, 3],
    );
    assert.deepEqual(
      peeked.map((m) => m.sequenceNumber?.toNumber()),
      [1, 2, 3],
    );
    assert.equal(peeked[0].lockToken, undefined);
    assert.deepEqual(shared.standIn.stats(queue), { active: 3, scheduled: 0, locked: 0, deadLetter: 0 });
    await receiver.close();
  });

  it('holds a scheduled message back until its time, and can cancel one', async () => {
    const queue = uniqueQueue('scheduled');
    const sender = shared.client.createSender(queue);
    const at = new Date(Date.now() + 1500);
    const [kept] = await sender.scheduleMessages({ body: 'later', messageId: 's-1' }, at);
    const [cancelled] = await sender.scheduleMessages({ body: 'never', messageId: 's-2' }, at);
    await sender.cancelScheduledMessages(cancelled);
    assert.deepEqual(shared.standIn.stats(queue), { active: 0, scheduled: 1, locked: 0, deadLetter: 0 });
    const receiver = shared.client.createReceiver(queue);
    const [peeked] = await receiver.peekMessages(1);
    assert.equal(peeked.state, 'scheduled');
    assert.equal(peeked.sequenceNumber?.toNumber(), kept.toNumber());
    const early = await receiver.receiveMessages(1, { maxWaitTimeInMs: 500 });
    assert.equal(early.length, 0, 'not visible before its time');
    await sleep(Math.max(0, at.getTime() - Date.now()));
    const [due] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    assert.ok(due, 'visible once its time has come');
    assert.equal(due.body, 'later');
    assert.ok(Date.now() >= at.getTime());
    await receiver.completeMessage(due);
    assert.equal((await receiver.receiveMessages(1, { maxWaitTimeInMs: 300 })).length, 0);
    await sender.close();
    await receiver.close();
  });

  it('removes messages on receipt in receiveAndDelete mode', async () => {
    const queue = uniqueQueue('rad');
    await shared.client.createSender(queue).sendMessages([{ body: 'x' }, { body: 'y' }]);
    const receiver = shared.client.createReceiver(queue, { receiveMode: 'receiveAndDelete' });
    const received = await receiveAll(receiver, 2);
    assert.deepEqual(received.map((m) => m.body).sort(), ['x', 'y']);
    assert.ok(
      received.every((m) => m.messageId),
      'the stand-in assigns message ids',
    );
    assert.deepEqual(shared.standIn.stats(queue), { active: 0, scheduled: 0, locked: 0, deadLetter: 0 });
    await receiver.close();
  });

  it('delivers to a subscribe() handler and completes automatically', async () => {
    const queue = uniqueQueue('subscribe');
    await sendInBatches(
      shared.client,
      queue,
      Array.from({ length: 50 }, (_, i) => ({ body: i })),
    );
    const receiver = shared.client.createReceiver(queue);
    const seen = new Set<number>();
    await new Promise<void>((resolve, reject) => {
      receiver.subscribe(
        {
          async processMessage(message) {
            seen.add(message.body as number);
            if (seen.size === 50) resolve();
          },
          async processError(args) {
            reject(args.error);
          },
        },
        { maxConcurrentCalls: 5 },
      );
    });
    await receiver.close();
    assert.equal(seen.size, 50);
    assert.deepEqual(shared.standIn.stats(queue), { active: 0, scheduled: 0, locked: 0, deadLetter: 0 });
  });
});

describe('Service Bus stand-in lock and delivery policies', () => {
  it('dead-letters a message abandoned more than maxDeliveryCount times', async () => {
    await using sb = await openStandIn({ maxDeliveryCount: 3 });
    const queue = uniqueQueue('maxdelivery');
    await sb.client.createSender(queue).sendMessages({ body: 'flaky', messageId: 'x-1' });
    const receiver = sb.client.createReceiver(queue);
    for (let attempt = 0; attempt < 3; attempt++) {
      const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
      assert.equal(message.deliveryCount, attempt);
      await receiver.abandonMessage(message);
    }
    assert.deepEqual(sb.standIn.stats(queue), { active: 0, scheduled: 0, locked: 0, deadLetter: 1 });
    const dlq = sb.client.createReceiver(queue, { subQueueType: 'deadLetter' });
    const [dead] = await dlq.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    assert.equal(dead.messageId, 'x-1');
    assert.equal(dead.deadLetterReason, 'MaxDeliveryCountExceeded');
    await dlq.completeMessage(dead);
    await receiver.close();
    await dlq.close();
  });

  it('redelivers a message whose lock expired, and refuses the stale settlement', async () => {
    await using sb = await openStandIn({ lockDurationMs: 300 });
    const queue = uniqueQueue('expiry');
    await sb.client.createSender(queue).sendMessages({ body: 'slow', messageId: 'e-1' });
    // The SDK renews locks on its own (5 minutes by default); a lock can only expire with that switched off.
    const receiver = sb.client.createReceiver(queue, { maxAutoLockRenewalDurationInMs: 0 });
    const [first] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    await sleep(500);
    assert.deepEqual(sb.standIn.stats(queue), { active: 1, scheduled: 0, locked: 0, deadLetter: 0 });
    const [second] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    assert.equal(second.messageId, 'e-1');
    assert.equal(second.deliveryCount, first.deliveryCount! + 1);
    await assert.rejects(receiver.completeMessage(first), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'MessageLockLost');
      return true;
    });
    await receiver.completeMessage(second);
    await receiver.close();
  });

  it('extends a lock on renewMessageLock', async () => {
    await using sb = await openStandIn({ lockDurationMs: 800 });
    const queue = uniqueQueue('renew');
    await sb.client.createSender(queue).sendMessages({ body: 'long job' });
    const receiver = sb.client.createReceiver(queue, { maxAutoLockRenewalDurationInMs: 0 });
    const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    const firstExpiry = message.lockedUntilUtc!.getTime();
    await sleep(500);
    const renewed = await receiver.renewMessageLock(message);
    assert.ok(renewed.getTime() > firstExpiry, 'the new expiry is later');
    await sleep(500); // past the original expiry
    assert.deepEqual(sb.standIn.stats(queue), { active: 0, scheduled: 0, locked: 1, deadLetter: 0 });
    await receiver.completeMessage(message);
    assert.deepEqual(sb.standIn.stats(queue), { active: 0, scheduled: 0, locked: 0, deadLetter: 0 });
    await receiver.close();
  });
});

describe('Service Bus stand-in persistence', () => {
  it('brings back every unsettled message after a restart on the same file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sb-standin-'));
    const persistFile = join(dir, 'queues.json');
    const queue = uniqueQueue('persist');
    try {
      {
        await using sb = await openStandIn({ persistFile });
        await sb.client.createSender(queue).sendMessages(
          Array.from({ length: 6 }, (_, i) => ({
            body: { i },
            messageId: `r-${i}`,
            applicationProperties: { i },
          })),
        );
        const receiver = sb.client.createReceiver(queue);
        const got = await receiveAll(receiver, 3);
        assert.equal(got.length, 3);
        await receiver.completeMessage(got[0]);
        await receiver.deadLetterMessage(got[1], {
          deadLetterReason: 'Kept',
          deadLetterErrorDescription: 'kept for the restart test',
        });
        // got[2] stays locked and unsettled across the restart
        await receiver.close();
      }
      await using sb = await openStandIn({ persistFile });
      assert.deepEqual(sb.standIn.stats(queue), { active: 4, scheduled: 0, locked: 0, deadLetter: 1 });
      const receiver = sb.client.createReceiver(queue);
      const back = await receiveAll(receiver, 10, 500);
      assert.deepEqual(back.map((m) => m.messageId).sort(), ['r-2', 'r-3', 'r-4', 'r-5']);
      assert.ok(back.every((m) => m.applicationProperties?.i === (m.body as { i: number }).i));
      await Promise.all(back.map((m) => receiver.completeMessage(m)));
      const dlq = sb.client.createReceiver(queue, { subQueueType: 'deadLetter' });
      const [dead] = await dlq.receiveMessages(1, { maxWaitTimeInMs: 2000 });
      assert.equal(dead.messageId, 'r-1');
      assert.equal(dead.deadLetterReason, 'Kept');
      await dlq.completeMessage(dead);
      await receiver.close();
      await dlq.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('lets a client carry on by itself after a broker restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sb-standin-'));
    const queue = uniqueQueue('restart');
    try {
      await using sb = await openStandIn({ persistFile: join(dir, 'queues.json') });
      const sender = sb.client.createSender(queue);
      const receiver = sb.client.createReceiver(queue, { maxAutoLockRenewalDurationInMs: 0 });
      await sender.sendMessages({ body: 'before', messageId: 'b-1' });
      const [locked] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
      assert.equal(locked.messageId, 'b-1');

      await sb.standIn.restart();
      assert.deepEqual(sb.standIn.stats(queue), { active: 1, scheduled: 0, locked: 0, deadLetter: 0 });
      await sender.sendMessages({ body: 'after', messageId: 'b-2' });
      await assert.rejects(receiver.completeMessage(locked), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'MessageLockLost', 'a lock does not survive the restart');
        return true;
      });
      const back = await receiveAll(receiver, 2);
      assert.deepEqual(back.map((m) => m.messageId).sort(), ['b-1', 'b-2']);
      assert.equal(back.find((m) => m.messageId === 'b-1')?.deliveryCount, 1);
      await Promise.all(back.map((m) => receiver.completeMessage(m)));
      assert.deepEqual(sb.standIn.stats(queue), { active: 0, scheduled: 0, locked: 0, deadLetter: 0 });
      await sender.close();
      await receiver.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
