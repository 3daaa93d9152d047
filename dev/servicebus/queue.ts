/**
 * One queue entity with Service Bus semantics: sequence numbers, peek-lock with expiring locks, delivery
 * counts, scheduled messages and a dead-letter queue. Knows nothing of AMQP links; consumers plug in.
 */
import { randomUUID } from 'node:crypto';
import { type MapValue, type MessageSections, withApplicationProperties } from './message-sections.js';

export interface QueuedMessage {
  sequenceNumber: number;
  enqueuedTime: number;
  sections: MessageSections;
  /** How many times the message has been handed to a receiver. */
  deliveries: number;
  scheduledFor?: number;
  lock?: { token: string; until: number };
}

export interface Consumer {
  /** How many more messages the consumer can take now. */
  capacity(): number;
  /** Hands one message over; in receive-and-delete mode the queue has already forgotten it. */
  deliver(message: QueuedMessage): void;
  /** Called after every dispatch round, when the consumer has taken all it could. */
  dispatched(): void;
  readonly receiveAndDelete: boolean;
}

export interface QueuePolicy {
  lockDurationMs: number;
  maxDeliveryCount: number;
  /** Called after every change worth persisting. */
  changed(): void;
}

export interface QueueStats {
  active: number;
  scheduled: number;
  locked: number;
}

export type Properties = Record<string, MapValue | undefined>;

export class Queue {
  private nextSequence = 1;
  /** Visible messages, ordered by sequence number. */
  private readonly available: QueuedMessage[] = [];
  private readonly scheduled = new Map<number, QueuedMessage>();
  private readonly locked = new Map<string, QueuedMessage>();
  private readonly consumers: Consumer[] = [];
  private nextConsumer = 0;
  private dispatchQueued = false;

  constructor(
    readonly name: string,
    private readonly policy: QueuePolicy,
    readonly deadLetterQueue?: Queue,
  ) {}

  enqueue(
    sections: MessageSections,
    options: { now?: number; scheduledFor?: number; deliveries?: number } = {},
  ): QueuedMessage {
    const now = options.now ?? Date.now();
    const message: QueuedMessage = {
      sequenceNumber: this.nextSequence++,
      enqueuedTime: now,
      sections,
      deliveries: options.deliveries ?? 0,
    };
    if (options.scheduledFor !== undefined && options.scheduledFor > now) {
      message.scheduledFor = options.scheduledFor;
      this.scheduled.set(message.sequenceNumber, message);
    } else {
      this.makeAvailable(message);
    }
    this.policy.changed();
    return message;
  }

  /** Puts back messages from a snapshot; locks are not restored, so locked messages become visible again. */
  restore(messages: QueuedMessage[], nextSequence: number): void {
    for (const message of messages) {
      message.lock = undefined;
      if (message.scheduledFor !== undefined) this.scheduled.set(message.sequenceNumber, message);
      else this.makeAvailable(message);
    }
    this.nextSequence = Math.max(this.nextSequence, nextSequence);
  }

  /** Every message the queue holds (visible, locked, scheduled), by sequence number. */
  messages(): QueuedMessage[] {
    return [...this.available, ...this.locked.values(), ...this.scheduled.values()].sort(
      (a, b) => a.sequenceNumber - b.sequenceNumber,
    );
  }

  get sequence(): number {
    return this.nextSequence;
  }

  stats(): QueueStats {
    return { active: this.available.length, scheduled: this.scheduled.size, locked: this.locked.size };
  }

  addConsumer(consumer: Consumer): void {
    this.consumers.push(consumer);
  }

  removeConsumer(consumer: Consumer): void {
    const i = this.consumers.indexOf(consumer);
    if (i >= 0) this.consumers.splice(i, 1);
  }

  /** Dispatches on the next turn, so a burst of sends is handed out in one round. */
  requestDispatch(): void {
    if (this.dispatchQueued) return;
    this.dispatchQueued = true;
    setImmediate(() => {
      this.dispatchQueued = false;
      this.dispatch();
    });
  }

