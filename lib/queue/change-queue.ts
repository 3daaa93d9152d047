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

interface PendingSend {
  messages: ChangeMessage[];
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * Sends with group commit: while one send is on the wire, concurrent callers' messages gather and leave
 * together in the next batch. Each caller still resolves only once its own messages were accepted, so an
 * answered webhook is always a queued change, but a burst of deliveries costs a few round trips, not one each.
 */
export class ServiceBusChangeQueue implements ChangeQueue {
  private readonly sender: ServiceBusSender;
  private pending: PendingSend[] = [];
  private flushing = false;

  constructor(
    private readonly client: ServiceBusClient,
    queueName = CHANGES_QUEUE,
  ) {
    this.sender = client.createSender(queueName);
  }

  send(messages: ChangeMessage[]): Promise<void> {
    if (!messages.length) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ messages, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.pending.length) {
        const group = this.pending;
        this.pending = [];
        try {
          await this.sendNow(group.flatMap((p) => p.messages));
          for (const p of group) p.resolve();
        } catch (err) {
          for (const p of group) p.reject(err);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private async sendNow(messages: ChangeMessage[]): Promise<void> {
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
