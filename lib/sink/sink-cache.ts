import type { Logger } from '../log.js';
import type { SecretProvider } from '../secrets/provider.js';
import { openSink, type Sink } from './index.js';

/** The part of a profile that names its target. */
export interface SinkProfile {
  id: string;
  target: { kind: 'postgres' | 'mssql'; connectionSecret: string; schema?: string; tablePrefix?: string };
  options: { writeDeleteLog?: boolean };
}

/**
 * One open sink per distinct target (secret, schema, prefix, delete-log option), shared by every profile
 * that writes there. A rotated connection secret is picked up when the sink is reopened after a failure.
 */
export class SinkCache {
  readonly #sinks = new Map<string, Promise<Sink>>();

  constructor(
    private readonly secrets: SecretProvider,
    private readonly logger: Logger,
    private readonly profiles: () => Promise<SinkProfile[]> = async () => [],
    private readonly policy: { allowTrustServerCertificate?: boolean } = {},
  ) {}

  /** Purges tombstones older than `olderThan` in every target some profile writes to; returns how many. */
  async purgeTombstones(olderThan: Date): Promise<number> {
    const seen = new Set<Sink>();
    let purged = 0;
    for (const profile of await this.profiles()) {
      const sink = await this.sinkFor(profile).catch((err: unknown) => {
        this.logger.warn('tombstones not purged: target unavailable', { profileId: profile.id, error: err });
        return undefined;
      });
      if (!sink || seen.has(sink)) continue;
      seen.add(sink);
      purged += await sink.purgeTombstones(olderThan);
    }
    return purged;
  }

  sinkFor(profile: SinkProfile): Promise<Sink> {
    const target = profile.target;
    const schema = target.schema ?? (target.kind === 'mssql' ? 'dbo' : 'public');
    const tablePrefix = target.tablePrefix ?? '';
    const writeDeleteLog = profile.options.writeDeleteLog ?? true;
    const key = JSON.stringify([target.kind, target.connectionSecret, schema, tablePrefix, writeDeleteLog]);
    let sink = this.#sinks.get(key);
    if (!sink) {
      sink = (async () => {
        const connectionString = await this.secrets.getSecret(target.connectionSecret);
        return openSink(
          { kind: target.kind, connectionString, schema, tablePrefix, writeDeleteLog, ...this.policy },
          this.logger,
        );
      })();
      sink.catch(() => this.#sinks.delete(key));
      this.#sinks.set(key, sink);
    }
    return sink;
  }

  async close(): Promise<void> {
    const sinks = [...this.#sinks.values()];
    this.#sinks.clear();
    await Promise.allSettled(sinks.map(async (s) => (await s).close()));
  }
}
