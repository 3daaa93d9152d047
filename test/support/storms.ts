/**
 * Storms for the engine suites: concurrent, shuffled, duplicated changes of the same records, with the final
 * truth (the newest version of each record, or none once deleted) computed alongside, so the target can be
 * compared with it row for row whatever order the changes were applied in.
 */
import { buildRemoteExecutionContext, serializeRemoteExecutionContext } from '../../dev/dataverse-payloads.js';
import type { AttributeValue } from '../../lib/change/change-event.js';

/** A small deterministic generator (mulberry32), so a failing storm can be replayed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffle<T>(items: T[], random: () => number): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
}

export interface StormEvent {
  id: string;
  messageName: 'Create' | 'Update' | 'Delete';
  version: number;
  attributes: Record<string, AttributeValue>;
}

/** Full-image events for `records` ids: a create, updates, and for some a delete (the pre-image's version). */
export function webhookStorm(records: number, seed: number): { events: StormEvent[]; truth: Map<string, StormEvent> } {
  const rnd = seeded(seed);
  let version = 10_000;
  const events: StormEvent[] = [];
  const truth = new Map<string, StormEvent>();
  for (let r = 0; r < records; r++) {
    const id = `00000000-0000-4000-8000-${r.toString(16).padStart(12, '0')}`;
    const updates = 1 + Math.floor(rnd() * 8);
    let last: StormEvent | undefined;
    for (let u = 0; u < updates; u++) {
      version += 1 + Math.floor(rnd() * 3);
      last = {
        id,
        messageName: u === 0 ? 'Create' : 'Update',
        version,
        attributes: {
          name: { type: 'string', value: `account ${r} v${version}` },
          revenue: { type: 'money', value: `${r}.${String(version % 100).padStart(2, '0')}` },
          numberofemployees: { type: 'int', value: version % 1000 },
        },
      };
      events.push(last);
    }
    if (rnd() < 0.15 && last) {
      events.push({ id, messageName: 'Delete', version: last.version, attributes: {} });
      truth.delete(id);
    } else if (last) {
      truth.set(id, last);
    }
  }
  // Duplicates (Dataverse and Service Bus both redeliver) and a full shuffle (nothing arrives in order).
  const duplicated = [...events, ...events.filter(() => rnd() < 0.2)];
  shuffle(duplicated, rnd);
  return { events: duplicated, truth };
}

export function stormWebhookBody(organizationId: string, event: StormEvent): string {
  return serializeRemoteExecutionContext(
    buildRemoteExecutionContext({
      organizationId,
      messageName: event.messageName,
      entity: 'account',
      id: event.id,
      attributes: event.attributes,
      versionNumber: String(event.version),
    }),
  );
}
