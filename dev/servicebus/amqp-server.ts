/**
 * The AMQP 1.0 listener: routes each link a client attaches — `$cbs`, `<entity>/$management`, a queue to send
 * to, a queue to receive from — to the namespace, and answers request/response links.
 */
import { once } from 'node:events';
import type { Socket } from 'node:net';
import rhea, { type Connection, type EventContext, type Message, type Receiver, type Sender } from 'rhea';
import type { Logger } from '../../lib/log.js';
import { admitMessage } from './brokered-message.js';
import { ConsumerLink, OUTCOMES } from './consumer-link.js';
import { handleManagementRequest, type ManagementReply } from './management.js';
import { unpackBatch } from './message-sections.js';
import type { Namespace } from './namespace.js';
import type { Queue } from './queue.js';

const BATCH_FORMAT = 0x80013700;
const MANAGEMENT_SUFFIX = '/$management';
/**
 * How a shutdown closes each connection. A close without an error leaves the SDK with a connection it
 * never re-attaches links on; `connection:forced` is what a broker going away sends, and the SDK reconnects.
 */
const SHUTDOWN_ERROR = {
  condition: 'amqp:connection:forced',
  description: 'The Service Bus stand-in is shutting down.',
};
/** How long the clients get to answer the close before their sockets are cut. */
const CLOSE_GRACE_MS = 500;

export interface AmqpListenerOptions {
  host: string;
  port: number;
  maxMessageSizeBytes: number;
  logger: Logger;
}

export interface AmqpListener {
  port: number;
  close(): Promise<void>;
}

/** What a broker-side receiver link (a client's sender) delivers into. */
type Inbound = { kind: 'cbs' } | { kind: 'management'; queue: Queue } | { kind: 'queue'; queue: Queue };

