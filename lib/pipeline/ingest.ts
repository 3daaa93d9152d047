import type { ChangeEvent } from '../change/change-event.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ChangeQueue } from '../queue/change-queue.js';
import { type ChangeMessage, claimCheckMessage, inlineMessage } from '../queue/envelope.js';
import type { ClaimCheckStore, ProfileDirectory, RoutedProfile } from './ports.js';

export interface ParsedWebhookLike {
  organizationId: string;
  correlationId: string;
  messageName: string;
  primaryEntityName: string;
  changes: ChangeEvent[];
}

export interface IngestDeps {
  parse(body: string, headers: Record<string, string | undefined>): ParsedWebhookLike;
  profiles: ProfileDirectory;
  queue: ChangeQueue;
  claimChecks: ClaimCheckStore;
  claimCheckThresholdBytes: number;
  logger: Logger;
}

export interface IngestResult {
  status: number;
  body: { accepted: number; profiles: string[]; correlationId: string; ignored?: string };
}

/**
 * One webhook delivery: parse (400 on bad input, nothing enqueued), route to the organization's active
 * profiles, enqueue inline or by claim check. If the queue fails, every claim check written for this
 * delivery is removed again and the error surfaces as 503, which Dataverse retries.
 */
export async function ingestWebhook(
  deps: IngestDeps,
  body: string,
  headers: Record<string, string | undefined>,
): Promise<IngestResult> {
  const parsed = deps.parse(body, headers);
  const log = deps.logger.child({ correlationId: parsed.correlationId, organizationId: parsed.organizationId });
  const active = await deps.profiles.activeProfilesFor(parsed.organizationId);

  const messages: ChangeMessage[] = [];
  const written: string[] = [];
  const routed = new Set<string>();
  try {
    for (const change of parsed.changes) {
      const targets = active.filter((p) => wants(p, change)).map((p) => p.id);
      if (!targets.length) continue;
      for (const id of targets) routed.add(id);
      const inline = inlineMessage(change, targets);
      const size = Buffer.byteLength(JSON.stringify(inline));
      if (size <= deps.claimCheckThresholdBytes) {
        messages.push(inline);
        continue;
      }
      const json = JSON.stringify(change);
      const ref = await deps.claimChecks.put(json, { organizationId: change.organizationId, entity: change.entity });
      written.push(ref.blobName);
      messages.push(claimCheckMessage(change, targets, ref.blobName, ref.bytes));
      log.info('change stored as claim check', { entity: change.entity, recordId: change.recordId, bytes: size });
    }
    if (!messages.length) {
      const ignored = parsed.changes.length
        ? `no active profile of organization ${parsed.organizationId} exports ${parsed.primaryEntityName}`
        : `message ${parsed.messageName} carries no change to export`;
      log.debug('webhook ignored', { reason: ignored });
      return { status: 200, body: { accepted: 0, profiles: [], correlationId: parsed.correlationId, ignored } };
    }
    await deps.queue.send(messages);
  } catch (err) {
    await Promise.allSettled(written.map((name) => deps.claimChecks.delete(name)));
    throw err instanceof AppError
      ? err
      : new AppError('QUEUE_UNAVAILABLE', 'the change could not be enqueued; Dataverse will retry', { cause: err });
  }
  log.info('webhook accepted', {
    messageName: parsed.messageName,
    entity: parsed.primaryEntityName,
    changes: messages.length,
    profiles: [...routed],
  });
  return {
    status: 202,
    body: { accepted: messages.length, profiles: [...routed], correlationId: parsed.correlationId },
  };
}

/** Whether the profile exports the change's entity (or relationship). */
export function wants(profile: RoutedProfile, change: ChangeEvent): boolean {
  if (change.operation === 'associate' || change.operation === 'disassociate') {
    return (profile.relationships ?? []).includes(change.entity);
  }
  return profile.entities.includes(change.entity);
}
