/**
 * Plays Dataverse in its own process, so the benchmark measures the app and not the client sharing its
 * thread: posts `count` Create webhooks for ids `first…first+count-1` with `concurrency` connections, either
 * as fast as possible or at `rate` per second, then prints `{ seconds, cpuSeconds, statuses, connectionErrors }`
 * as JSON. A connection the server reset (a keep-alive socket closing as a request goes out) is counted and the
 * delivery sent again on a fresh socket, as Dataverse retries; it does not end the run.
 */
import { Agent, request } from 'node:http';
import pLimit from 'p-limit';
import { buildRemoteExecutionContext, serializeRemoteExecutionContext } from '../dev/dataverse-payloads.js';
import { benchRecordId } from './ids.js';

interface LoadOptions {
  url: string;
  key: string;
  organizationId: string;
  first: number;
  count: number;
  concurrency: number;
  rate?: number;
}

const options = JSON.parse(process.argv[2]) as LoadOptions;
const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency });

function body(i: number): string {
  return serializeRemoteExecutionContext(
    buildRemoteExecutionContext({
      organizationId: options.organizationId,
      messageName: 'Create',
      entity: 'account',
      id: benchRecordId(i),
      versionNumber: String(5_000_000 + i),
      attributes: {
        name: { type: 'string', value: `Bench ${i}` },
        revenue: { type: 'money', value: `${i}.25` },
        // Stamped when sent, so SinkModifiedOn − new_senttime is the end-to-end lag of this change.
        new_senttime: { type: 'datetime', value: new Date().toISOString() },
      },
    }),
  );
}

/** Connection-level errors (ECONNRESET, EPIPE, …) met and ridden out. */
let connectionErrors = 0;
const MAX_ATTEMPTS = 5;

async function post(payload: string): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await postOnce(payload);
    } catch (err) {
      connectionErrors++;
      if (attempt >= MAX_ATTEMPTS) throw err;
    }
  }
}

function postOnce(payload: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      options.url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'x-functions-key': options.key } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const started = performance.now();
const statuses: Record<number, number> = {};
const count = (s: number) => {
  statuses[s] = (statuses[s] ?? 0) + 1;
};
if (options.rate) {
  const sends: Promise<void>[] = [];
  for (let k = 0; k < options.count; k++) {
    const due = started + (k * 1000) / options.rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    sends.push(post(body(options.first + k)).then(count));
  }
  await Promise.all(sends);
} else {
  const limit = pLimit(options.concurrency);
  await Promise.all(
    Array.from({ length: options.count }, (_, k) => limit(() => post(body(options.first + k)).then(count))),
  );
}
agent.destroy();
const cpu = process.cpuUsage();
process.stdout.write(
  JSON.stringify({
    seconds: (performance.now() - started) / 1000,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    statuses,
    connectionErrors,
  }),
);
