import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

/** The emulator's well-known development account (public; documented by Microsoft). */
export const AZURITE_ACCOUNT_NAME = 'devstoreaccount1';
export const AZURITE_ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteHandle {
  /** A storage connection string for `BlobServiceClient.fromConnectionString`. */
  connectionString: string;
  /** `http://127.0.0.1:<port>/devstoreaccount1` */
  blobEndpoint: string;
  port: number;
  stop(): Promise<void>;
}

export interface StartAzuriteOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Keep blobs in memory only; the default unless `location` is given. */
  inMemory?: boolean;
  /** Directory that keeps blobs across restarts. */
  location?: string;
  /** False lets the process exit while the server still runs (tests that cannot be relied on to stop it). */
  keepProcessAlive?: boolean;
}

// Azurite ships no types for its internals, and its package entry point needs VS Code: load the blob
// server's own modules (their package entry needs `vscode`) and describe the little we use.
interface BlobServerLike {
  httpServer: import('node:http').Server;
  start(): Promise<void>;
  close(): Promise<void>;
  getHttpServerAddress(): string;
}
type BlobConfigurationCtor = new (...args: unknown[]) => unknown;
type BlobServerCtor = new (configuration: unknown) => BlobServerLike;
type ChunkStoreCtor = new (sizeLimit?: number) => unknown;

const require = createRequire(import.meta.url);

/** Starts Azurite's Blob service inside this process (≈ 25 ms). */
export async function startAzurite(options: StartAzuriteOptions = {}): Promise<AzuriteHandle> {
  const BlobConfiguration: BlobConfigurationCtor = require('azurite/dist/src/blob/BlobConfiguration').default;
  const BlobServer: BlobServerCtor = require('azurite/dist/src/blob/BlobServer').default;
  const { MemoryExtentChunkStore } = require('azurite/dist/src/common/persistence/MemoryExtentStore') as {
    MemoryExtentChunkStore: ChunkStoreCtor;
  };

  const inMemory = options.inMemory ?? !options.location;
  const location = resolve(options.location ?? join('.local', 'azurite'));
  if (!inMemory) await mkdir(location, { recursive: true });
  const configuration = new BlobConfiguration(
    '127.0.0.1',
    options.port ?? 0,
    undefined, // keep-alive timeout: Azurite's default
    join(location, '__azurite_db_blob__.json'),
    join(location, '__azurite_db_blob_extent__.json'),
    [{ locationId: 'Default', locationPath: join(location, '__blobstorage__'), maxConcurrency: 10 }],
    false, // access log
    undefined,
    false, // debug log
    undefined,
    true, // loose: tolerate headers Azurite does not implement
    true, // skipApiVersionCheck: accept whatever API version the installed SDK sends
    '',
    '',
    '',
    undefined, // OAuth off: shared key and SAS, like a connection string
    false,
    inMemory,
    // Each in-memory server keeps its own chunks (Azurite's default store is shared process-wide).
    inMemory ? new MemoryExtentChunkStore() : undefined,
  );
  const server = new BlobServer(configuration);
  await server.start();
  if (options.keepProcessAlive === false) {
    server.httpServer.unref();
    server.httpServer.on('connection', (socket) => socket.unref());
  }
  const port = Number(new URL(server.getHttpServerAddress()).port);
  const blobEndpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT_NAME}`;
  let stopped: Promise<void> | undefined;
  return {
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT_NAME};AccountKey=${AZURITE_ACCOUNT_KEY};BlobEndpoint=${blobEndpoint};`,
    blobEndpoint,
    port,
    stop: () => {
      stopped ??= server.close();
      return stopped;
    },
  };
}
