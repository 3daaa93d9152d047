/**
 * The development host: runs the app's own registrations (captured through the `@azure/functions-core`
 * stand-in) the way the Functions host does — HTTP triggers with function keys, Service Bus triggers from
 * real receivers, timers on their NCRONTAB schedules, and Durable orchestrations on durable-functions'
 * replay engine.
 */
import './core-api.js';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '../../lib/errors.js';
import { createLogger, type Logger } from '../../lib/log.js';
import { handleAdminFunctions } from './admin-api.js';
import { coreState, type RpcTypedData } from './core-api.js';
import { clientBindingData, handleDurableApi, isLoopback, WEBHOOK_PATH } from './durable/http-api.js';
import { DurableRuntime } from './durable/runtime.js';
import { type HostJsonSettings, hostJsonDefaults, readHostJson } from './host-json.js';
import { createHttpTriggerHandler, sendJson } from './http-trigger.js';
import {
  type InvocationInput,
  type InvocationOutcome,
  invokeFunction,
  messageOf,
  runHooks,
  writeLog,
} from './invoke.js';
import {
  type FunctionRegistration,
  type FunctionRegistry,
  resolveTrigger,
  type Settings,
  type TriggerInfo,
} from './registry.js';
import { ServiceBusTriggerFeed } from './servicebus-trigger.js';
import { parseSchedule, type TimerFire, TimerScheduler, timerInfo } from './timer-trigger.js';

export { type FunctionRegistration, type FunctionRegistry, loadFunctionApp, type TriggerInfo } from './registry.js';

export interface DevHostOptions {
  /** The key every non-anonymous HTTP trigger (and the Durable webhooks) accept. */
  functionKey: string;
  /**
   * The host's master key (`_master`): it opens the admin API (`POST /admin/functions/{name}`) and every
   * function-level route. Without one, the host makes a random key (see `masterKey`).
   */
  masterKey?: string;
  /** App settings on top of `process.env` (connections, `%Setting%` values). */
  env?: Record<string, string>;
  logger?: Logger;
  /** Path of the app's host.json; its settings apply below the explicit options here. */
  hostJson?: string;
  /** Overrides host.json `extensions.http.routePrefix`. */
  routePrefix?: string;
  /** Overrides host.json `extensions.serviceBus.maxMessageBatchSize` for `cardinality: 'many'`. */
  maxBatchSize?: number;
  /** Batches (or messages) in flight at once per Service Bus trigger (default: 1 batch, or maxConcurrentCalls). */
  serviceBusConcurrency?: number;
  /** Overrides host.json `extensions.durableTask.maxConcurrentActivityFunctions`. */
  maxConcurrentActivities?: number;
  /** How long one Service Bus receive waits for a first message (shorter = faster stop). */
  serviceBusMaxWaitMs?: number;
  /** Where orchestration instances are persisted; without it they live in memory only. */
  stateDir?: string;
  /** Start timers / Service Bus receivers in `start()` (default true). */
  timers?: boolean;
  serviceBus?: boolean;
  /**
   * An `x-ms-client-principal` value forwarded with every request that brings neither its own principal nor
   * a key, as App Service Authentication forwards a signed-in session's (the local stack: a development admin).
   */
  signedInPrincipal?: string;
}

/** The trigger options `describe()` reports, named as the host reads them. */
const DESCRIBED_OPTIONS = [
  'route',
  'methods',
  'authLevel',
  'queueName',
  'topicName',
  'subscriptionName',
  'connection',
  'cardinality',
  'schedule',
  'runOnStartup',
] as const;

/** One function as the host reads its trigger. */
export type FunctionDescription = { name: string; triggerType: string } & Partial<
  Pick<TriggerInfo, (typeof DESCRIBED_OPTIONS)[number]>
>;

export class DevHost {
  readonly #functions: FunctionRegistration[];
  readonly #settings: Settings;
  readonly #hostJson: HostJsonSettings;
  readonly #logger: Logger;
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #timers: TimerScheduler;
  readonly #feeds: ServiceBusTriggerFeed[] = [];
  readonly durable: DurableRuntime;
  #server: Server | undefined;
  #rpcServer: Server | undefined;
  #rpcBaseUrl: string | undefined;
  #publicBaseUrl = 'http://localhost:7071';
  /** The key the admin API takes (the option's, or a random one). */
  readonly masterKey: string;
  #started = false;
  #durableStarted = false;
  /** Aborted by stop(): cuts short the waits between function-level retries. */
  #running = new AbortController();

