import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';

/** Where blobs live: a connection string (Azurite, local) or the account's blob endpoint plus an identity (Azure). */
export type BlobConnection = { connectionString: string } | { blobServiceUri: string; credential?: TokenCredential };

export function createBlobServiceClient(connection: BlobConnection): BlobServiceClient {
  if ('connectionString' in connection) return BlobServiceClient.fromConnectionString(connection.connectionString);
  return new BlobServiceClient(connection.blobServiceUri, connection.credential ?? new DefaultAzureCredential());
}

export interface StoredBlob {
  name: string;
  size: number;
  /** When the blob was created (service clock). */
  createdOn?: Date;
  metadata: Record<string, string>;
}

export interface DownloadedBlob {
  data: Buffer;
  etag: string;
  metadata: Record<string, string>;
}

/**
 * The few blob operations the app needs, over one storage account. Containers are created on first use,
 * once per process; a missing blob is `undefined`, not an exception.
 */
export class BlobStore {
  readonly service: BlobServiceClient;
  readonly #containers = new Map<string, Promise<ContainerClient>>();

  constructor(service: BlobServiceClient) {
    this.service = service;
  }

  static connect(connection: BlobConnection): BlobStore {
    return new BlobStore(createBlobServiceClient(connection));
  }

  /** The container, created if it does not exist yet. */
  container(name: string): Promise<ContainerClient> {
    let ready = this.#containers.get(name);
    if (!ready) {
      const client = this.service.getContainerClient(name);
      ready = client.createIfNotExists().then(() => client);
      // A failed creation (outage, auth) is retried by the next call rather than remembered.
      ready.catch(() => this.#containers.delete(name));
      this.#containers.set(name, ready);
    }
    return ready;
  }

  async upload(
    container: string,
    name: string,
    data: Buffer,
    options: { metadata?: Record<string, string>; contentType?: string; ifMatch?: string } = {},
  ): Promise<{ etag: string }> {
    const blob = (await this.container(container)).getBlockBlobClient(name);
    const response = await blob.uploadData(data, {
      metadata: options.metadata,
      blobHTTPHeaders: { blobContentType: options.contentType ?? 'application/octet-stream' },
      conditions: options.ifMatch ? { ifMatch: options.ifMatch } : undefined,
    });
    return { etag: response.etag ?? '' };
  }

  async download(container: string, name: string): Promise<DownloadedBlob | undefined> {
    const blob = (await this.container(container)).getBlobClient(name);
    try {
      const response = await blob.download();
      const data = await streamToBuffer(response.readableStreamBody);
      return { data, etag: response.etag ?? '', metadata: response.metadata ?? {} };
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  /** True when the blob existed. `ifMatch` makes the delete conditional (412 if the blob changed). */
  async delete(container: string, name: string, options: { ifMatch?: string } = {}): Promise<boolean> {
    const blob = (await this.container(container)).getBlobClient(name);
    const response = await blob.deleteIfExists({
      deleteSnapshots: 'include',
      conditions: options.ifMatch ? { ifMatch: options.ifMatch } : undefined,
    });
    return response.succeeded;
  }

  /** Blobs under `prefix` in name order (which the service guarantees), one page at a time. */
  async *list(
    container: string,
    options: { prefix?: string; pageSize?: number; metadata?: boolean } = {},
  ): AsyncGenerator<StoredBlob> {
    const client = await this.container(container);
    const pages = client
      .listBlobsFlat({ prefix: options.prefix, includeMetadata: options.metadata ?? false })
      .byPage({ maxPageSize: options.pageSize ?? 5000 });
    for await (const page of pages) {
      for (const item of page.segment.blobItems) {
        yield {
          name: item.name,
          size: item.properties.contentLength ?? 0,
          createdOn: item.properties.createdOn,
          metadata: item.metadata ?? {},
        };
      }
    }
  }

  /** The "folders" directly under `prefix` (which should end with `/`), each ending with `/`. */
  async folders(container: string, prefix: string): Promise<string[]> {
    const client = await this.container(container);
    const out: string[] = [];
    for await (const item of client.listBlobsByHierarchy('/', { prefix })) {
      if (item.kind === 'prefix') out.push(item.name);
    }
    return out;
  }
}

export function statusOf(err: unknown): number | undefined {
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

async function streamToBuffer(stream: NodeJS.ReadableStream | undefined): Promise<Buffer> {
  if (!stream) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}
