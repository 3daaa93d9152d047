/**
 * Feeds a `serviceBusTrigger` from a real `@azure/service-bus` receiver (peekLock), shaped as the host does:
 * one message or a batch (`cardinality: 'many'`, up to `maxBatchSize` like host.json's
 * `maxMessageBatchSize`), bodies as strings the library JSON-parses, PascalCase trigger metadata with
 * `…Array` variants for batches. Success completes (unless `autoCompleteMessages: false`), a throw abandons.
 * Like the extension, it renews the lock of a single message (up to `maxAutoLockRenewalDuration`) but never the
 * locks of a batch: a batch that outlasts the queue's lock duration loses them, and the broker redelivers it.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import {
  ServiceBusClient as SBClient,
  type ServiceBusClient,
  type ServiceBusReceivedMessage,
  type ServiceBusReceiver,
} from '@azure/service-bus';
import type { Logger } from '../../lib/log.js';
import type { RpcTypedData } from './core-api.js';
import { messageOf } from './invoke.js';
import type { FunctionRegistration } from './registry.js';

export interface ServiceBusFeedOptions {
  connectionString: string;
  maxBatchSize: number;
  /** Batches (or single messages) in flight at once for this trigger. */
  concurrency: number;
  /** Complete after success (the trigger's option, else host.json's). */
  autoCompleteMessages: boolean;
  /** How long one receive waits for the first message. */
  maxWaitTimeInMs: number;
  /** host.json `maxAutoLockRenewalDuration`: applies to single messages only; batches are never renewed. */
  maxAutoLockRenewalDurationMs: number;
  /** Batches (`cardinality: 'many'`): wait for this many messages, or for `maxBatchWaitMs`, as the host does. */
  minBatchSize?: number;
  maxBatchWaitMs?: number;
  logger: Logger;
  invoke(
    fn: FunctionRegistration,
    input: { data: RpcTypedData; triggerMetadata: Record<string, RpcTypedData> },
  ): Promise<unknown>;
}

export class ServiceBusTriggerFeed {
  #client: ServiceBusClient | undefined;
  readonly #receivers: ServiceBusReceiver[] = [];
  #loops: Promise<void>[] = [];
  readonly #abort = new AbortController();

  constructor(
    readonly fn: FunctionRegistration,
    private readonly options: ServiceBusFeedOptions,
  ) {}

  get many(): boolean {
    return this.fn.trigger.cardinality === 'many';
  }

  start(): void {
    const { trigger } = this.fn;
    const client = new SBClient(this.options.connectionString);
    this.#client = client;
    const receiverOptions = {
      receiveMode: 'peekLock' as const,
      maxAutoLockRenewalDurationInMs: this.many ? 0 : this.options.maxAutoLockRenewalDurationMs,
    };
    // One receiver per loop: a receiver serves one receiveMessages call at a time.
    for (let i = 0; i < Math.max(1, this.options.concurrency); i++) {
      const receiver = trigger.queueName
        ? client.createReceiver(String(trigger.queueName), receiverOptions)
        : client.createReceiver(String(trigger.topicName), String(trigger.subscriptionName), receiverOptions);
      this.#receivers.push(receiver);
      this.#loops.push(this.#loop(receiver));
    }
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.allSettled(this.#loops);
    this.#loops = [];
    await Promise.all(this.#receivers.splice(0).map((r) => r.close().catch(() => {})));
    await this.#client?.close().catch(() => {});
    this.#client = undefined;
  }

  async #loop(receiver: ServiceBusReceiver): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      let messages: ServiceBusReceivedMessage[];
      // A signal per call: @azure/service-bus 7.9 leaves one abort listener on the signal of every
      // receiveMessages call, which on the feed's long-lived signal grows without bound while idle.
      const call = new AbortController();
      const stopCall = () => call.abort();
      signal.addEventListener('abort', stopCall, { once: true });
      try {
        messages = this.many
          ? await this.#receiveBatch(receiver, call.signal)
          : await receiver.receiveMessages(1, {
              maxWaitTimeInMs: this.options.maxWaitTimeInMs,
              abortSignal: call.signal,
            });
      } catch (err) {
        if (signal.aborted) return;
        this.options.logger.warn('Service Bus receive failed; retrying', {
          function: this.fn.name,
          error: messageOf(err),
        });
        await sleep(1000, undefined, { signal }).catch(() => {});
        continue;
      } finally {
        signal.removeEventListener('abort', stopCall);
      }
      if (messages.length === 0) continue;
      await this.#deliver(receiver, messages);
    }
  }