  constructor(
    registry: FunctionRegistry,
    private readonly options: DevHostOptions,
  ) {
    this.#settings = { ...process.env, ...registry.env, ...options.env };
    this.#hostJson = options.hostJson ? readHostJson(options.hostJson) : hostJsonDefaults;
    this.#logger = options.logger ?? createLogger({ fields: { component: 'dev-host' } });
    this.masterKey = options.masterKey ?? randomBytes(24).toString('base64url');
    this.#functions = registry.functions.map((fn) => ({ ...fn, trigger: resolveTrigger(fn.metadata, this.#settings) }));
    const resolved: FunctionRegistry = {
      functions: this.#functions,
      get: (name) => this.#functions.find((f) => f.name.toLowerCase() === name.toLowerCase()),
    };
    const timeZone = this.#settings.WEBSITE_TIME_ZONE || undefined;
    this.#timers = new TimerScheduler(
      this.#functions
        .filter((fn) => fn.trigger.type === 'timerTrigger')
        .map((fn) => ({ fn, schedule: parseSchedule(fn.name, String(fn.trigger.schedule), timeZone) })),
      (fn, fire) => this.#fireTimer(fn, fire),
    );
    this.durable = new DurableRuntime({
      registry: resolved,
      stateDir: options.stateDir,
      maxConcurrentActivities: options.maxConcurrentActivities ?? this.#hostJson.maxConcurrentActivityFunctions,
      logger: this.#logger.child({ component: 'durable' }),
      invoke: (fn, input) => this.#invoke(fn, input, 'durable'),
    });
    coreState.systemLog = (level, category, message) => writeLog(this.#logger, level, message, category);
  }

