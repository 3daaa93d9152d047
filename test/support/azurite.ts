import { randomBytes } from 'node:crypto';
import { BlobServiceClient } from '@azure/storage-blob';
import { type AzuriteHandle, startAzurite } from '../../dev/embedded/azurite.js';
import { BlobStore } from '../../lib/storage/blob-store.js';

/**
 * One in-process Azurite per test process, started on first use (or the one named by
 * TEST_AZURITE_CONNECTION, should a runner start a shared one). Each test gets its own containers.
 */
let connection: Promise<string> | undefined;
let ownServer: AzuriteHandle | undefined;

export function testAzuriteConnectionString(): Promise<string> {
  if (process.env.TEST_AZURITE_CONNECTION) return Promise.resolve(process.env.TEST_AZURITE_CONNECTION);
  connection ??= (async () => {
    ownServer = await startAzurite({ inMemory: true, keepProcessAlive: false });
    return ownServer.connectionString;
  })();
  return connection;
}

/** Stops this process's Azurite, if it started one (from an `after` hook; otherwise it simply ends with the process). */
export async function stopOwnAzurite(): Promise<void> {
  await ownServer?.stop();
  ownServer = undefined;
  connection = undefined;
}

export interface TestStorage extends AsyncDisposable {
  blobs: BlobStore;
  service: BlobServiceClient;
  /** A unique prefix; `container('claimchecks')` is `<prefix>-claimchecks`. */
  prefix: string;
  container(name: string): string;
}

/** Containers private to one test: `await using storage = await createTestStorage()` deletes them after. */
export async function createTestStorage(): Promise<TestStorage> {
  const service = BlobServiceClient.fromConnectionString(await testAzuriteConnectionString());
  const prefix = `t${randomBytes(5).toString('hex')}`;
  return {
    blobs: new BlobStore(service),
    service,
    prefix,
    container: (name) => `${prefix}-${name}`,
    async [Symbol.asyncDispose]() {
      for await (const container of service.listContainers({ prefix: `${prefix}-` })) {
        await service.deleteContainer(container.name);
      }
    },
  };
}