  /**
   * The extension's batching: return once `minBatchSize` messages are in hand (plus whatever else is ready
   * at once, up to the maximum) or `maxBatchWaitMs` after asking, so a trickle is not held for long and a
   * flood still fills large batches.
   */
  async #receiveBatch(receiver: ServiceBusReceiver, abortSignal: AbortSignal): Promise<ServiceBusReceivedMessage[]> {
    const max = this.options.maxBatchSize;
    const min = Math.min(this.options.minBatchSize ?? 1, max);
    const wait = this.options.maxBatchWaitMs ?? this.options.maxWaitTimeInMs;
    const first = await receiver.receiveMessages(min, { maxWaitTimeInMs: wait, abortSignal });
    if (first.length < min || first.length >= max) return first;
    const more = await receiver.receiveMessages(max - first.length, { maxWaitTimeInMs: 10, abortSignal });
    return first.concat(more);
  }

  async #deliver(receiver: ServiceBusReceiver, messages: ServiceBusReceivedMessage[]): Promise<void> {
    let failed = false;
    try {
      await this.options.invoke(this.fn, this.many ? batchInput(messages) : singleInput(messages[0]));
    } catch {
      failed = true;
    }
    const autoComplete = this.options.autoCompleteMessages;
    // Settled in parallel, as the extension does: one round trip per batch rather than per message.
    await Promise.all(messages.map((message) => this.#settle(receiver, message, failed, autoComplete)));
  }

  async #settle(
    receiver: ServiceBusReceiver,
    message: ServiceBusReceivedMessage,
    failed: boolean,
    autoComplete: boolean,
  ) {
    try {
      if (failed) await receiver.abandonMessage(message);
      else if (autoComplete) await receiver.completeMessage(message);
    } catch (err) {
      // Already settled by the handler, or the lock was lost: the broker redelivers either way.
      this.options.logger.debug('Service Bus settlement skipped', {
        function: this.fn.name,
        messageId: String(message.messageId),
        error: messageOf(err),
      });
    }
  }
}

/** The message body as the host hands it to a Node worker: text (JSON stays JSON text). */
export function bodyText(body: unknown): string {
  if (typeof body === 'string') return body;
  if (Buffer.isBuffer(body) || body instanceof Uint8Array) return Buffer.from(body).toString('utf8');
  return JSON.stringify(body ?? null);
}

const metadataFields: [string, (m: ServiceBusReceivedMessage) => unknown][] = [
  ['MessageId', (m) => (m.messageId === undefined ? null : String(m.messageId))],
  // The AMQP header counts prior attempts (0 on the first delivery) and @azure/service-bus passes it through;
  // the host's .NET SDK adds one, so a handler sees 1 on the first delivery.
  ['DeliveryCount', (m) => (m.deliveryCount ?? 0) + 1],
  ['EnqueuedTimeUtc', (m) => m.enqueuedTimeUtc?.toISOString() ?? null],
  ['SequenceNumber', (m) => (m.sequenceNumber === undefined ? null : Number(m.sequenceNumber.toString()))],
  ['ExpiresAtUtc', (m) => m.expiresAtUtc?.toISOString() ?? null],
  ['LockToken', (m) => m.lockToken ?? null],
  ['ContentType', (m) => m.contentType ?? null],
  ['CorrelationId', (m) => (m.correlationId === undefined ? null : String(m.correlationId))],
  ['Subject', (m) => m.subject ?? null],
  ['Label', (m) => m.subject ?? null],
  ['To', (m) => m.to ?? null],
  ['ReplyTo', (m) => m.replyTo ?? null],
  ['SessionId', (m) => m.sessionId ?? null],
  ['PartitionKey', (m) => m.partitionKey ?? null],
  ['DeadLetterSource', (m) => m.deadLetterSource ?? null],
  ['ApplicationProperties', (m) => m.applicationProperties ?? {}],
  ['UserProperties', (m) => m.applicationProperties ?? {}],
];

function singleInput(m: ServiceBusReceivedMessage): {
  data: RpcTypedData;
  triggerMetadata: Record<string, RpcTypedData>;
} {
  const triggerMetadata: Record<string, RpcTypedData> = {};
  for (const [key, get] of metadataFields) triggerMetadata[key] = { json: JSON.stringify(get(m)) };
  return { data: { string: bodyText(m.body) }, triggerMetadata };
}

function batchInput(messages: ServiceBusReceivedMessage[]): {
  data: RpcTypedData;
  triggerMetadata: Record<string, RpcTypedData>;
} {
  const triggerMetadata: Record<string, RpcTypedData> = {};
  for (const [key, get] of metadataFields) triggerMetadata[`${key}Array`] = { json: JSON.stringify(messages.map(get)) };
  return { data: { collectionString: { string: messages.map((m) => bodyText(m.body)) } }, triggerMetadata };
}
