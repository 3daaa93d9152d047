/**
 * Why one entity's changes wait while the rest of its profile applies (its table would exceed the target's
 * limits), shown as the entity's `lastError` on status and logged when it starts and when it ends, not per
 * batch. Only this condition's own text is ever cleared, so a copy's failure reason stays where it is.
 */
import type { Logger } from '../log.js';
import type { EntityConditionRecorder } from './ports.js';

/** The control-store calls this needs. */
export interface EntityStatusStore {
  updateSyncState(profileId: string, entity: string, patch: { lastError: string | null }): Promise<void>;
  entityStatuses(profileId: string): Promise<Array<{ entity: string; lastError: string | null }>>;
}

/** The codes whose reasons this writes; a lastError starting with another is someone else's. */
const OWN_CODES = ['TABLE_LIMIT_EXCEEDED'];

export const entityConditionText = (code: string, message: string) => `${code}: ${message}`;

export class EntityConditions implements EntityConditionRecorder {
  /** Per profile and entity: the reason this instance last wrote (null: none), and when. */
  readonly #known = new Map<string, { reason: string | null; at: number }>();

  constructor(
    private readonly store: EntityStatusStore,
    private readonly logger: Logger,
    /** How long what was written is trusted (another instance may have changed it since). */
    private readonly refreshMs = 60_000,
    private readonly clock: () => number = Date.now,
  ) {}

  async recordEntityCondition(profileId: string, entity: string, reason: string | null): Promise<void> {
    const key = `${profileId}\n${entity}`;
    const last = this.#known.get(key);
    const now = this.clock();
    if (last && last.reason === reason && now - last.at < this.refreshMs) return;
    if (reason !== null) {
      await this.store.updateSyncState(profileId, entity, { lastError: reason });
      if (last?.reason !== reason) this.logger.warn('sink.entity.waiting', { profileId, entity, reason });
    } else {
      const stored = (await this.store.entityStatuses(profileId)).find((s) => s.entity === entity)?.lastError;
      if (stored && OWN_CODES.some((code) => stored.startsWith(`${code}:`))) {
        await this.store.updateSyncState(profileId, entity, { lastError: null });
        this.logger.info('sink.entity.fits', { profileId, entity, was: stored });
      }
    }
    this.#known.set(key, { reason, at: now });
  }
}
