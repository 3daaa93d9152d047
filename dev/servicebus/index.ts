/**
 * A Service Bus stand-in speaking AMQP 1.0, enough for `@azure/service-bus` with `UseDevelopmentEmulator=true`:
 * queues created on first use, peek-lock and receive-and-delete, complete/abandon/dead-letter, lock expiry and
 * renewal, max delivery count, scheduled messages, peek, and an optional snapshot file that survives restarts.
 */
import { listenAmqp } from './amqp-server.js';
import { Namespace } from './namespace.js';
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
}

export interface ServiceBusStandIn {
  port: number;
  connectionString: string;
  stats(queue: string): { active: number; scheduled: number; locked: number; deadLetter: number };
  stop(): Promise<void>;
}

/** Debounce for snapshot writes after a change. */
const PERSIST_DELAY_MS = 100;

export async function startServiceBusStandIn(options: ServiceBusStandInOptions = {}): Promise<ServiceBusStandIn> {
  const host = options.host ?? '127.0.0.1';
  const lockDurationMs = options.lockDurationMs ?? 30_000;
  const { persistFile } = options;
  let persistTimer: NodeJS.Timeout | undefined;

  const persistNow = () => {
    if (persistTimer) clearTimeout(persistTimer);
    persistTimer = undefined;
    if (persistFile) writeSnapshot(persistFile, namespace.snapshot());
  };
  const namespace: Namespace = new Namespace({
    lockDurationMs,
    maxDeliveryCount: options.maxDeliveryCount ?? 10,
    changed: () => {
      if (!persistFile || persistTimer) return;
      persistTimer = setTimeout(persistNow, PERSIST_DELAY_MS);
      persistTimer.unref();
    },
  });
  if (persistFile) namespace.restore(readSnapshot(persistFile));

  // Lock expiry and scheduled delivery are checked on a short beat rather than one timer per message.
  const beat = setInterval(() => namespace.tick(), Math.max(10, Math.min(100, lockDurationMs / 10)));
  beat.unref();

  const listener = await listenAmqp(namespace, {
    host,
    port: options.port ?? 0,
    maxMessageSizeBytes: options.maxMessageSizeBytes ?? 256 * 1024,
  });

  return {
    port: listener.port,
    connectionString: `Endpoint=sb://${host}:${listener.port};SharedAccessKeyName=dev;SharedAccessKey=dev;UseDevelopmentEmulator=true`,
    stats(queue) {
      const entity = namespace.entity(queue);
      const deadLetter = entity.deadLetterQueue?.stats();
      return {
        ...entity.stats(),
        deadLetter: deadLetter ? deadLetter.active + deadLetter.locked + deadLetter.scheduled : 0,
      };
    },
    async stop() {
      clearInterval(beat);
      await listener.close();
      persistNow();
    },
  };
}
