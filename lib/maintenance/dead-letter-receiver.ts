import type { ServiceBusClient, ServiceBusReceivedMessage } from '@azure/service-bus';
import { CHANGES_QUEUE } from '../queue/envelope.js';
import type { DeadLetterReceiver } from './dead-letters.js';

export interface ClosableDeadLetterReceiver extends DeadLetterReceiver<ServiceBusReceivedMessage> {
  close(): Promise<void>;
}

/** A peek-lock receiver on the queue's dead-letter sub-queue (`changes/$deadletterqueue`). */
export function openDeadLetterReceiver(
  client: ServiceBusClient,
  queueName = CHANGES_QUEUE,
): ClosableDeadLetterReceiver {
  const receiver = client.createReceiver(queueName, { subQueueType: 'deadLetter', receiveMode: 'peekLock' });
  return {
    receiveMessages: (maxMessages, maxWaitTimeInMs) => receiver.receiveMessages(maxMessages, { maxWaitTimeInMs }),
    completeMessage: (message) => receiver.completeMessage(message),
    close: () => receiver.close(),
  };
}
