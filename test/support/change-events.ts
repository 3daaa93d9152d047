/** ChangeEvents as the webhook parser makes them, for sink tests: records named 1, 2, 3…, one second per version. */
import type { AttributeValue, ChangeEvent } from '../../lib/change/change-event.js';

const ORG = '6042beb1-a93a-ef11-8e4b-00224802c699';
/** Version 0 in time: the row versions count seconds from here. */
export const T0 = Date.parse('2026-01-01T00:00:00Z');

/** A GUID made from a number, so tests can name records 1, 2, 3… */
export function guid(n: number, prefix = 'a'): string {
  const hex = n.toString(16).padStart(12, '0');
  return `${prefix.repeat(8)}-0000-4000-8000-${hex}`;
}

/** The time Dataverse would stamp on row version `v` (one second per version). */
export const timeOf = (v: number): string => new Date(T0 + v * 1000).toISOString();

export function upsert(
  entity: string,
  id: string,
  v: number | undefined,
  attributes: Record<string, AttributeValue>,
): ChangeEvent {
  return {
    organizationId: ORG,
    entity,
    recordId: id,
    operation: 'upsert',
    version: v === undefined ? {} : { rowVersion: String(v), modifiedOn: timeOf(v) },
    operationTime: timeOf(v ?? 0),
    attributes,
    correlationId: 'test',
    source: 'webhook',
  };
}

/** A delete: the pre-image's row version and the operation's time. */
export function remove(entity: string, id: string, deletedVersion: number | undefined, at: number): ChangeEvent {
  return {
    organizationId: ORG,
    entity,
    recordId: id,
    operation: 'delete',
    version:
      deletedVersion === undefined
        ? { modifiedOn: timeOf(at) }
        : { rowVersion: String(deletedVersion), modifiedOn: timeOf(at) },
    operationTime: timeOf(at),
    correlationId: 'test',
    source: 'webhook',
  };
}

export const str = (value: string): AttributeValue => ({ type: 'string', value });
