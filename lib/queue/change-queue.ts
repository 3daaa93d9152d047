import {
  isServiceBusError,
  type ServiceBusClient,
  type ServiceBusMessage,
  type ServiceBusSender,
} from '@azure/service-bus';
import { AppError } from '../errors.js';
import { CHANGES_QUEUE, type ChangeMessage, messageIdOf } from './envelope.js';

/** Where ingest and apply put changes: the Service Bus queue `changes`. */
export interface ChangeQueue {
  send(messages: ChangeMessage[]): Promise<void>;
  /** Sends the messages so they become visible only at `at` (retry intervals, outage back-off). */
  schedule(messages: ChangeMessage[], at: Date): Promise<void>;
  close(): Promise<void>;
}

export function toServiceBusMessage(message: ChangeMessage): ServiceBusMessage {
  return {
    body: message,
    contentType: 'application/json',
    messageId: messageIdOf(message),
    correlationId: message.correlationId,
    subject: `${message.entity}/${message.operation}`,
    applicationProperties: { organizationId: message.organizationId, entity: message.entity, attempt: message.attempt },
  };
}

export class ServiceBusChangeQueue implements ChangeQueue {
  private readonly sender: ServiceBusSender;

  constructor(
    private readonly client: ServiceBusClient,
    queueName = CHANGES_QUEUE,
  ) {
    this.sender = client.createSender(queueName);
  }

  async send(messages: ChangeMessage[]): Promise<void> {
    if (!messages.length) return;
    try {
      let batch = await this.sender.createMessageBatch();
      for (const message of messages) {
        const sbMessage = toServiceBusMessage(message);
        if (batch.tryAddMessage(sbMessage)) continue;
        if (batch.count === 0)
          throw new AppError('QUEUE_UNAVAILABLE', `a change of ${message.entity} is too large for one message`);
        await this.sender.sendMessages(batch);
        batch = await this.sender.createMessageBatch();
        if (!batch.tryAddMessage(sbMessage)) {
          throw new AppError('QUEUE_UNAVAILABLE', `a change of ${message.entity} is too large for one message`);
        }
      }
      if (batch.count) await this.sender.sendMessages(batch);
    } catch (err) {
      throw wrapQueueError(err);
    }
  }

  async schedule(messages: ChangeMessage[], at: Date): Promise<void> {
    if (!messages.length) return;
    try {
      await this.sender.scheduleMessages(messages.map(toServiceBusMessage), at);
    } catch (err) {
      throw wrapQueueError(err);
    }
  }

  async close(): Promise<void> {
    await this.sender.close();
    await this.client.close();
  }
}

function wrapQueueError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const reason = isServiceBusError(err)
    ? `${err.code}: ${err.message}`
    : err instanceof Error
      ? err.message
      : String(err);
  return new AppError('QUEUE_UNAVAILABLE', `Service Bus did not take the change (${reason}); Dataverse will retry.`, {
    cause: err,
  });
}
