/**
 * The stand-in on its own thread: a broker is another machine in production, so `npm start` keeps its
 * AMQP work off the event loop that serves the functions (it would otherwise share one core with them).
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { type ServiceBusStandInOptions, startServiceBusStandIn } from './index.js';

export interface ServiceBusStandInThread {
  connectionString: string;
  port: number;
  stop(): Promise<void>;
}

type Reply = { ready: { connectionString: string; port: number } } | { failed: string } | { stopped: true };

export async function startServiceBusStandInThread(
  options: Omit<ServiceBusStandInOptions, 'logger'> = {},
): Promise<ServiceBusStandInThread> {
  const worker = new Worker(new URL(import.meta.url), { workerData: options });
  const replies: Reply[] = [];
  const waiters: ((r: Reply) => void)[] = [];
  worker.on('message', (reply: Reply) => {
    const waiter = waiters.shift();
    if (waiter) waiter(reply);
    else replies.push(reply);
  });
  const next = () =>
    new Promise<Reply>((resolve, reject) => {
      const queued = replies.shift();
      if (queued) return resolve(queued);
      waiters.push(resolve);
      worker.once('error', reject);
    });
  const first = await next();
  if (!('ready' in first)) {
    await worker.terminate();
    throw new Error(`the Service Bus stand-in did not start: ${'failed' in first ? first.failed : 'unknown'}`);
  }
  let stopped: Promise<void> | undefined;
  return {
    ...first.ready,
    stop() {
      stopped ??= (async () => {
        worker.postMessage('stop');
        await next();
        await worker.terminate();
      })();
      return stopped;
    },
  };
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  try {
    const standIn = await startServiceBusStandIn(workerData as ServiceBusStandInOptions);
    port.postMessage({ ready: { connectionString: standIn.connectionString, port: standIn.port } } satisfies Reply);
    port.on('message', async (message) => {
      if (message !== 'stop') return;
      await standIn.stop();
      port.postMessage({ stopped: true } satisfies Reply);
    });
  } catch (err) {
    port.postMessage({ failed: err instanceof Error ? err.message : String(err) } satisfies Reply);
  }
}
