/**
 * The one place that wires the engine: reads the settings, opens the control store, blob storage, the
 * queue, secrets and the per-target sinks, and hands them to the trigger files in `functions/`. Everything
 * else in `lib/` receives its dependencies and never reads configuration itself.
 */
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { ServiceBusClient } from '@azure/service-bus';
import { type AppConfig, loadConfig } from './config.js';
import { createDataverseClient, type DataverseClient } from './dataverse/webapi/client.js';
import { parseWebhook } from './dataverse/webhook/parse.js';
import { createLogger, type Logger, setDefaultLogLevel } from './log.js';
import type { ApplyDeps } from './pipeline/apply-queued-changes.js';
import { EntityConditions } from './pipeline/entity-conditions.js';
import type { IngestDeps } from './pipeline/ingest.js';
import type {
  ClaimCheckStore as ClaimCheckPort,
  FailureLogWriter,
  RecordRereader,
  RoutedProfile,
  SchemaSourceFactory,
} from './pipeline/ports.js';
import { ThrottledTargetStates } from './pipeline/target-state.js';
import type { ControlStore } from './profiles/control-store.js';
import { openControlStore } from './profiles/open-control-store.js';
import { RoutingCache } from './profiles/routing-cache.js';
import { ServiceBusChangeQueue } from './queue/change-queue.js';
import { CHANGES_QUEUE } from './queue/envelope.js';
import { WebhookRegistrar } from './registration/registrar.js';
import { createSecretProvider } from './secrets/create-secret-provider.js';
import type { SecretProvider } from './secrets/provider.js';
import { SinkCache } from './sink/sink-cache.js';
import { BlobStore } from './storage/blob-store.js';
import { ClaimCheckStore } from './storage/claim-check.js';
import { FailureLog } from './storage/failure-log.js';
import { PayloadCipher } from './storage/payload-crypto.js';
import { EntitySchemaCache } from './sync/entity-schema.js';
import { OrganizationShares } from './sync/organization-share.js';
import { startTelemetry, withTelemetry } from './telemetry.js';
import { reportWorkerHeap, workerHeap } from './worker-heap.js';

export interface Runtime {
  config: AppConfig;
  logger: Logger;
  /** The control store; its profile writes also refresh this instance's ingest routing. */
  store: ControlStore;
  routing: RoutingCache;
  secrets: SecretProvider;
  blobs: BlobStore;
  claimChecks: ClaimCheckStore;
  failureLog: FailureLog;
  serviceBus: ServiceBusClient;
  queue: ServiceBusChangeQueue;
  sinks: SinkCache;
  /** A Web API client for the profile's environment (cached per URL). */
  dataverseFor(profile: Pick<RoutedProfile, 'id'> & { source: { url: string } }): DataverseClient;
  /** Entity checks and the webhook registration in each organization, following its profiles. */
  registrar: WebhookRegistrar;
  /** This instance's claims on organizations' Dataverse concurrency while it copies from them. */
  shares: OrganizationShares;
  ingestDeps(logger?: Logger): IngestDeps;
  applyDeps(logger?: Logger): ApplyDeps;
  close(): Promise<void>;
}

let current: Promise<Runtime> | undefined;

/** The process-wide runtime, built on first use from the settings in `process.env`. */
export function getRuntime(): Promise<Runtime> {
  if (!current) {
    current = createRuntime(process.env);
    // A failed start (bad settings, database down) is retried by the next invocation, not cached.
    current.catch(() => {
      current = undefined;
    });
  }
  return current;
}

/** Closes the process-wide runtime (dev host shutdown, tests). */
export async function closeRuntime(): Promise<void> {
  const runtime = current;
  current = undefined;
  if (runtime) await (await runtime.catch(() => undefined))?.close();
}

/** The live path's metadata reads: two tries, 10 s each, before values type new columns. */
const METADATA_RETRY = { maxAttempts: 2, baseDelayMs: 200, maxDelayMs: 2_000 };
const METADATA_TIMEOUT_MS = 10_000;

