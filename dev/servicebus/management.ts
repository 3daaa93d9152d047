/** The `$management` operations the SDK uses on a queue: peek, renew-lock, schedule, cancel, update-disposition. */
import rhea from 'rhea';
import { admitMessage, encodeBrokeredMessage } from './brokered-message.js';
import type { Properties, Queue } from './queue.js';

const { types } = rhea;

export interface ManagementReply {
  statusCode: number;
  body?: unknown;
  errorCondition?: string;
  description?: string;
}

type RequestBody = Record<string, unknown>;
type Operation = (queue: Queue, body: RequestBody) => ManagementReply;

const LOCK_LOST: ManagementReply = {
  statusCode: 410,
  errorCondition: 'com.microsoft:message-lock-lost',
  description: 'The lock supplied is invalid. Either the lock expired, or the message has already been removed.',
};

/** A long arrives as a number, or as 8 big-endian bytes when it is beyond 2^53. */
function toNumber(value: unknown): number {
  if (Buffer.isBuffer(value)) return Number(value.readBigInt64BE(0));
  return Number(value);
}

function lockTokens(body: RequestBody): string[] {
  return ((body['lock-tokens'] as Buffer[] | undefined) ?? []).map((b) => rhea.uuid_to_string(b));
}

const peek: Operation = (queue, body) => {
  const from = toNumber(body['from-sequence-number'] ?? 1);
  const count = toNumber(body['message-count'] ?? 1);
  const found = queue
    .messages()
    .filter((m) => m.sequenceNumber >= from)
    .slice(0, count);
  if (!found.length) return { statusCode: 204 };
  return { statusCode: 200, body: { messages: found.map((m) => ({ message: encodeBrokeredMessage(m, 'peek') })) } };
};

const renewLock: Operation = (queue, body) => {
  const expirations: Date[] = [];
  for (const token of lockTokens(body)) {
    const until = queue.renewLock(token);
    if (until === undefined) return LOCK_LOST;
    expirations.push(new Date(until));
  }
  return { statusCode: 200, body: { expirations: types.wrap_array(expirations, 0x83, undefined) } };
};

const schedule: Operation = (queue, body) => {
  const entries = (body.messages as Array<{ message: Buffer }> | undefined) ?? [];
  const numbers = entries.map((entry) => admitMessage(queue, entry.message).sequenceNumber);
  return { statusCode: 200, body: { 'sequence-numbers': types.wrap_array(numbers, 0x81, undefined) } };
};

const cancelScheduled: Operation = (queue, body) => {
  queue.cancelScheduled(((body['sequence-numbers'] as unknown[] | undefined) ?? []).map(toNumber));
  return { statusCode: 200 };
};

const updateDisposition: Operation = (queue, body) => {
  const status = body['disposition-status'];
  const properties = body['properties-to-modify'] as Properties | undefined;
  for (const token of lockTokens(body)) {
    let applied: boolean;
    if (status === 'completed') applied = queue.complete(token);
    else if (status === 'abandoned') applied = queue.abandon(token, properties);
    else if (status === 'suspended') {
      applied = queue.deadLetter(token, {
        ...properties,
        DeadLetterReason: body['deadletter-reason'] as string | undefined,
        DeadLetterErrorDescription: body['deadletter-description'] as string | undefined,
      });
    } else return notImplemented(`disposition-status '${String(status)}'`);
    if (!applied) return LOCK_LOST;
  }
  return { statusCode: 200 };
};

function notImplemented(what: string): ManagementReply {
  return {
    statusCode: 501,
    errorCondition: 'amqp:not-implemented',
    description: `The stand-in does not support ${what}.`,
  };
}

const operations: Record<string, Operation> = {
  'com.microsoft:peek-message': peek,
  'com.microsoft:renew-lock': renewLock,
  'com.microsoft:schedule-message': schedule,
  'com.microsoft:cancel-scheduled-message': cancelScheduled,
  'com.microsoft:update-disposition': updateDisposition,
};

export function handleManagementRequest(queue: Queue, operation: unknown, body: unknown): ManagementReply {
  const handler = operations[String(operation)];
  if (!handler) return notImplemented(`operation '${String(operation)}'`);
  return handler(queue, (body ?? {}) as RequestBody);
}
