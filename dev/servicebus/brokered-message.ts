/** How a queued message goes out on the wire: the broker annotations and header Service Bus adds. */
import rhea from 'rhea';
import {
  joinMessage,
  readEnvelope,
  readMap,
  splitMessage,
  withDeliveryCount,
  withMessageAnnotations,
  withMessageId,
} from './message-sections.js';
import type { Queue, QueuedMessage } from './queue.js';

const { types } = rhea;

/** `x-opt-message-state` value of a scheduled message. */
const SCHEDULED_STATE = 2;

/**
 * The encoded message for a receiver (`locked`) or a peek. The header's delivery count is the number of
 * earlier deliveries, as Service Bus puts it on the wire (0 the first time; .NET adds 1, the JS SDK does not).
 */
export function encodeBrokeredMessage(message: QueuedMessage, mode: 'delivery' | 'peek'): Buffer {
  const priorDeliveries = mode === 'delivery' ? message.deliveries - 1 : message.deliveries;
  const lock = mode === 'delivery' ? message.lock : undefined;
  let sections = withDeliveryCount(message.sections, Math.max(0, priorDeliveries));
  sections = withMessageAnnotations(sections, {
    'x-opt-sequence-number': types.wrap_long(message.sequenceNumber),
    'x-opt-enqueued-time': new Date(message.enqueuedTime),
    'x-opt-locked-until': lock ? new Date(lock.until) : undefined,
    'x-opt-lock-token': lock ? types.wrap_uuid(rhea.string_to_uuid(lock.token)) : undefined,
    'x-opt-message-state': message.scheduledFor !== undefined ? types.wrap_int(SCHEDULED_STATE) : undefined,
  });
  return joinMessage(sections);
}

/**
 * The delivery tag for a lock token: the GUID in .NET byte order, which the SDK reorders back
 * (the first three groups are little-endian).
 */
export function lockTokenTag(lockToken: string): Buffer {
  const b = rhea.string_to_uuid(lockToken);
  return Buffer.from([b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], ...b.subarray(8)]);
}

/**
 * Takes in one encoded message from a sender: gives it a message id if it has none, and schedules it when it
 * carries `x-opt-scheduled-enqueue-time` in the future.
 */
export function admitMessage(queue: Queue, encoded: Buffer, now = Date.now()): QueuedMessage {
  let sections = splitMessage(encoded);
  if (readEnvelope(sections).message_id === undefined) sections = withMessageId(sections, rhea.generate_uuid());
  const scheduled = readMap(sections.messageAnnotations)['x-opt-scheduled-enqueue-time'];
  const scheduledFor =
    scheduled instanceof Date ? scheduled.getTime() : typeof scheduled === 'number' ? scheduled : undefined;
  return queue.enqueue(sections, { now, scheduledFor });
}