  /** Hands visible messages to consumers with credit, round robin. */
  dispatch(now = Date.now()): void {
    const room = this.consumers.map((c) => c.capacity());
    let idle = 0;
    while (this.available.length && idle < this.consumers.length) {
      const i = this.nextConsumer++ % this.consumers.length;
      if (room[i] <= 0) {
        idle++;
        continue;
      }
      idle = 0;
      room[i]--;
      this.deliverTo(this.consumers[i], this.available.shift()!, now);
    }
    for (const consumer of this.consumers) consumer.dispatched();
  }

  private deliverTo(consumer: Consumer, message: QueuedMessage, now: number): void {
    message.deliveries++;
    if (consumer.receiveAndDelete) {
      this.policy.changed();
    } else {
      message.lock = { token: randomUUID(), until: now + this.policy.lockDurationMs };
      this.locked.set(message.lock.token, message);
    }
    consumer.deliver(message);
  }

  complete(lockToken: string): boolean {
    const message = this.unlock(lockToken);
    if (message) this.policy.changed();
    return message !== undefined;
  }

  /** Abandon: visible again (or dead-lettered once it has used up its deliveries). */
  abandon(lockToken: string, propertiesToModify?: Properties): boolean {
    const message = this.unlock(lockToken);
    if (!message) return false;
    if (propertiesToModify) message.sections = withApplicationProperties(message.sections, propertiesToModify);
    this.release(message);
    return true;
  }

  deadLetter(lockToken: string, properties: Properties): boolean {
    const message = this.unlock(lockToken);
    if (!message) return false;
    this.moveToDeadLetter(message, properties);
    return true;
  }

  /** The new lock expiry, or undefined when the lock is gone. */
  renewLock(lockToken: string, now = Date.now()): number | undefined {
    const message = this.locked.get(lockToken);
    if (!message?.lock || message.lock.until <= now) return undefined;
    message.lock.until = now + this.policy.lockDurationMs;
    return message.lock.until;
  }

  cancelScheduled(sequenceNumbers: number[]): void {
    for (const n of sequenceNumbers) this.scheduled.delete(n);
    this.policy.changed();
  }

  /** Expires locks and releases scheduled messages whose time has come. */
  tick(now = Date.now()): void {
    for (const [token, message] of this.locked) {
      if (message.lock && message.lock.until <= now) {
        this.locked.delete(token);
        message.lock = undefined;
        this.release(message);
      }
    }
    for (const [n, message] of this.scheduled) {
      if (message.scheduledFor! <= now) {
        this.scheduled.delete(n);
        message.scheduledFor = undefined;
        this.makeAvailable(message);
        this.policy.changed();
      }
    }
  }

  private unlock(lockToken: string): QueuedMessage | undefined {
    const message = this.locked.get(lockToken);
    if (!message) return undefined;
    this.locked.delete(lockToken);
    message.lock = undefined;
    return message;
  }

  private release(message: QueuedMessage): void {
    if (this.deadLetterQueue && message.deliveries >= this.policy.maxDeliveryCount) {
      this.moveToDeadLetter(message, {
        DeadLetterReason: 'MaxDeliveryCountExceeded',
        DeadLetterErrorDescription: `Message could not be consumed after ${this.policy.maxDeliveryCount} delivery attempts.`,
      });
    } else {
      this.makeAvailable(message);
    }
  }

  private moveToDeadLetter(message: QueuedMessage, properties: Properties): void {
    if (!this.deadLetterQueue) {
      // A dead-letter queue has no dead-letter queue of its own: the message stays.
      this.makeAvailable(message);
      return;
    }
    this.deadLetterQueue.enqueue(withApplicationProperties(message.sections, properties), {
      deliveries: message.deliveries,
    });
    this.policy.changed();
  }

  private makeAvailable(message: QueuedMessage): void {
    const list = this.available;
    let lo = 0;
    let hi = list.length;
    if (hi === 0 || list[hi - 1].sequenceNumber < message.sequenceNumber) {
      list.push(message);
    } else {
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (list[mid].sequenceNumber < message.sequenceNumber) lo = mid + 1;
        else hi = mid;
      }
      list.splice(lo, 0, message);
    }
    if (this.consumers.length) this.requestDispatch();
  }
}
