/** The queues of one stand-in namespace, created on first use; `<queue>/$deadletterqueue` is a queue's DLQ. */
import { Queue, type QueuedMessage, type QueuePolicy } from './queue.js';

const DLQ_SUFFIX = '/$deadletterqueue';

export interface QueueSnapshot {
  name: string;
  nextSequence: number;
  messages: QueuedMessage[];
}

export class Namespace {
  private readonly queues = new Map<string, Queue>();

  constructor(private readonly policy: QueuePolicy) {}

  /** The queue (or dead-letter queue) at an AMQP address such as `orders` or `orders/$DeadLetterQueue`. */
  entity(address: string): Queue {
    const path = address.replace(/^\/+/, '').toLowerCase();
    if (path.endsWith(DLQ_SUFFIX)) return this.queue(path.slice(0, -DLQ_SUFFIX.length)).deadLetterQueue!;
    return this.queue(path);
  }

  private queue(name: string): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      const deadLetters = new Queue(name + DLQ_SUFFIX, this.policy);
      queue = new Queue(name, this.policy, deadLetters);
      this.queues.set(name, queue);
    }
    return queue;
  }

  private all(): Queue[] {
    return [...this.queues.values()].flatMap((q) => [q, q.deadLetterQueue!]);
  }

  tick(now = Date.now()): void {
    for (const queue of this.all()) queue.tick(now);
  }

  snapshot(): QueueSnapshot[] {
    return this.all().map((q) => ({ name: q.name, nextSequence: q.sequence, messages: q.messages() }));
  }

  restore(snapshot: QueueSnapshot[]): void {
    for (const entry of snapshot) this.entity(entry.name).restore(entry.messages, entry.nextSequence);
  }
}
