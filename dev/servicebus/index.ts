/**
 * A Service Bus stand-in speaking AMQP 1.0, enough for `@azure/service-bus` with `UseDevelopmentEmulator=true`:
 * queues created on first use, peek-lock and receive-and-delete, complete/abandon/dead-letter, lock expiry and
 * renewal, max delivery count, scheduled messages, peek, and an optional snapshot file that survives restarts.
 */
import { AppError } from '../../lib/errors.js';
import { type Logger, silentLogger } from '../../lib/log.js';
import { type AmqpListener, listenAmqp } from './amqp-server.js';
import { Namespace, type QueueSnapshot } from './namespace.js';
import { readSnapshot, writeSnapshot } from './persistence.js';

export interface ServiceBusStandInOptions {
  /** 0 or absent: a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 30000, as a new Service Bus queue. */
  lockDurationMs?: number;
  /** Default 10, as a new Service Bus queue. */
  maxDeliveryCount?: number;
  /** Snapshot of queued messages, so a restart on the same file loses nothing. */
  persistFile?: string;
  /** Default 262144 (Standard tier). */
  maxMessageSizeBytes?: number;
  /** Start, stop and connection events; silent by default. */
  logger?: Logger;
}

export interface QueueCounts {
  active: number;
  scheduled: number;
  locked: number;
  deadLetter: number;
}

export interface ServiceBusStandIn {
  port: number;
  connectionString: string;
  /** Messages of a queue by state; `deadLetter` counts everything in its dead-letter queue. */
  stats(queue: string): QueueCounts;
  /**
   * Simulates a broker restart: closes every connection, then listens again on the same port with what was
   * queued (read back from `persistFile` when there is one). Locks do not survive, so locked messages become
   * visible again. Clients reconnect by themselves.
   */
  restart(): Promise<void>;
  /** Closes every connection (clients see the broker go away), stops listening and writes the snapshot. */
  stop(): Promise<void>;
}

/** Debounce for snapshot writes after a change. */
const PERSIST_DELAY_MS = 100;
/**
 * A snapshot is the whole backlog, so with a deep queue each write costs more; waiting 20× the last write's
 * duration keeps persistence under ~5 % of the broker's time however deep the queue gets.
 */
const PERSIST_COST_FACTOR = 20;

/** One running broker: a namespace, its timers and its listener. */
interface Broker {
  namespace: Namespace;
  listener: AmqpListener;
  /** Stops the listener and timers; returns what was queued. */
  stop(): Promise<QueueSnapshot[]>;
}

export async function startServiceBusStandIn(options: ServiceBusStandInOptions = {}): Promise<ServiceBusStandIn> {
  const host = options.host ?? '127.0.0.1';
  const logger = options.logger ?? silentLogger;
  const { persistFile } = options;
  let broker = await startBroker(options, options.port ?? 0, persistFile ? readSnapshot(persistFile) : []);
  const { port } = broker.listener;
  let stopped = false;
  logger.info('Service Bus stand-in listening', { port, persistFile });

  return {
    port,
    connectionString: `Endpoint=sb://${host}:${port};SharedAccessKeyName=dev;SharedAccessKey=dev;UseDevelopmentEmulator=true`,
    stats(queue) {
      const entity = broker.namespace.entity(queue);
      const deadLetter = entity.deadLetterQueue?.stats();
      return {
        ...entity.stats(),
        deadLetter: deadLetter ? deadLetter.active + deadLetter.locked + deadLetter.scheduled : 0,
      };
    },
    async restart() {
      if (stopped) {
        throw new AppError('INTERNAL', `The Service Bus stand-in on port ${port} was stopped; start a new one.`);
      }
      const queued = await broker.stop();
      broker = await startBroker(options, port, persistFile ? readSnapshot(persistFile) : queued);
      logger.info('Service Bus stand-in restarted', { port });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await broker.stop();
      logger.info('Service Bus stand-in stopped', { port });
    },
  };
}

async function startBroker(options: ServiceBusStandInOptions, port: number, queued: QueueSnapshot[]): Promise<Broker> {
  const lockDurationMs = options.lockDurationMs ?? 30_000;
  const { persistFile } = options;
  let persistTimer: NodeJS.Timeout | undefined;
  let lastWriteMs = 0;

  const persistNow = () => {
    if (persistTimer) clearTimeout(persistTimer);
    persistTimer = undefined;
    if (!persistFile) return;
    const started = performance.now();
    writeSnapshot(persistFile, namespace.snapshot());
    lastWriteMs = performance.now() - started;
  };
  const namespace: Namespace = new Namespace({
    lockDurationMs,
    maxDeliveryCount: options.maxDeliveryCount ?? 10,
    changed: () => {
      if (!persistFile || persistTimer) return;
      persistTimer = setTimeout(persistNow, Math.max(PERSIST_DELAY_MS, PERSIST_COST_FACTOR * lastWriteMs));
      persistTimer.unref();
    },
  });
  namespace.restore(queued);

  // Lock expiry and scheduled delivery are checked on a short beat rather than one timer per message.
  const beat = setInterval(() => namespace.tick(), Math.max(10, Math.min(100, lockDurationMs / 10)));
  beat.unref();

  const host = options.host ?? '127.0.0.1';
  let listener: AmqpListener;
  try {
    listener = await listenAmqp(namespace, {
      host,
      port,
      maxMessageSizeBytes: options.maxMessageSizeBytes ?? 256 * 1024,
      logger: options.logger ?? silentLogger,
    });
  } catch (error) {
    clearInterval(beat);
    throw new AppError(
      'QUEUE_UNAVAILABLE',
      `The Service Bus stand-in cannot listen on ${host}:${port} (${(error as Error).message}); free the port or pass port 0 for any free one.`,
      { cause: error },
    );
  }

  return {
    namespace,
    listener,
    async stop() {
      clearInterval(beat);
      await listener.close();
      persistNow();
      return namespace.snapshot();
    },
  };
}
