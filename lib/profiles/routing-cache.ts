import type { ExportProfile } from './schema.js';

/**
 * Ingest asks "which active profiles of this organization?" for every webhook; the answer changes only when
 * a profile is activated, deactivated, replaced or deleted. It is cached for a second per organization and
 * dropped at once when this instance changes a profile, so a burst of deliveries costs one query, not one each.
 * Another instance's change is seen within `ttlMs`; a change that slipped in meanwhile is either covered by
 * the initial sync the activation starts, or dropped at apply because the profile is no longer active.
 */
export class RoutingCache {
  readonly #entries = new Map<string, { at: number; profiles: Promise<ExportProfile[]> }>();

  constructor(
    private readonly load: (organizationId: string) => Promise<ExportProfile[]>,
    private readonly ttlMs = 1_000,
    private readonly now: () => number = Date.now,
  ) {}

  activeProfilesFor(organizationId: string): Promise<ExportProfile[]> {
    const key = organizationId.toLowerCase();
    const hit = this.#entries.get(key);
    if (hit && this.now() - hit.at < this.ttlMs) return hit.profiles;
    const profiles = this.load(organizationId);
    this.#entries.set(key, { at: this.now(), profiles });
    // A failed read is not remembered: the next delivery asks again.
    profiles.catch(() => {
      if (this.#entries.get(key)?.profiles === profiles) this.#entries.delete(key);
    });
    return profiles;
  }

  invalidate(): void {
    this.#entries.clear();
  }
}
