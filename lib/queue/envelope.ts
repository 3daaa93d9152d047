import { createHash } from 'node:crypto';
import type { ChangeEvent } from '../change/change-event.js';

/** The queue's only message type: one change for one or more profiles, inline or by claim check. */
export interface ChangeMessage {
  schemaVersion: 1;
  organizationId: string;
  entity: string;
  recordId: string;
  operation: ChangeEvent['operation'];
  version: ChangeEvent['version'];
  operationTime: string;
  correlationId: string;
  /** The profiles this change still has to reach. */
  profileIds: string[];
  /** How many times applying this change already failed transiently (drives retryCount). */
  attempt: number;
  /** How many times it was re-scheduled without spending the retry budget (target unreachable). */
  deferrals?: number;
  body: { kind: 'inline'; change: ChangeEvent } | { kind: 'claimCheck'; blobName: string; bytes: number };
}

export const CHANGES_QUEUE = 'changes';

export function inlineMessage(change: ChangeEvent, profileIds: string[], attempt = 0): ChangeMessage {
  return { ...header(change, profileIds, attempt), body: { kind: 'inline', change } };
}

export function claimCheckMessage(
  change: ChangeEvent,
  profileIds: string[],
  blobName: string,
  bytes: number,
  attempt = 0,
): ChangeMessage {
  return { ...header(change, profileIds, attempt), body: { kind: 'claimCheck', blobName, bytes } };
}

function header(change: ChangeEvent, profileIds: string[], attempt: number): Omit<ChangeMessage, 'body'> {
  return {
    schemaVersion: 1,
    organizationId: change.organizationId,
    entity: change.entity,
    recordId: change.recordId,
    operation: change.operation,
    version: change.version,
    operationTime: change.operationTime,
    correlationId: change.correlationId,
    profileIds: [...profileIds].sort(),
    attempt,
  };
}

/**
 * A deterministic message id: the same change for the same profiles always gets the same id, so a
 * Dataverse retry of one webhook is dropped by Service Bus duplicate detection. Retries we schedule
 * ourselves carry the attempt and deferral numbers and so get a new id, or the queue would drop them too.
 */
export function messageIdOf(message: ChangeMessage): string {
  return createHash('sha256')
    .update(
      JSON.stringify([
        message.organizationId,
        message.entity,
        message.recordId,
        message.operation,
        message.version.rowVersion ?? null,
        message.version.modifiedOn ?? null,
        message.operationTime,
        message.profileIds,
        message.attempt,
        ...(message.deferrals ? [message.deferrals] : []),
      ]),
    )
    .digest('hex')
    .slice(0, 64);
}

/** Narrows an untrusted queue body to a ChangeMessage, or explains why it is not one. */
export function readChangeMessage(body: unknown): ChangeMessage | { error: string } {
  const value = typeof body === 'string' ? safeParse(body) : body;
  if (!value || typeof value !== 'object') return { error: 'message body is not a JSON object' };
  const m = value as Partial<ChangeMessage>;
  if (m.schemaVersion !== 1) return { error: `unsupported schemaVersion ${JSON.stringify(m.schemaVersion)}` };
  if (!Array.isArray(m.profileIds) || !m.body || typeof m.entity !== 'string' || typeof m.recordId !== 'string') {
    return { error: 'message lacks profileIds, entity, recordId or body' };
  }
  if (m.body.kind !== 'inline' && m.body.kind !== 'claimCheck') return { error: 'message body kind is unknown' };
  return { attempt: 0, ...m } as ChangeMessage;
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
