/**
 * The sink's EntitySchemaSource over the Dataverse Web API: entity metadata mapped as the initial sync maps
 * it (column specs, metadata-table rows), read again when the copy is older than a few minutes, so a change
 * an admin makes in Dataverse reaches the target's columns and label tables without a restart.
 */
import { toAppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { EntitySchema, EntitySchemaSource } from '../sink/index.js';
import type { DataverseSource } from './ports.js';
import { attributeSpecs, toSinkMetadata } from './target-metadata.js';

/** How long a metadata copy serves before it is read again. */
export const METADATA_FRESH_FOR_MS = 5 * 60_000;
/** After a failed read, values type their own columns for this long before the Web API is asked again. */
const UNAVAILABLE_FOR_MS = 30_000;

export class EntitySchemaCache implements EntitySchemaSource {
  private readonly readAt = new Map<string, number>();
  /** Refreshes under way: appliers failing rows of one entity at once share one read. */
  private readonly refreshing = new Map<string, Promise<EntitySchema | undefined>>();
  private readonly unavailableUntil = new Map<string, number>();

  constructor(
    private readonly source: Pick<DataverseSource, 'entityMetadata'>,
    private readonly logger: Logger,
    private readonly freshForMs = METADATA_FRESH_FOR_MS,
    private readonly now: () => number = Date.now,
  ) {}

  async describe(entity: string, options: { refresh?: boolean } = {}): Promise<EntitySchema | undefined> {
    const now = this.now();
    if ((this.unavailableUntil.get(entity) ?? 0) > now) return undefined;
    const stale = options.refresh || now - (this.readAt.get(entity) ?? Number.NEGATIVE_INFINITY) > this.freshForMs;
    if (!stale) return this.read(entity, false, now);
    let refresh = this.refreshing.get(entity);
    if (!refresh) {
      refresh = this.read(entity, true, now).finally(() => this.refreshing.delete(entity));
      this.refreshing.set(entity, refresh);
    }
    return refresh;
  }

  private async read(entity: string, refresh: boolean, now: number): Promise<EntitySchema | undefined> {
    try {
      const metadata = await this.source.entityMetadata(entity, refresh ? { refresh: true } : undefined);
      if (refresh) this.readAt.set(entity, now);
      this.unavailableUntil.delete(entity);
      return { specs: attributeSpecs(metadata), metadata: toSinkMetadata(metadata) };
    } catch (err) {
      this.unavailableUntil.set(entity, now + UNAVAILABLE_FOR_MS);
      this.logger.warn('entity metadata unavailable; column types are inferred from values for now', {
        entity,
        error: toAppError(err),
      });
      return undefined;
    }
  }

  /** The source for one profile: its N:N relationships have tables of their own layout and get no specs. */
  forProfile(profile: { relationships?: string[] }): EntitySchemaSource {
    const relationships = new Set(profile.relationships ?? []);
    return {
      describe: async (entity, options) => (relationships.has(entity) ? undefined : this.describe(entity, options)),
    };
  }
}