export async function createRuntime(env: Record<string, string | undefined>): Promise<Runtime> {
  const config = loadConfig(env);
  setDefaultLogLevel(config.logLevel);
  const logger = createLogger({ level: config.logLevel, fields: { app: 'dataverse-export' } });
  reportWorkerHeap(logger, workerHeap(env));
  await startTelemetry(config.applicationInsightsConnectionString, config.applicationInsightsAuthenticationString);
  let credential: TokenCredential | undefined;
  const azureCredential = () => {
    credential ??= new DefaultAzureCredential();
    return credential;
  };

  const secrets = createSecretProvider(config, config.keyVaultUri ? azureCredential() : undefined);
  const rawStore = await openControlStore(config.controlStore.kind, config.controlStore.connectionString, {
    logger: logger.child({ component: 'control-store' }),
    allowTrustServerCertificate: config.allowTrustServerCertificate,
  });
  await rawStore.migrate();
  const routing = new RoutingCache((organizationId) => rawStore.activeProfilesFor(organizationId));
  const store = invalidatingRouting(rawStore, () => routing.invalidate());

  const blobs = BlobStore.connect(
    config.payloadStorage.connectionString
      ? { connectionString: config.payloadStorage.connectionString }
      : { blobServiceUri: config.payloadStorage.blobServiceUri ?? '', credential: azureCredential() },
  );
  const cipher = new PayloadCipher({
    secrets,
    keySecretName: config.payloadKeySecretName,
    previousKeySecretNames: config.payloadPreviousKeySecretNames,
  });
  const claimChecks = new ClaimCheckStore({ blobs, cipher });
  const failureLog = new FailureLog({ blobs });

  const serviceBus = config.serviceBus.connectionString
    ? new ServiceBusClient(config.serviceBus.connectionString)
    : new ServiceBusClient(config.serviceBus.fullyQualifiedNamespace ?? '', azureCredential());
  const queue = new ServiceBusChangeQueue(serviceBus, CHANGES_QUEUE);
  const sinks = new SinkCache(secrets, logger, () => store.listProfiles(), {
    allowTrustServerCertificate: config.allowTrustServerCertificate,
  });
  const targetStates = new ThrottledTargetStates(store);
  const entityConditions = new EntityConditions(store, logger.child({ component: 'sink' }));

  const dataverseClients = new Map<string, DataverseClient>();
  const dataverseFor: Runtime['dataverseFor'] = (profile) => {
    let client = dataverseClients.get(profile.source.url);
    if (!client) {
      client = createDataverseClient({
        url: profile.source.url,
        credential: config.dataverseCredential === 'default' ? azureCredential() : undefined,
        maxConcurrency: config.dataverseMaxConcurrency,
        logger: logger.child({ component: 'dataverse', url: profile.source.url }),
      });
      dataverseClients.set(profile.source.url, client);
    }
    return client;
  };
  // One metadata cache per organization, so its copies age (and refresh) across batches. Its client gives
  // up quickly: a batch waits a moment for metadata, not a whole retry schedule (values type columns then).
  const schemaCaches = new Map<string, EntitySchemaCache>();
  const schemaFor: SchemaSourceFactory = (profile) => {
    const url = profile.source?.url;
    if (!url) return undefined;
    let cache = schemaCaches.get(url);
    if (!cache) {
      const log = logger.child({ component: 'metadata', url });
      const client = createDataverseClient({
        url,
        credential: config.dataverseCredential === 'default' ? azureCredential() : undefined,
        maxConcurrency: config.dataverseMaxConcurrency,
        logger: log,
        retry: METADATA_RETRY,
        timeoutMs: METADATA_TIMEOUT_MS,
      });
      cache = new EntitySchemaCache(client, log);
      schemaCaches.set(url, cache);
    }
    return cache.forProfile(profile);
  };

  const shares = new OrganizationShares(store, { logger: logger.child({ component: 'dataverse' }) });

  const registrar = new WebhookRegistrar({
    listProfiles: () => store.listProfiles(),
    dataverseFor,
    webhook: config.webhook,
    logger: logger.child({ component: 'registration' }),
  });

  const claimCheckPort: ClaimCheckPort = {
    put: (json, meta) => claimChecks.putClaimCheck(json, meta),
    get: (blobName) => claimChecks.getClaimCheck(blobName),
    delete: async (blobName) => {
      await claimChecks.deleteClaimCheck(blobName);
    },
  };
  const failureWriter: FailureLogWriter = {
    writeFailures: async (profileId, entries) => {
      await failureLog.writeFailures(profileId, entries);
    },
  };
  const rereader: RecordRereader = {
    reread: async (profile, change) => {
      const full = await store.getProfile(profile.id);
      if (!full) return undefined;
      return dataverseFor(full).retrieve(change.entity, change.recordId);
    },
  };

  return {
    config,
    logger,
    store,
    routing,
    secrets,
    blobs,
    claimChecks,
    failureLog,
    serviceBus,
    queue,
    sinks,
    dataverseFor,
    registrar,
    shares,
    ingestDeps: (log = logger) => ({
      parse: parseWebhook,
      profiles: {
        activeProfilesFor: (org) => routing.activeProfilesFor(org),
        getProfile: (id) => store.getProfile(id),
      },
      queue,
      claimChecks: claimCheckPort,
      claimCheckThresholdBytes: config.claimCheckThresholdBytes,
      logger: log,
    }),
    applyDeps: (log = logger) => ({
      profiles: store,
      sinks,
      claimChecks: claimCheckPort,
      queue,
      failureLog: failureWriter,
      metrics: withTelemetry(store),
      rereader,
      schemaFor,
      outageBackoffSeconds: config.targetOutageBackoffSeconds,
      targetStates,
      entityConditions,
      logger: log,
    }),
    async close() {
      // Never throws: a claim it cannot release expires on its own.
      await shares.close();
      await Promise.allSettled([queue.close(), sinks.close(), store.close()]);
    },
  };
}

/** The store, with every profile write also dropping the routing cache (so activation routes at once). */
function invalidatingRouting(store: ControlStore, invalidate: () => void): ControlStore {
  const after =
    <A extends unknown[], R>(write: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await write(...args);
      } finally {
        invalidate();
      }
    };
  return Object.assign(Object.create(store) as ControlStore, {
    createProfile: after(store.createProfile.bind(store)),
    replaceProfile: after(store.replaceProfile.bind(store)),
    deleteProfile: after(store.deleteProfile.bind(store)),
    setProfileState: after(store.setProfileState.bind(store)),
  });
}
