/**
 * Web API rows → {@link ChangeEvent}s. A row of an entity set (or of a delta) is typed by the entity's
 * attribute metadata: lookups come from `_x_value` plus the `lookuplogicalname` annotation, money and
 * decimals keep their exact digits, date-times are normalized to ISO-8601 UTC like the webhook path's.
 * A `$deletedEntity` row becomes a delete.
 */
import type { AttributeValue, ChangeEvent } from '../../change/change-event.js';
import { isCanonicalUtc } from '../../change/iso-time.js';
import { AppError } from '../../errors.js';
import { decimalText } from './json.js';
import type { AttributeMetadata, EntityMetadata, RelationshipMetadata } from './metadata.js';

export const LOOKUP_LOGICAL_NAME = 'Microsoft.Dynamics.CRM.lookuplogicalname';

/** The one annotation we ask for: without it a Customer or Owner lookup cannot say what it points to. */
export const INCLUDE_ANNOTATIONS = `odata.include-annotations="${LOOKUP_LOGICAL_NAME}"`;

export interface RowContext {
  metadata: EntityMetadata;
  /** The attributes a row may carry (the selected ones). */
  attributes: readonly AttributeMetadata[];
  organizationId: string;
  source: ChangeEvent['source'];
  correlationId: string;
  /** When the page was read (ISO): the version of a delete, which Dataverse does not date. */
  readTime: string;
}

type WebApiRow = Record<string, unknown>;

/** True for a `$deletedEntity` entry of a delta page. */
export function isDeletedEntity(row: WebApiRow): boolean {
  const context = row['@odata.context'];
  return (typeof context === 'string' && context.endsWith('/$deletedEntity')) || row.reason === 'deleted';
}

/** Lookup property → its annotation's property: built once per column name instead of per row. */
const annotationKeys = new Map<string, string>();
const MAX_ANNOTATION_KEYS = 10_000;

function annotationKeyOf(webApiName: string): string {
  let key = annotationKeys.get(webApiName);
  if (key === undefined) {
    if (annotationKeys.size >= MAX_ANNOTATION_KEYS) annotationKeys.clear();
    key = `${webApiName}@${LOOKUP_LOGICAL_NAME}`;
    annotationKeys.set(webApiName, key);
  }
  return key;
}

/** One row of a page or delta → its ChangeEvent. */
export function toChangeEvent(row: WebApiRow, ctx: RowContext): ChangeEvent {
  const { metadata } = ctx;
  if (isDeletedEntity(row)) {
    const id = guidOf(row.id, `${metadata.entitySetName}/$deletedEntity.id`);
    return {
      organizationId: ctx.organizationId,
      entity: metadata.logicalName,
      recordId: id,
      operation: 'delete',
      // A $deletedEntity entry carries no version: the time of the read is later than the delete (docs/architecture.md §5).
      version: { modifiedOn: ctx.readTime },
      operationTime: ctx.readTime,
      correlationId: ctx.correlationId,
      source: ctx.source,
      messageName: 'Delete',
    };
  }
  const id = row[metadata.primaryIdAttribute];
  const recordId =
    (typeof id === 'string' ? plainGuid(id) : undefined) ??
    guidOf(id, `${metadata.entitySetName}.${metadata.primaryIdAttribute}`);
  const attributes: Record<string, AttributeValue> = {};
  for (const attribute of ctx.attributes) {
    const raw = row[attribute.webApiName];
    // JSON holds no undefined: undefined means absent, unless the name is one every object inherits.
    if (raw === undefined && !(attribute.webApiName in row)) continue;
    attributes[attribute.logicalName] = readValue(attribute, raw, row, metadata);
  }
  const rowVersion = versionOf(row);
  const modified = attributes.modifiedon;
  const modifiedOn = modified?.type === 'datetime' ? modified.value : undefined;
  const version: ChangeEvent['version'] = {};
  if (rowVersion !== undefined) version.rowVersion = rowVersion;
  if (modifiedOn !== undefined) version.modifiedOn = modifiedOn;
  return {
    organizationId: ctx.organizationId,
    entity: metadata.logicalName,
    recordId,
    operation: 'upsert',
    version,
    operationTime: modifiedOn ?? ctx.readTime,
    attributes,
    correlationId: ctx.correlationId,
    source: ctx.source,
  };
}

