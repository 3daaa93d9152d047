/**
 * A ChangeEvent as the sink applies it: one row of one table, either written (upsert) or removed (delete).
 * Associate/Disassociate become upserts/deletes of a row in the relationship's table, so they share the
 * version guard, the tombstones and the set-based path.
 */
import { createHash } from 'node:crypto';
import type { AttributeValue, ChangeEvent, ChangeVersion } from '../change/change-event.js';
import { assertLogicalName } from '../change/identifiers.js';
import { isCanonicalUtc } from '../change/iso-time.js';
import { AppError } from '../errors.js';
import { isGuid, isReservedAttribute } from './table-model.js';

export interface RecordChange {
  /** Position in the caller's batch: outcomes come back in this order. */
  index: number;
  /** Entity logical name, or the relationship name for N:N rows. */
  entity: string;
  /** Lower-case GUID of the row. */
  id: string;
  kind: 'upsert' | 'delete';
  /** The guard's version: a delete's `modifiedOn` is the operation time when Dataverse sent none. */
  version: ChangeVersion;
  /** Upserts only; reserved names (`versionnumber`, `modifiedon`, …) removed. */
  attributes: Record<string, AttributeValue>;
  /** Entity deletes go to DeleteLog; disassociations do not (their ids are derived). */
  logsDelete: boolean;
}

/** Validates a change and turns it into the row change the sink writes; throws AppError for a bad one. */
export function toRecordChange(change: ChangeEvent, index: number): RecordChange {
  if (change.needsReread) {
    throw new AppError(
      'VALIDATION_FAILED',
      `change to ${change.entity} ${change.recordId} carries no payload and must be re-read from Dataverse before it is applied`,
      { details: [{ field: 'needsReread', message: 'must be re-read first', value: change.recordId }] },
    );
  }
  if (change.operation === 'associate' || change.operation === 'disassociate') return relationshipRow(change, index);
  if (!knownNames.has(change.entity)) {
    assertLogicalName(change.entity, 'entity');
    rememberName(change.entity);
  }
  const id = assertRecordId(change.recordId, change.entity);
  const attributes: Record<string, AttributeValue> = {};
  let versionFromAttributes: ChangeVersion = {};
  const given = change.attributes ?? {};
  for (const name of Object.keys(given)) {
    const value = given[name];
    let reserved = knownNames.get(name);
    if (reserved === undefined) {
      assertLogicalName(name, `attribute of ${change.entity}`);
      reserved = rememberName(name);
    }
    if (name === 'versionnumber' && (value.type === 'bigint' || value.type === 'int')) {
      versionFromAttributes = { ...versionFromAttributes, rowVersion: String(value.value) };
    } else if (name === 'modifiedon' && value.type === 'datetime') {
      versionFromAttributes = { ...versionFromAttributes, modifiedOn: value.value };
    }
    if (!reserved) attributes[name] = value;
  }
  const version = checkedVersion(
    {
      rowVersion: change.version?.rowVersion ?? versionFromAttributes.rowVersion,
      modifiedOn: change.version?.modifiedOn ?? versionFromAttributes.modifiedOn,
    },
    change,
  );
  if (change.operation === 'delete') {
    return {
      index,
      entity: change.entity,
      id,
      kind: 'delete',
      version: checkedVersion(
        { rowVersion: version.rowVersion, modifiedOn: version.modifiedOn ?? change.operationTime },
        change,
      ),
      attributes: {},
      logsDelete: true,
    };
  }
  return { index, entity: change.entity, id, kind: 'upsert', version, attributes, logsDelete: false };
}

/**
 * Entity and attribute names already found legal, each with whether it is a reserved attribute name: a batch repeats the same few
 * names thousands of times. Bounded, so a stream of ever new names cannot grow it without end.
 */
const knownNames = new Map<string, boolean>();
const KNOWN_NAMES_MAX = 10_000;

/** Remembers a legal name; returns whether it is reserved. */
function rememberName(name: string): boolean {
  if (knownNames.size >= KNOWN_NAMES_MAX) knownNames.clear();
  const reserved = isReservedAttribute(name);
  knownNames.set(name, reserved);
  return reserved;
}

