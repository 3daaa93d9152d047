/**
 * A client's receiver link seen from the broker: sends queued messages within the link's credit and turns
 * the client's dispositions into queue settlements.
 */
import rhea, { type Delivery, type Sender } from 'rhea';
import { encodeBrokeredMessage, lockTokenTag } from './brokered-message.js';
import type { Consumer, Properties, Queue, QueuedMessage } from './queue.js';

/** The parts of rhea's sender and session state that its typings do not show. */
interface SenderInternals {
  credit: number;
  delivery_count: number;
  _draining: boolean;
  _drained: boolean;
  _get_drain(): boolean;
  local: { attach: Record<string, unknown> };
  connection: { _register(): void };
  session: {
    outgoing: {
      next_delivery_id: number;
      next_pending_delivery: number;
      available(): number;
      deliveries: { by_id(id: number): { link: unknown } | undefined };
    };
  };
}

interface DeliveryInternals {
  remote_settled: boolean;
}

const LOCK_LOST = 'com.microsoft:message-lock-lost';

export class ConsumerLink implements Consumer {
  readonly receiveAndDelete: boolean;
  private draining = false;
  private readonly lockTokens = new WeakMap<Delivery, string>();
  private readonly internals: SenderInternals;

  constructor(
    private readonly sender: Sender,
    readonly queue: Queue,
  ) {
    this.internals = sender as unknown as SenderInternals;
    this.receiveAndDelete = sender.snd_settle_mode === 1;
    echoDrainWithoutCredit(this.internals);
  }

  capacity(): number {
    if (!this.sender.is_open()) return 0;
    const outgoing = this.internals.session.outgoing;
    let unsent = 0;
    for (let id = outgoing.next_pending_delivery; id < outgoing.next_delivery_id; id++) {
      if (outgoing.deliveries.by_id(id)?.link === this.sender) unsent++;
    }
    return Math.max(0, Math.min(this.internals.credit - unsent, outgoing.available()));
  }

  deliver(message: QueuedMessage): void {
    const token = message.lock?.token;
    const tag = lockTokenTag(token ?? rhea.generate_uuid());
    const delivery = this.sender.send(encodeBrokeredMessage(message, 'delivery'), tag, 0);
    if (token) this.lockTokens.set(delivery, token);
  }

  /** The client granted credit (and maybe asked for a drain); dispatch now so a drain sees the real state. */
  flowed(): void {
    this.draining = this.draining || this.internals._draining;
    this.queue.dispatch();
  }

  dispatched(): void {
    if (!this.draining) return;
    this.draining = false;
    this.sender.set_drained(true);
    this.internals.connection._register();
  }

  /**
   * Applies the client's outcome for one delivery and settles it: a successful settlement echoes the outcome
   * (without an error, which the SDK would read as a failure), a lost lock answers as a rejection.
   */
  settle(delivery: Delivery): void {
    const token = this.lockTokens.get(delivery);
    const fields = delivery.remote_state as OutcomeFields | undefined;
    const outcome = fields?.constructor.composite_type as Outcome | undefined;
    if (token === undefined || !outcome || !OUTCOMES.includes(outcome)) return;
    this.lockTokens.delete(delivery);
    const applied = applyOutcome(this.queue, token, outcome, fields);
    if (applied === 'unsupported') {
      delivery.update(true, rejected('amqp:not-implemented', 'The stand-in does not support deferral.'));
    } else if (applied) {
      delivery.update(true, echoed(outcome, fields));
    } else {
      delivery.update(true, rejected(LOCK_LOST, 'The lock on the message was lost (it expired or was settled).'));
    }
    // In receiver-settle-mode "second" the client never reports its final settle; forget the delivery now.
    (delivery as unknown as DeliveryInternals).remote_settled = true;
  }
}

/**
 * The AMQP outcomes a client can report. rhea emits an event of the same name, and `released` for `modified`
 * too, so the outcome is read from the delivery's state rather than from the event.
 */
export type Outcome = 'accepted' | 'released' | 'modified' | 'rejected';
export const OUTCOMES: readonly Outcome[] = ['accepted', 'released', 'modified', 'rejected'];

/** The fields of rhea's decoded outcome (rejected: error; modified: the rest). */
interface OutcomeFields {
  constructor: { composite_type?: string };
  error?: { condition?: string; description?: string; info?: Properties } | null;
  undeliverable_here?: boolean | null;
  message_annotations?: Properties | null;
}

type OutcomeFactory = (fields?: unknown) => { described(): unknown };

function outcomeState(outcome: Outcome, fields?: unknown): unknown {
  return (rhea.message as unknown as Record<Outcome, OutcomeFactory>)[outcome](fields).described();
}

function rejected(condition: string, description: string): unknown {
  return outcomeState('rejected', { error: { condition, description } });
}

function echoed(outcome: Outcome, fields: OutcomeFields | undefined): unknown {
  if (outcome === 'modified') {
    return outcomeState('modified', { undeliverable_here: fields?.undeliverable_here ?? undefined });
  }
  return outcomeState(outcome);
}

/** Complete, abandon, dead-letter: what each AMQP outcome means to Service Bus. */
export function applyOutcome(
  queue: Queue,
  token: string,
  outcome: Outcome,
  fields: OutcomeFields | undefined,
): boolean | 'unsupported' {
  switch (outcome) {
    case 'accepted':
      return queue.complete(token);
    case 'rejected':
      return queue.deadLetter(token, { ...fields?.error?.info });
    case 'modified':
      if (fields?.undeliverable_here) return 'unsupported';
      return queue.abandon(token, fields?.message_annotations ?? undefined);
    case 'released':
      return queue.abandon(token);
  }
}

/**
 * rhea answers a drain only while credit remains, but the SDK waits for the answer even when the last
 * transfers used the credit up; without it the SDK times out and closes its receiver.
 */
function echoDrainWithoutCredit(sender: SenderInternals): void {
  sender._get_drain = function (this: SenderInternals) {
    if (!this._draining || !this._drained) return false;
    this.delivery_count += this.credit;
    this.credit = 0;
    this._draining = false;
    return true;
  };
}