export async function listenAmqp(namespace: Namespace, options: AmqpListenerOptions): Promise<AmqpListener> {
  const container = rhea.create_container({ id: 'servicebus-standin', autoaccept: false });
  const inbound = new WeakMap<Receiver, Inbound>();
  const consumers = new Map<Sender, ConsumerLink>();
  const connections = new Set<Connection>();
  const sockets = new Set<Socket>();

  function dropConsumer(sender: Sender | undefined): void {
    const consumer = sender && consumers.get(sender);
    if (!consumer) return;
    consumers.delete(sender);
    consumer.queue.removeConsumer(consumer);
  }

  function dropConnection(connection: Connection): void {
    connections.delete(connection);
    for (const sender of [...consumers.keys()]) if (sender.connection === connection) dropConsumer(sender);
  }

  const { logger } = options;
  container.on('connection_open', (ctx: EventContext) => {
    connections.add(ctx.connection);
    logger.debug('Service Bus stand-in: connection opened', { connections: connections.size });
  });
  container.on('connection_close', (ctx: EventContext) => dropConnection(ctx.connection));
  container.on('disconnected', (ctx: EventContext) => dropConnection(ctx.connection));
  // Unhandled link and connection errors are re-emitted as 'error'; a client going away is not our failure.
  container.on('error', () => {});

  container.on('receiver_open', (ctx: EventContext) => {
    const receiver = ctx.receiver!;
    const address = receiver.target?.address ?? '';
    receiver.set_target({ address });
    (receiver as unknown as { local: { attach: Record<string, unknown> } }).local.attach.max_message_size =
      options.maxMessageSizeBytes;
    if (address === '$cbs') inbound.set(receiver, { kind: 'cbs' });
    else if (address.endsWith(MANAGEMENT_SUFFIX)) {
      inbound.set(receiver, {
        kind: 'management',
        queue: namespace.entity(address.slice(0, -MANAGEMENT_SUFFIX.length)),
      });
    } else if (address) inbound.set(receiver, { kind: 'queue', queue: namespace.entity(address) });
    else receiver.close({ condition: 'amqp:invalid-field', description: 'A sender link needs a target address.' });
  });

  container.on('sender_open', (ctx: EventContext) => {
    const sender = ctx.sender!;
    const address = sender.source?.address ?? '';
    sender.set_source({ address });
    sender.set_target({ address: sender.target?.address ?? '' });
    const attach = (sender as unknown as { local: { attach: Record<string, unknown> } }).local.attach;
    attach.snd_settle_mode = sender.snd_settle_mode;
    attach.rcv_settle_mode = sender.rcv_settle_mode;
    if (address === '$cbs' || address.endsWith(MANAGEMENT_SUFFIX)) return;
    if (!address) {
      sender.close({ condition: 'amqp:invalid-field', description: 'A receiver link needs a source address.' });
      return;
    }
    const consumer = new ConsumerLink(sender, namespace.entity(address));
    consumers.set(sender, consumer);
    consumer.queue.addConsumer(consumer);
  });

  container.on('sender_flow', (ctx: EventContext) => consumers.get(ctx.sender!)?.flowed());
  container.on('sender_close', (ctx: EventContext) => dropConsumer(ctx.sender));
  for (const outcome of OUTCOMES) {
    container.on(outcome, (ctx: EventContext) => consumers.get(ctx.sender!)?.settle(ctx.delivery!));
  }

  container.on('message', (ctx: EventContext) => {
    const receiver = ctx.receiver!;
    const target = inbound.get(receiver);
    const delivery = ctx.delivery!;
    if (!target) return delivery.reject({ condition: 'amqp:not-found', description: 'Unknown link.' });
    if (target.kind !== 'queue') {
      delivery.accept();
      return answer(receiver, ctx.message!, target.kind === 'cbs' ? { statusCode: 200 } : manage(target.queue, ctx));
    }
    const format = (ctx as { format?: number }).format ?? 0;
    // rhea hands over format 0 decoded; re-encoding it keeps every value the SDK can send.
    const encoded = format === 0 ? rhea.message.encode(ctx.message) : (ctx.message as unknown as Buffer);
    if (encoded.length > options.maxMessageSizeBytes) {
      return delivery.reject({
        condition: 'amqp:link:message-size-exceeded',
        description: `The message is ${encoded.length} bytes; the limit is ${options.maxMessageSizeBytes}.`,
      });
    }
    try {
      const now = Date.now();
      for (const one of format === BATCH_FORMAT ? unpackBatch(encoded) : [encoded])
        admitMessage(target.queue, one, now);
      delivery.accept();
    } catch (error) {
      logger.warn('Service Bus stand-in: rejected a message it could not decode', { queue: target.queue.name, error });
      delivery.reject({ condition: 'amqp:decode-error', description: (error as Error).message });
    }
  });

  const server = container.listen({ host: options.host, port: options.port });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;

  return {
    port,
    async close() {
      // Stop accepting first, or a client reconnecting at once would land on this listener again.
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      // Not events.once: it rejects on a socket 'error' (a reset), which still ends in 'close'.
      const gone = Promise.all([...sockets].map((socket) => new Promise((resolve) => socket.on('close', resolve))));
      for (const connection of connections) connection.close(SHUTDOWN_ERROR);
      const grace = setTimeout(() => {
        for (const socket of sockets) socket.destroy();
      }, CLOSE_GRACE_MS);
      await gone;
      clearTimeout(grace);
      await stopped;
      for (const consumer of consumers.values()) consumer.queue.removeConsumer(consumer);
      consumers.clear();
    },
  };
}

function manage(queue: Queue, ctx: EventContext): ManagementReply {
  const request = ctx.message!;
  return handleManagementRequest(queue, request.application_properties?.operation, request.body);
}

/** Replies on the sender link of the same session that the client attached for responses. */
function answer(receiver: Receiver, request: Message, reply: ManagementReply): void {
  const address = receiver.target?.address;
  const replyTo = request.reply_to;
  const matches = (s: Sender) => s.source?.address === address;
  const sender =
    receiver.session.find_sender((s: Sender) => matches(s) && (s.name === replyTo || s.target?.address === replyTo)) ??
    receiver.session.find_sender(matches);
  if (!sender) return;
  sender.send({
    correlation_id: request.message_id,
    to: replyTo,
    application_properties: {
      statusCode: reply.statusCode,
      'status-code': reply.statusCode,
      ...(reply.description ? { statusDescription: reply.description, 'status-description': reply.description } : {}),
      ...(reply.errorCondition
        ? { errorCondition: reply.errorCondition, 'error-condition': reply.errorCondition }
        : {}),
    },
    body: reply.body ?? null,
  });
}