/** A row version must be a 64-bit unsigned decimal and a time must parse: the guard compares them in SQL. */
function checkedVersion(version: ChangeVersion, change: ChangeEvent): ChangeVersion {
  const out: ChangeVersion = {};
  if (version.rowVersion !== undefined) {
    const text = String(version.rowVersion);
    // Only a 19-digit number can pass the largest bigint; shorter ones skip the BigInt.
    if (!/^\d{1,19}$/.test(text) || (text.length === 19 && BigInt(text) > 9223372036854775807n)) {
      throw new AppError(
        'VALIDATION_FAILED',
        `row version ${JSON.stringify(version.rowVersion)} of ${change.entity} ${change.recordId} is not a 64-bit version number`,
        { details: [{ field: 'version.rowVersion', message: 'must be a decimal integer', value: version.rowVersion }] },
      );
    }
    out.rowVersion = text;
  }
  if (version.modifiedOn !== undefined) {
    if (!isCanonicalUtc(version.modifiedOn) && Number.isNaN(Date.parse(version.modifiedOn))) {
      throw new AppError(
        'VALIDATION_FAILED',
        `time ${JSON.stringify(version.modifiedOn)} of ${change.entity} ${change.recordId} is not an ISO-8601 time`,
        { details: [{ field: 'version.modifiedOn', message: 'must be an ISO-8601 time', value: version.modifiedOn }] },
      );
    }
    out.modifiedOn = version.modifiedOn;
  }
  return out;
}

function assertRecordId(id: string, entity: string): string {
  if (typeof id !== 'string' || !isGuid(id)) {
    throw new AppError('VALIDATION_FAILED', `record id ${JSON.stringify(id)} of ${entity} is not a GUID`, {
      details: [{ field: 'recordId', message: 'must be a GUID', value: id }],
    });
  }
  return id.toLowerCase();
}

/**
 * An N:N row: `<entity1>id`, `<entity2>id` (`<entity>idone`/`<entity>idtwo` when both sides are the same
 * entity, as Dataverse names them), keyed by a GUID derived from the pair so the row has one stable id.
 */
function relationshipRow(change: ChangeEvent, index: number): RecordChange {
  const rel = change.relationship;
  if (!rel) {
    throw new AppError('VALIDATION_FAILED', `${change.operation} of ${change.entity} carries no relationship`, {
      details: [{ field: 'relationship', message: 'required for associate/disassociate' }],
    });
  }
  assertLogicalName(rel.name, 'relationship');
  assertLogicalName(rel.entity1.logicalName, 'relationship entity1');
  assertLogicalName(rel.entity2.logicalName, 'relationship entity2');
  const id1 = assertRecordId(rel.entity1.id, rel.entity1.logicalName);
  const id2 = assertRecordId(rel.entity2.id, rel.entity2.logicalName);
  const [col1, col2] = relationshipColumns(rel.entity1.logicalName, rel.entity2.logicalName);
  const version = checkedVersion(
    { rowVersion: change.version?.rowVersion, modifiedOn: change.version?.modifiedOn ?? change.operationTime },
    change,
  );
  return {
    index,
    entity: rel.name,
    id: pairId(id1, id2),
    kind: change.operation === 'associate' ? 'upsert' : 'delete',
    version,
    attributes:
      change.operation === 'associate'
        ? { [col1]: { type: 'guid', value: id1 }, [col2]: { type: 'guid', value: id2 } }
        : {},
    logsDelete: false,
  };
}

export function relationshipColumns(entity1: string, entity2: string): [string, string] {
  if (entity1 === entity2) return [`${entity1}idone`, `${entity1}idtwo`];
  return [`${entity1}id`, `${entity2}id`];
}

/** A name-based (v5-style) GUID for the pair, so associate and disassociate address the same row. */
export function pairId(id1: string, id2: string): string {
  const h = createHash('sha1').update(`${id1}:${id2}`).digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