/** `versionnumber` when selected, else the weak ETag (`W/"123"`), which Dataverse sets to the same number. */
function versionOf(row: WebApiRow): string | undefined {
  const v = row.versionnumber;
  if (typeof v === 'number' || (typeof v === 'string' && v !== '')) return decimalText(v);
  const etag = row['@odata.etag'];
  const m = typeof etag === 'string' ? /^W\/"(\d+)"$/.exec(etag) : null;
  return m ? m[1] : undefined;
}

const GUID = /^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?$/;

/**
 * A bare 36-character GUID in lower case, checked without a regex (the shape nearly every id arrives in);
 * undefined for anything else, which the regex then judges.
 */
function plainGuid(value: string): string | undefined {
  if (value.length !== 36) return undefined;
  let upper = false;
  for (let i = 0; i < 36; i++) {
    const c = value.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 0x2d /* - */) return undefined;
    } else if (c >= 0x41 && c <= 0x46) {
      upper = true;
    } else if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) {
      return undefined;
    }
  }
  return upper ? value.toLowerCase() : value;
}

function guidOf(value: unknown, field: string): string {
  const m = typeof value === 'string' ? GUID.exec(value) : null;
  if (!m) throw unexpected(field, value, 'a GUID');
  return m[1].toLowerCase();
}

function unexpected(field: string, value: unknown, expected: string): AppError {
  return new AppError(
    'DATAVERSE_REQUEST_FAILED',
    `Dataverse returned ${JSON.stringify(value)} for ${field}, expected ${expected}; check the attribute's metadata.`,
    { details: [{ field, message: `expected ${expected}`, value }] },
  );
}

/**
 * What `new Date(Date.parse(raw)).toISOString()` answers, worked out from the text for the shapes Dataverse
 * prints (`yyyy-MM-dd`, `…THH:mm:ssZ`, `…THH:mm:ss.fffZ`) when every field is in range; undefined otherwise
 * (then Date decides).
 */
function canonicalDateTime(raw: string): string | undefined {
  const canonical =
    raw.length === 10
      ? `${raw}T00:00:00.000Z`
      : raw.length === 20 && raw.charCodeAt(19) === 0x5a /* Z */
        ? `${raw.slice(0, 19)}.000Z`
        : raw;
  return isCanonicalUtc(canonical) ? canonical : undefined;
}

/** One attribute of a row, typed by its metadata. */
export function toAttributeValue(
  attribute: AttributeMetadata,
  row: WebApiRow,
  metadata: EntityMetadata,
): AttributeValue {
  return readValue(attribute, row[attribute.webApiName], row, metadata);
}

/** `entity.attribute`, for errors: built only when one is thrown, not per value. */
function fieldName(metadata: EntityMetadata, attribute: AttributeMetadata): string {
  return `${metadata.logicalName}.${attribute.logicalName}`;
}

function mismatch(metadata: EntityMetadata, attribute: AttributeMetadata, raw: unknown, expected: string): AppError {
  return unexpected(fieldName(metadata, attribute), raw, expected);
}

