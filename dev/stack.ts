import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodePrincipal, ROLES } from '../lib/auth/principal.js';
import { createLogger, type Logger } from '../lib/log.js';
import { connectClient } from '../lib/postgres-pool.js';
import { closeRuntime } from '../lib/runtime.js';
import { startAzurite } from './embedded/azurite.js';
import { freePort, startEmbeddedPostgres } from './embedded/postgres.js';
import { DevHost, loadFunctionApp } from './host/index.js';
import type { SampleOrgTuning } from './sample-org/cli.js';
import { startSampleOrg } from './sample-org/index.js';
import { startServiceBusStandInThread } from './servicebus/in-worker.js';
import { acquireStackLock } from './stack-lock.js';

export const repoRoot = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

export interface StackOptions {
  /** Where everything persists (default `.local/`). */
  dataDir?: string;
  /** Start from empty data. */
  fresh?: boolean;
  /** HTTP port of the functions (default PORT or 7071; 0 picks a free one). */
  port?: number;
  /** Size of the sample organization. */
  sampleCounts?: { account?: number; contact?: number };
  /** The sample organization's service protection limits and page latency (none by default). */
  sampleTuning?: SampleOrgTuning;
  logger?: Logger;
  /** Extra settings for the app (override the stack's). */
  settings?: Record<string, string>;
  /**
   * Who the console opens as: the development admin by default (as if signed in through App Service
   * Authentication); `false` forwards no principal, so a request without a key or principal is refused.
   */
  signedIn?: { name: string; roles: string[] } | false;
}

export interface StackInfo {
  apiBaseUrl: string;
  /** The admin console (signed in as the development admin). */
  consoleUrl: string;
  functionKey: string;
  /** The host's master key: opens the admin API (`POST /admin/functions/{name}` runs a timer now). */
  masterKey: string;
  postgresUrl: string;
  targetPostgresUrl: string;
  storageConnectionString: string;
  serviceBusConnectionString: string;
  sampleOrg: { url: string; organizationId: string; counts: Record<string, number> };
  pid: number;
}

export interface Stack extends AsyncDisposable {
  info: StackInfo;
  host: DevHost;
  sampleOrg: Awaited<ReturnType<typeof startSampleOrg>>;
  startupMs: number;
  stop(): Promise<void>;
}

const CONTROL_DB = 'dataverse_export_control';

/** Who the local console is signed in as. */
export const DEVELOPMENT_ADMIN = { name: 'Development admin (local)', id: 'local-admin', roles: [ROLES.admin] };
const TARGET_DB = 'dataverse_export';