  /** The registrations as the host reads them. */
  describe(): FunctionDescription[] {
    return this.#functions.map(({ name, trigger }) => {
      const d: FunctionDescription = { name, triggerType: trigger.type };
      for (const key of DESCRIBED_OPTIONS) {
        if (trigger[key] !== undefined) (d as Record<string, unknown>)[key] = trigger[key];
      }
      return d;
    });
  }

  /** Base URL of the HTTP server once listening, e.g. `http://127.0.0.1:7071`. */
  get url(): string | undefined {
    return this.#server ? this.#publicBaseUrl : undefined;
  }

  /** Starts everything that is not HTTP: app-start hooks, orchestrations, timers, Service Bus receivers. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#running = new AbortController();
    await runHooks('appStart', {
      hookData: coreState.appHookData,
      appHookData: coreState.appHookData,
      functionAppDirectory: process.cwd(),
    });
    await this.#startDurable();
    if (this.options.serviceBus !== false) {
      for (const fn of this.#functions.filter((f) => f.trigger.type === 'serviceBusTrigger')) {
        const feed = new ServiceBusTriggerFeed(fn, {
          connectionString: this.#connectionString(fn),
          maxBatchSize: this.options.maxBatchSize ?? this.#hostJson.maxMessageBatchSize,
          // The extension processes one batch at a time per listener; single messages up to maxConcurrentCalls.
          concurrency:
            this.options.serviceBusConcurrency ??
            (fn.trigger.cardinality === 'many' ? 1 : this.#hostJson.maxConcurrentCalls),
          autoCompleteMessages: fn.trigger.autoCompleteMessages ?? this.#hostJson.autoCompleteMessages,
          maxWaitTimeInMs: this.options.serviceBusMaxWaitMs ?? 1000,
          maxAutoLockRenewalDurationMs: this.#hostJson.maxAutoLockRenewalDurationMs,
          minBatchSize: this.#hostJson.minMessageBatchSize,
          maxBatchWaitMs: this.options.serviceBusMaxWaitMs ?? this.#hostJson.maxBatchWaitTimeMs,
          logger: this.#logger,
          invoke: (f, input) =>
            this.#invoke(
              f,
              { inputData: [{ name: f.trigger.name, data: input.data }], triggerMetadata: input.triggerMetadata },
              'servicebus',
            ),
        });
        feed.start();
        this.#feeds.push(feed);
      }
    }
    if (this.options.timers !== false) {
      this.#timers.start();
      for (const fn of this.#functions.filter((f) => f.trigger.type === 'timerTrigger' && f.trigger.runOnStartup)) {
        void this.fireTimer(fn.name).catch(() => {});
      }
    }
  }

  /**
   * Serves HTTP triggers (and the Durable management webhooks) on `host:port` (port 0 picks one), then
   * starts the rest (`start()`): a listening host is a running host, as `func start` is.
   */
  async listen(port: number, host = '127.0.0.1'): Promise<{ port: number; url: string }> {
    if (this.#server) throw new Error('DevHost is already listening.');
    await this.#startDurable();
    const handler = createHttpTriggerHandler({
      routePrefix: this.options.routePrefix ?? this.#hostJson.routePrefix,
      functionKey: this.options.functionKey,
      masterKey: this.masterKey,
      signedInPrincipal: this.options.signedInPrincipal,
      functions: this.#functions,
      invoke: async (fn, request) =>
        (await this.#invoke(fn, { inputData: [{ name: fn.trigger.name, data: { http: request } }] }, 'http')).response,
      hostRoutes: async (req, res, url, body) =>
        this.#adminApi(req, res, url, body) || (await this.#webhooks(req, res, url, body)),
    });
    const server = createServer(handler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.#server = server;
    const actual = (server.address() as AddressInfo).port;
    this.#publicBaseUrl = `http://${host === '0.0.0.0' || host === '::' ? 'localhost' : host}:${actual}`;
    this.#logger.info('Development host listening', { url: this.#publicBaseUrl });
    try {
      await this.start();
    } catch (err) {
      await this.stop();
      throw err;
    }
    return { port: actual, url: this.#publicBaseUrl };
  }

  /** Runs a timer function now; resolves when it finished (rejects if it threw). */
  async fireTimer(name: string): Promise<void> {
    const fn = this.#functions.find((f) => f.name.toLowerCase() === name.toLowerCase());
    if (fn?.trigger.type !== 'timerTrigger') {
      throw new AppError('CONFIG_INVALID', `No timer function named "${name}".`);
    }
    const schedule = parseSchedule(fn.name, String(fn.trigger.schedule), this.#settings.WEBSITE_TIME_ZONE || undefined);
    await this.#fireTimer(fn, {
      isPastDue: false,
      last: this.#timers.lastFired(fn.name),
      next: schedule.next(new Date()),
    });
  }

  /** Stops HTTP, receivers and timers, then waits for in-flight invocations and orchestration episodes. */
  async stop(): Promise<void> {
    this.#running.abort();
    this.#timers.stop();
    const durableStopped = this.durable.stop();
    const closing = [this.#server, this.#rpcServer].map((server) =>
      server
        ? new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeIdleConnections();
          })
        : Promise.resolve(),
    );
    await Promise.all(this.#feeds.splice(0).map((feed) => feed.stop()));
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
    await durableStopped;
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
    for (const server of [this.#server, this.#rpcServer]) server?.closeAllConnections();
    await Promise.all(closing);
    this.#server = undefined;
    this.#rpcServer = undefined;
    if (this.#started)
      await runHooks('appTerminate', { hookData: coreState.appHookData, appHookData: coreState.appHookData });
    this.#started = false;
    this.#durableStarted = false;
  }

  async #fireTimer(fn: FunctionRegistration, fire: TimerFire): Promise<void> {
    this.#timers.noteFired(fn.name, new Date());
    const input: InvocationInput = {
      inputData: [{ name: fn.trigger.name, data: { json: JSON.stringify(timerInfo(fire)) } }],
    };
    await this.#invokeWithRetryPolicy(fn, input, 'timer');
  }

  /** Function-level retry (`retry: { strategy, maxRetryCount, … }`), as the host applies it to timers. */
  async #invokeWithRetryPolicy(fn: FunctionRegistration, input: InvocationInput, reason: string): Promise<void> {
    const policy = fn.retryOptions as
      | {
          retryStrategy?: string;
          maxRetryCount?: number;
          delayInterval?: { seconds?: number };
          minimumInterval?: { seconds?: number };
          maximumInterval?: { seconds?: number };
        }
      | undefined;
    const max = policy?.maxRetryCount ?? 0;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#invoke(fn, { ...input, retryContext: { retryCount: attempt, maxRetryCount: max } }, reason);
        return;
      } catch (err) {
        if (attempt >= max && max !== -1) throw err;
        const seconds =
          policy?.retryStrategy === 'exponentialBackoff'
            ? Math.min((policy.minimumInterval?.seconds ?? 1) * 2 ** attempt, policy.maximumInterval?.seconds ?? 900)
            : (policy?.delayInterval?.seconds ?? 0);
        const stopped = this.#running.signal;
        if (stopped.aborted) throw err;
        await sleep(seconds * 1000, undefined, { signal: stopped }).catch(() => {
          throw err;
        });
      }
    }
  }

  /** One tracked invocation: adds input bindings the host provides (the durable client), logs start/end. */
  #invoke(fn: FunctionRegistration, input: InvocationInput, reason: string): Promise<InvocationOutcome> {
    const run = (async () => {
      const invocationId = randomUUID();
      const inputData = [...input.inputData];
      for (const [name, binding] of Object.entries(fn.bindings)) {
        if (binding.direction !== 'in' || name === fn.trigger.name) continue;
        const type = String(binding.type);
        if (type === 'durableClient' || type === 'orchestrationClient') {
          inputData.push({ name, data: await this.#durableClientData() });
        } else {
          this.#logger.warn('Input binding type is not provided by the development host', {
            function: fn.name,
            binding: name,
            type,
          });
        }
      }
      const log = this.#logger.child({ function: fn.name, invocationId });
      const started = Date.now();
      log.debug(`Executing 'Functions.${fn.name}' (Reason='${reason}')`);
      try {
        const outcome = await invokeFunction(fn, { ...input, inputData, invocationId }, this.#logger);
        log.debug(`Executed 'Functions.${fn.name}' (Succeeded)`, { durationMs: Date.now() - started });
        return outcome;
      } catch (err) {
        log.error(`Executed 'Functions.${fn.name}' (Failed)`, {
          durationMs: Date.now() - started,
          error: err instanceof Error && err.cause !== undefined ? err.cause : messageOf(err),
        });
        throw err;
      }
    })();
    this.#inflight.add(run);
    run.then(
      () => this.#inflight.delete(run),
      () => this.#inflight.delete(run),
    );
    return run;
  }

  async #durableClientData(): Promise<RpcTypedData> {
    await this.#startDurable();
    const data = clientBindingData({
      rpcBaseUrl: this.#rpcBaseUrl!,
      publicBaseUrl: this.#publicBaseUrl,
      functionKey: this.options.functionKey,
    });
    return { string: JSON.stringify(data) };
  }

  /** The Durable runtime and its local RPC endpoint (the extension's own port, loopback only). */
  async #startDurable(): Promise<void> {
    if (this.#durableStarted) return;
    this.#durableStarted = true;
    if (!this.#functions.some((f) => f.trigger.type === 'orchestrationTrigger')) return;
    const server = createServer((req, res) => void this.#rpc(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.#rpcServer = server;
    this.#rpcBaseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/durabletask/`;
    this.durable.start();
  }

  async #rpc(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', this.#rpcBaseUrl);
      const body = await readAll(req);
      const path = url.pathname.replace(/^\/durabletask\/?/, '');
      if (!isLoopback(req) || !(await this.#durableApi(req, path, url, body, res))) {
        sendJson(res, 404, { message: `Not a Durable API route: ${req.method} ${url.pathname}` });
      }
    } catch (err) {
      if (!res.headersSent) sendJson(res, 500, { message: messageOf(err) });
    }
  }

  /** `POST /admin/functions/{name}`: runs a timer (or another non-HTTP function) now, answering 202. */
  #adminApi(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer): boolean {
    return handleAdminFunctions(
      {
        masterKey: this.masterKey,
        functions: this.#functions,
        run: (fn, input) =>
          fn.trigger.type === 'timerTrigger'
            ? this.fireTimer(fn.name)
            : this.#invokeWithRetryPolicy(
                fn,
                { inputData: [{ name: fn.trigger.name, data: input === undefined ? null : { string: input } }] },
                'admin',
              ),
      },
      req,
      res,
      url,
      body,
    );
  }

  /** Public management webhooks on the main server: the function key is required. */
  async #webhooks(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer): Promise<boolean> {
    if (!url.pathname.startsWith(WEBHOOK_PATH)) return false;
    const key = req.headers['x-functions-key'] ?? url.searchParams.get('code');
    if (key !== this.options.functionKey) {
      sendJson(res, 401, {
        code: 'UNAUTHORIZED',
        message: 'The Durable management API needs the function key (?code= or x-functions-key).',
      });
      return true;
    }
    await this.#startDurable();
    if (!(await this.#durableApi(req, url.pathname.slice(WEBHOOK_PATH.length), url, body, res))) {
      sendJson(res, 404, { message: `Not a Durable API route: ${req.method} ${url.pathname}` });
    }
    return true;
  }

  #durableApi(req: IncomingMessage, path: string, url: URL, body: Buffer, res: ServerResponse): Promise<boolean> {
    const links = (instanceId: string) => {
      const data = clientBindingData({
        rpcBaseUrl: this.#rpcBaseUrl ?? '',
        publicBaseUrl: this.#publicBaseUrl,
        functionKey: this.options.functionKey,
      });
      return Object.fromEntries(
        Object.entries(data.managementUrls)
          .filter(([k]) => k !== 'id')
          .map(([k, v]) => [k, v.replace('INSTANCEID', encodeURIComponent(instanceId))]),
      );
    };
    return handleDurableApi(this.durable, (req.method ?? 'GET').toUpperCase(), path, url, body, res, links);
  }

  #connectionString(fn: FunctionRegistration): string {
    const setting = String(fn.trigger.connection || 'AzureWebJobsServiceBus');
    const value = this.#settings[setting];
    if (!value) {
      const identity = this.#settings[`${setting}__fullyQualifiedNamespace`];
      throw new AppError(
        'CONFIG_INVALID',
        identity
          ? `Service Bus trigger "${fn.name}": the development host needs a connection string in "${setting}"; identity-based "${setting}__fullyQualifiedNamespace" is not supported locally.`
          : `Service Bus trigger "${fn.name}": app setting "${setting}" (the connection string) is not set.`,
        { details: [{ field: setting, message: 'missing connection string' }] },
      );
    }
    return value;
  }
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