/** `raw`, the row's value of `attribute`, typed. */
function readValue(
  attribute: AttributeMetadata,
  raw: unknown,
  row: WebApiRow,
  metadata: EntityMetadata,
): AttributeValue {
  if (raw === null || raw === undefined) return { type: 'null' };
  switch (attribute.valueType) {
    case 'string':
      if (typeof raw !== 'string') throw mismatch(metadata, attribute, raw, 'text');
      return { type: 'string', value: raw };
    case 'int':
      if (typeof raw !== 'number' || !Number.isInteger(raw)) throw mismatch(metadata, attribute, raw, 'an integer');
      return { type: 'int', value: raw };
    case 'bigint':
    case 'decimal':
    case 'money':
      if (typeof raw !== 'number' && typeof raw !== 'string') throw mismatch(metadata, attribute, raw, 'a number');
      return { type: attribute.valueType, value: decimalText(raw) };
    case 'float': {
      const n = typeof raw === 'string' ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isFinite(n)) throw mismatch(metadata, attribute, raw, 'a number');
      return { type: 'float', value: n };
    }
    case 'boolean':
      if (typeof raw !== 'boolean') throw mismatch(metadata, attribute, raw, 'true or false');
      return { type: 'boolean', value: raw };
    case 'datetime': {
      if (typeof raw === 'string') {
        const canonical = canonicalDateTime(raw);
        if (canonical !== undefined) return { type: 'datetime', value: canonical };
      }
      // Date-only columns arrive as `yyyy-MM-dd`, which parses as midnight UTC.
      const ms = typeof raw === 'string' ? Date.parse(raw) : Number.NaN;
      if (Number.isNaN(ms)) throw mismatch(metadata, attribute, raw, 'an ISO-8601 date-time');
      return { type: 'datetime', value: new Date(ms).toISOString() };
    }
    case 'guid':
      return {
        type: 'guid',
        value: (typeof raw === 'string' ? plainGuid(raw) : undefined) ?? guidOf(raw, fieldName(metadata, attribute)),
      };
    case 'lookup': {
      const id = (typeof raw === 'string' ? plainGuid(raw) : undefined) ?? guidOf(raw, fieldName(metadata, attribute));
      const annotated = row[annotationKeyOf(attribute.webApiName)];
      const entityType =
        typeof annotated === 'string' && annotated
          ? annotated
          : attribute.targets?.length === 1
            ? attribute.targets[0]
            : undefined;
      if (!entityType) {
        const field = fieldName(metadata, attribute);
        throw new AppError(
          'DATAVERSE_REQUEST_FAILED',
          `Lookup ${field} = ${id} came without its @${LOOKUP_LOGICAL_NAME} annotation and can point to ${attribute.targets?.join(', ') || 'several tables'}; request the annotation with Prefer: ${INCLUDE_ANNOTATIONS}.`,
          { details: [{ field, message: 'missing lookuplogicalname annotation', value: id }] },
        );
      }
      return { type: 'lookup', value: id, entityType };
    }
    case 'optionset':
      if (typeof raw !== 'number' || !Number.isInteger(raw))
        throw mismatch(metadata, attribute, raw, 'an option value');
      return { type: 'optionset', value: raw };
    case 'multiselect': {
      // The Web API prints a multi-select as "1,2".
      const values = String(raw)
        .split(',')
        .filter((part) => part.trim() !== '')
        .map(Number);
      if (values.some((v) => !Number.isInteger(v)))
        throw mismatch(metadata, attribute, raw, 'comma-separated option values');
      return values.length ? { type: 'multiselect', value: values } : { type: 'null' };
    }
    default:
      throw mismatch(metadata, attribute, raw, `an exportable attribute (type ${attribute.attributeType})`);
  }
}

/**
 * A row of an N:N intersect entity, read as an upsert, → the `associate` change the webhook path produces
 * for the same link (entity = relationship name, record id `<entity1 id>:<entity2 id>`), so an initial copy
 * of a relationship table and the live stream write the same rows. Deletes carry only the intersect row's
 * id, not the pair, and stay as they are.
 */
export function toAssociateEvent(event: ChangeEvent, relationship: RelationshipMetadata): ChangeEvent {
  if (event.operation !== 'upsert') return event;
  const idOf = (attribute: string) => {
    const v = event.attributes?.[attribute];
    if (v?.type !== 'guid' && v?.type !== 'lookup') throw unexpected(`${event.entity}.${attribute}`, v, 'a GUID');
    return v.value;
  };
  const entity1 = { logicalName: relationship.entity1LogicalName, id: idOf(relationship.entity1IntersectAttribute) };
  const entity2 = { logicalName: relationship.entity2LogicalName, id: idOf(relationship.entity2IntersectAttribute) };
  const name = relationship.schemaName.toLowerCase();
  const { attributes: _attributes, ...rest } = event;
  return {
    ...rest,
    entity: name,
    recordId: `${entity1.id}:${entity2.id}`,
    operation: 'associate',
    relationship: { name, entity1, entity2 },
  };
}
