import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ServiceBusClient, type ServiceBusMessage } from '@azure/service-bus';
import { type ServiceBusStandIn, startServiceBusStandIn } from '../../dev/servicebus/index.js';
import type { ChangeEvent } from '../../lib/change/change-event.js';
import { silentLogger } from '../../lib/log.js';
import { openDeadLetterReceiver } from '../../lib/maintenance/dead-letter-receiver.js';
import { DEAD_LETTERED, drainDeadLetters, UNATTRIBUTED_PROFILE_ID } from '../../lib/maintenance/dead-letters.js';
import { toServiceBusMessage } from '../../lib/queue/change-queue.js';
import { inlineMessage } from '../../lib/queue/envelope.js';
import { FailureLog } from '../../lib/storage/failure-log.js';
import { createTestStorage, stopOwnAzurite } from '../support/azurite.js';

const PROFILE_A = '3b1c2d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d';
const PROFILE_B = '9a8b7c6d-5e4f-4321-8765-0fedcba98765';
const NOW = new Date('2026-11-20T12:30:00.000Z');

const change: ChangeEvent = {
  organizationId: '6f2d1c8e-0000-4000-8000-000000000001',
  entity: 'account',
  recordId: '0a1b2c3d-0000-4000-8000-00000000beef',
  operation: 'upsert',
  version: { rowVersion: '123456' },
  operationTime: '2026-11-20T12:00:00.000Z',
  attributes: { name: { type: 'string', value: 'Contoso' } },
  correlationId: 'corr-42',
  source: 'webhook',
};

let standIn: ServiceBusStandIn;
let client: ServiceBusClient;
let queueCounter = 0;
const uniqueQueue = () => `changes-dl-${process.pid}-${++queueCounter}`;

before(async () => {
  standIn = await startServiceBusStandIn();
  client = new ServiceBusClient(standIn.connectionString);
});
after(async () => {
  await client.close();
  await standIn.stop();
  await stopOwnAzurite();
});

/** Sends the messages to `queue`, then receives and dead-letters each with the given reason. */
async function deadLetter(queue: string, messages: ServiceBusMessage[], reason: string, description: string) {
  const sender = client.createSender(queue);
  await sender.sendMessages(messages);
  await sender.close();
  const receiver = client.createReceiver(queue);
  let settled = 0;
  while (settled < messages.length) {
    const batch = await receiver.receiveMessages(messages.length - settled, { maxWaitTimeInMs: 2000 });
    assert.ok(batch.length, 'the sent messages arrive');
    for (const message of batch) {
      await receiver.deadLetterMessage(message, { deadLetterReason: reason, deadLetterErrorDescription: description });
    }
    settled += batch.length;
  }
  await receiver.close();
  assert.equal(standIn.stats(queue).deadLetter, messages.length);
}

describe('draining the dead-letter queue into the failure log', () => {
  it('writes one line per profile of a dead-lettered change, then empties the dead-letter queue', async () => {
    await using storage = await createTestStorage();
    const failureLog = new FailureLog({ blobs: storage.blobs, container: storage.container('failurelog') });
    const queue = uniqueQueue();
    await deadLetter(
      queue,
      [toServiceBusMessage(inlineMessage(change, [PROFILE_B, PROFILE_A], 2))],
      'MaxDeliveryCountExceeded',
      'Message could not be consumed after 10 delivery attempts.',
    );
    const receiver = openDeadLetterReceiver(client, queue);

    const report = await drainDeadLetters({ receiver, failureLog, logger: silentLogger, now: () => NOW, waitMs: 300 });
    await receiver.close();

    assert.deepEqual(report, { received: 1, completed: 1, linesWritten: 2, unreadable: 0, failed: 0 });
    assert.equal(standIn.stats(queue).deadLetter, 0);
    for (const profileId of [PROFILE_A, PROFILE_B]) {
      const [line, ...rest] = await failureLog.listFailures(profileId);
      assert.equal(rest.length, 0);
      assert.equal(line.profileId, profileId);
      assert.equal(line.entity, 'account');
      assert.equal(line.recordId, change.recordId);
      assert.equal(line.changeType, 'upsert');
      assert.equal(line.code, DEAD_LETTERED);
      assert.equal(line.time, NOW.toISOString());
      assert.equal(line.correlationId, 'corr-42');
      assert.match(line.reason, /MaxDeliveryCountExceeded: Message could not be consumed after 10 delivery attempts/);
      assert.match(line.reason, /resync/);
    }
  });

  it('writes an unreadable body under the unattributed id, without copying the body', async () => {
    await using storage = await createTestStorage();
    const failureLog = new FailureLog({ blobs: storage.blobs, container: storage.container('failurelog') });
    const queue = uniqueQueue();
    await deadLetter(
      queue,
      [{ body: '{"secret":"SSN-123-45-6789"', messageId: 'poison-1', contentType: 'application/json' }],
      'ValidationFailed',
      'not a change',
    );
    const receiver = openDeadLetterReceiver(client, queue);

    const report = await drainDeadLetters({ receiver, failureLog, logger: silentLogger, now: () => NOW, waitMs: 300 });
    await receiver.close();

    assert.equal(report.unreadable, 1);
    assert.equal(report.completed, 1);
    assert.equal(standIn.stats(queue).deadLetter, 0);
    const [line] = await failureLog.listFailures(UNATTRIBUTED_PROFILE_ID);
    assert.equal(line.recordId, 'poison-1');
    assert.equal(line.code, DEAD_LETTERED);
    assert.match(line.reason, /ValidationFailed: not a change/);
    assert.match(line.reason, /not a change message/);
    assert.doesNotMatch(line.reason, /SSN/);
  });

  it('drains more messages than one receive returns', async () => {
    await using storage = await createTestStorage();
    const failureLog = new FailureLog({ blobs: storage.blobs, container: storage.container('failurelog') });
    const queue = uniqueQueue();
    const messages = Array.from({ length: 12 }, (_, i) =>
      toServiceBusMessage(
        inlineMessage({ ...change, recordId: `0a1b2c3d-0000-4000-8000-0000000000${10 + i}` }, [PROFILE_A]),
      ),
    );
    await deadLetter(queue, messages, 'TTLExpiredException', 'expired');
    const receiver = openDeadLetterReceiver(client, queue);

    const report = await drainDeadLetters({ receiver, failureLog, logger: silentLogger, batchSize: 5, waitMs: 300 });
    await receiver.close();

    assert.equal(report.completed, 12);
    assert.equal(standIn.stats(queue).deadLetter, 0);
    assert.equal(new Set((await failureLog.listFailures(PROFILE_A)).map((l) => l.recordId)).size, 12);
  });

  it('leaves a message in the dead-letter queue when its line cannot be written', async () => {
    await using storage = await createTestStorage();
    // A two-character container is refused by the storage service: every write fails for real.
    const broken = new FailureLog({ blobs: storage.blobs, container: 'x' });
    const queue = uniqueQueue();
    await deadLetter(queue, [toServiceBusMessage(inlineMessage(change, [PROFILE_A]))], 'Poison', 'keeps failing');
    const receiver = openDeadLetterReceiver(client, queue);

    const report = await drainDeadLetters({ receiver, failureLog: broken, logger: silentLogger, waitMs: 300 });
    await receiver.close();

    assert.deepEqual(report, { received: 1, completed: 0, linesWritten: 0, unreadable: 0, failed: 1 });
    assert.equal(standIn.stats(queue).deadLetter, 1, 'still there for the next run');
  });
});