/**
 * The whole local product: embedded PostgreSQL (control store + target), Azurite, the Service Bus
 * stand-in, the sample Dataverse organization, and the dev host serving the compiled `functions/`.
 */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const started = Date.now();
  const dataDir = options.dataDir ?? join(repoRoot, '.local');
  const logger = options.logger ?? createLogger({ fields: { component: 'dev' } });
  if (options.fresh) wipe(dataDir);
  const releaseLock = acquireStackLock(dataDir);
  const stops: (() => Promise<void>)[] = [async () => releaseLock()];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) {
      await stop().catch((err) => logger.warn('stop failed', { error: err }));
    }
  };
  try {
    const [postgres, azurite, serviceBus] = await Promise.all([
      startEmbeddedPostgres({ dataDir: join(dataDir, 'postgres', 'data') }),
      startAzurite({ location: join(dataDir, 'azurite') }),
      startServiceBusStandInThread({ persistFile: join(dataDir, 'servicebus.json') }),
    ]);
    stops.push(
      () => postgres.stop(),
      () => azurite.stop(),
      () => serviceBus.stop(),
    );
    const controlUrl = await ensureDatabase(postgres.url, CONTROL_DB);
    const targetUrl = await ensureDatabase(postgres.url, TARGET_DB);

    const functionKey = persisted(join(dataDir, 'function-key'), () => randomBytes(24).toString('base64url'));
    const masterKey = persisted(join(dataDir, 'master-key'), () => randomBytes(24).toString('base64url'));
    const payloadKey = persisted(join(dataDir, 'payload-key'), () => randomBytes(32).toString('base64'));
    const port = options.port ?? Number(process.env.PORT ?? 7071);
    const httpPort = port === 0 ? await freePort() : port;
    const apiBaseUrl = `http://127.0.0.1:${httpPort}/api`;

    // Profiles store the organization's URL, so the sample org keeps its port across restarts.
    const samplePortFile = join(dataDir, 'sample-org-port');
    const samplePort = existsSync(samplePortFile) ? Number(readFileSync(samplePortFile, 'utf8')) : await freePort();
    writeFileSync(samplePortFile, String(samplePort));
    // Nothing registered by hand: activating a profile registers the webhook and its steps, as in Azure.
    const sampleOrg = await startSampleOrg({
      port: samplePort,
      counts: options.sampleCounts,
      ...options.sampleTuning,
      registrationFile: join(dataDir, 'sample-org-registrations.json'),
    });
    stops.push(() => sampleOrg.stop());

    const settings: Record<string, string> = {
      ControlStoreKind: 'postgres',
      ControlStoreConnection: controlUrl,
      ServiceBusConnection: serviceBus.connectionString,
      PayloadStorageConnection: azurite.connectionString,
      LocalSecrets: JSON.stringify({
        'local-postgres': targetUrl,
        'payload-encryption-key': payloadKey,
        // Automation's key for the management API is the host's function key, as Bicep arranges in Azure.
        'management-api-key': functionKey,
      }),
      DataverseCredential: 'none',
      // The sample organization answers plain http on 127.0.0.1; in Azure this stays false.
      AllowLoopbackDataverse: 'true',
      PublicBaseUrl: `http://127.0.0.1:${httpPort}`,
      DataverseWebhookKey: functionKey,
      CleanupSchedule: '0 */15 * * * *',
      ReconcileSchedule: '0 */1 * * * *',
      ...options.settings,
    };
    Object.assign(process.env, settings);

    const functionsDir = join(repoRoot, 'dist', 'functions');
    const files = readdirSync(functionsDir)
      .filter((f) => f.endsWith('.js'))
      .map((f) => join(functionsDir, f));
    const registry = await loadFunctionApp(files);
    const host = new DevHost(registry, {
      functionKey,
      masterKey,
      env: settings,
      logger,
      stateDir: join(dataDir, 'durable'),
      hostJson: join(repoRoot, 'host.json'),
      signedInPrincipal:
        options.signedIn === false ? undefined : encodePrincipal(options.signedIn ?? DEVELOPMENT_ADMIN),
    });
    // Stopped in reverse: the host first (no new invocations), then the app's connections, then the parts.
    stops.push(() => closeRuntime());
    await host.listen(httpPort);
    stops.push(() => host.stop());

    const info: StackInfo = {
      apiBaseUrl,
      consoleUrl: `${apiBaseUrl}/admin/`,
      functionKey,
      masterKey,
      postgresUrl: targetUrl,
      targetPostgresUrl: targetUrl,
      storageConnectionString: azurite.connectionString,
      serviceBusConnectionString: serviceBus.connectionString,
      sampleOrg: { url: sampleOrg.url, organizationId: sampleOrg.organizationId, counts: sampleOrg.counts },
      pid: process.pid,
    };
    writeFileSync(join(dataDir, 'stack.json'), JSON.stringify({ ...info, controlStoreUrl: controlUrl }, null, 2));
    const startupMs = Date.now() - started;
    return { info, host, sampleOrg, startupMs, stop: stopAll, [Symbol.asyncDispose]: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

function wipe(dataDir: string) {
  const lock = join(dataDir, 'stack.lock');
  if (existsSync(lock)) {
    // Let acquireStackLock decide whether a live stack holds it; only the data is wiped.
    const pid = Number(readFileSync(lock, 'utf8'));
    if (pid && pid !== process.pid) {
      try {
        process.kill(pid, 0);
        throw new Error(
          `Another Dataverse Export stack (pid ${pid}) is running on ${dataDir}; stop it before --fresh.`,
        );
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
  }
  rmSync(dataDir, { recursive: true, force: true });
}

function persisted(file: string, make: () => string): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const value = make();
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, value, { mode: 0o600 });
  return value;
}

async function ensureDatabase(serverUrl: string, name: string): Promise<string> {
  const client = await connectClient({ connectionString: serverUrl });
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!exists.rowCount) await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  return serverUrl.replace(/\/[^/?]*(\?|$)/, `/${name}$1`);
}
