import type { AttributeValue, ChangeEvent, ChangeVersion } from '../../change/change-event.js';
import { assertLogicalName } from '../../change/identifiers.js';
import { parseLosslessJson } from './lossless-json.js';
import {
  assertValid,
  type DataverseEntity,
  type KeyValue,
  type RemoteExecutionContext,
  validateContext,
  validateEntity,
  validateEntityReference,
  validateEntityReferenceList,
  validateRelationship,
} from './schema.js';
import { dcjsDateToIso, entityReference, invalid, toAttributeValue, type ValueReader } from './values.js';

/** What one webhook POST from Dataverse (webhook or Service Endpoint: the same RemoteExecutionContext) says. */
export interface ParsedWebhook {
  organizationId: string;
  correlationId: string;
  messageName: string;
  primaryEntityName: string;
  /** Usually one; an Associate/Disassociate gives one per related record; none when `ignored`. */
  changes: ChangeEvent[];
  /** Set when the payload is valid but carries nothing to export (another message, a pre-operation step). */
  ignored?: string;
  /** Values that were skipped (image bytes, unknown types), for the log. */
  warnings: string[];
}

export interface ParseWebhookOptions {
  /**
   * The two entities of an N:N relationship in metadata order (Entity1LogicalName, Entity2LogicalName), so the
   * intersect key reads `<entity1id>:<entity2id>`. Without it the pair is ordered by logical name, then id.
   */
  relationshipEntities?: (relationship: string) => readonly [string, string] | undefined;
}

const EXPORTED_MESSAGES = new Set(['Create', 'Update', 'Delete', 'Associate', 'Disassociate']);
const SIZE_EXCEEDED_HEADER = 'x-ms-dynamics-msg-size-exceeded';
const EMPTY_GUID = '00000000-0000-0000-0000-000000000000';
/** The PostOperation stage: earlier stages run before the write and may be rolled back. */
const POST_OPERATION = 40;

/**
 * Parses the RemoteExecutionContext Dataverse POSTs into normalized {@link ChangeEvent}s.
 * Throws AppError MALFORMED_JSON, VALIDATION_FAILED or ILLEGAL_IDENTIFIER, each naming the field.
 */
export function parseWebhook(
  body: string,
  headers: Record<string, string | undefined>,
  options: ParseWebhookOptions = {},
): ParsedWebhook {
  const json = parseLosslessJson(body);
  const context = assertValid(validateContext, json.value, '');
  const warnings: string[] = [];
  const parsed: ParsedWebhook = {
    organizationId: context.OrganizationId.toLowerCase(),
    correlationId: context.CorrelationId.toLowerCase(),
    messageName: context.MessageName,
    primaryEntityName: context.PrimaryEntityName,
    changes: [],
    warnings,
  };
  if (!EXPORTED_MESSAGES.has(context.MessageName)) {
    parsed.ignored = `message ${context.MessageName} is not exported (only Create, Update, Delete, Associate, Disassociate)`;
    return parsed;
  }
  if (context.Stage !== undefined && context.Stage < POST_OPERATION) {
    parsed.ignored = `step stage ${context.Stage} runs before the operation is committed; register the step at PostOperation (40)`;
    return parsed;
  }
  const step: Step = {
    context,
    reader: { numberText: json.numberText, warn: (message) => warnings.push(message) },
    sizeExceeded: headerIsSet(headers, SIZE_EXCEEDED_HEADER),
    base: {
      organizationId: parsed.organizationId,
      operationTime: dcjsDateToIso(context.OperationCreatedOn) ?? failDate(context.OperationCreatedOn),
      correlationId: parsed.correlationId,
      source: 'webhook',
      messageName: context.MessageName,
    },
  };
  switch (context.MessageName) {
    case 'Create':
    case 'Update':
      parsed.changes.push(upsertChange(step));
      break;
    case 'Delete':
      parsed.changes.push(deleteChange(step));
      break;
    default: {
      const changes = relationshipChanges(step, options);
      if (changes) parsed.changes.push(...changes);
      else
        parsed.ignored = `${context.MessageName} arrived without its InputParameters (payload over 256 KB); the relationship cannot be known`;
    }
  }
  return parsed;
}

interface Step {
  context: RemoteExecutionContext;
  reader: ValueReader;
  sizeExceeded: boolean;
  base: Pick<ChangeEvent, 'organizationId' | 'operationTime' | 'correlationId' | 'source' | 'messageName'>;
}

function upsertChange(step: Step): ChangeEvent {
  const { context } = step;
  const target = inputParameter(context, 'Target');
  const targetImage: Image | undefined =
    target === undefined
      ? undefined
      : { entity: assertValid(validateEntity, target, 'InputParameters.Target'), path: 'InputParameters.Target' };
  const entity = primaryEntity(context, targetImage?.entity.LogicalName, 'InputParameters.Target.LogicalName');
  const recordId = recordIdOf(context, targetImage?.entity.Id);
  const postImages = images(context, 'PostEntityImages', entity, recordId);

  // The post-image is the row after the operation: it wins over the Target where both name an attribute.
  // A partial post-image (only some columns registered) still leaves the Target's other columns in place.
  const sources = targetImage ? [targetImage, ...postImages] : postImages;
  const attributes: Record<string, AttributeValue> = {};
  for (const source of sources) readAttributes(source, step.reader, attributes);
  const rowVersion = [...postImages, ...(targetImage ? [targetImage] : [])]
    .map((source) => versionOf(source, step.reader))
    .find((v) => v !== undefined);
  const modifiedOn = attributes.modifiedon?.type === 'datetime' ? attributes.modifiedon.value : undefined;
  delete attributes.versionnumber; // carried as version.rowVersion

  const hasAttributes = Object.keys(attributes).length > 0;
  const needsReread = step.sizeExceeded || !targetImage || targetImage.entity.Attributes.length === 0;
  return {
    ...step.base,
    entity,
    recordId,
    operation: 'upsert',
    version: versionFrom(rowVersion, modifiedOn),
    ...(hasAttributes || !needsReread ? { attributes } : {}),
    ...(needsReread ? { needsReread: true } : {}),
  };
}

function deleteChange(step: Step): ChangeEvent {
  const { context } = step;
  const target = inputParameter(context, 'Target');
  const ref = target === undefined ? undefined : assertValid(validateEntityReference, target, 'InputParameters.Target');
  const entity = primaryEntity(context, ref?.LogicalName, 'InputParameters.Target.LogicalName');
  const recordId = recordIdOf(context, ref?.Id);
  // The pre-image's versionnumber is the version of the row that was deleted (docs/architecture.md §5: the sink applies a
  // delete whose row version is not older than the stored one).
  const preVersion = images(context, 'PreEntityImages', entity, recordId)
    .map((image) => versionOf(image, step.reader))
    .find((v) => v !== undefined);
  return {
    ...step.base,
    entity,
    recordId,
    operation: 'delete',
    version: versionFrom(preVersion, step.base.operationTime),
  };
}

function relationshipChanges(step: Step, options: ParseWebhookOptions): ChangeEvent[] | undefined {
  const { context } = step;
  const target = inputParameter(context, 'Target');
  const relationship = inputParameter(context, 'Relationship');
  const related = inputParameter(context, 'RelatedEntities');
  if (target === undefined && relationship === undefined && related === undefined) return undefined;

  const schemaName = assertValid(validateRelationship, relationship, 'InputParameters.Relationship').SchemaName;
  const name = schemaName.toLowerCase();
  assertLogicalName(name, 'InputParameters.Relationship.SchemaName');
  assertValid(validateEntityReference, target, 'InputParameters.Target');
  const one = entityReference(target as Record<string, unknown>, 'InputParameters.Target');
  const others = assertValid(validateEntityReferenceList, related, 'InputParameters.RelatedEntities');
  const operation = context.MessageName === 'Associate' ? 'associate' : 'disassociate';

  return others.map((ref, i) => {
    const other = entityReference(ref as Record<string, unknown>, `InputParameters.RelatedEntities[${i}]`);
    const [entity1, entity2] = orderPair(name, one, other, options);
    return {
      ...step.base,
      entity: name,
      recordId: `${entity1.id}:${entity2.id}`,
      operation,
      version: { modifiedOn: step.base.operationTime },
      relationship: { name, entity1, entity2 },
    } satisfies ChangeEvent;
  });
}

type Ref = { id: string; logicalName: string };

function orderPair(name: string, a: Ref, b: Ref, options: ParseWebhookOptions): [Ref, Ref] {
  const declared = options.relationshipEntities?.(name);
  if (declared && declared[0] !== declared[1]) {
    if (a.logicalName === declared[0] && b.logicalName === declared[1]) return [a, b];
    if (b.logicalName === declared[0] && a.logicalName === declared[1]) return [b, a];
  }
  // A stable order, so associating from either side yields one key.
  const aFirst = a.logicalName < b.logicalName || (a.logicalName === b.logicalName && a.id <= b.id);
  return aFirst ? [a, b] : [b, a];
}

function primaryEntity(context: RemoteExecutionContext, targetName: string | undefined, field: string): string {
  if (targetName === undefined) {
    assertLogicalName(context.PrimaryEntityName, 'PrimaryEntityName');
    return context.PrimaryEntityName;
  }
  assertLogicalName(targetName, field);
  if (targetName !== context.PrimaryEntityName) {
    throw invalid(field, `must match PrimaryEntityName ${JSON.stringify(context.PrimaryEntityName)}`, targetName);
  }
  return targetName;
}

function recordIdOf(context: RemoteExecutionContext, targetId: string | undefined): string {
  const id = [context.PrimaryEntityId, targetId].find((candidate) => candidate && candidate !== EMPTY_GUID);
  if (!id) throw invalid('PrimaryEntityId', 'must name the record (it is the empty GUID)', context.PrimaryEntityId);
  return id.toLowerCase();
}

/** The value of InputParameters[key], or undefined when absent (or stripped from an oversized payload). */
function inputParameter(context: RemoteExecutionContext, key: string): unknown {
  const parameters = context.InputParameters ?? [];
  for (let i = 0; i < parameters.length; i++) if (parameters[i].key === key) return parameters[i].value;
  return undefined;
}

interface Image {
  entity: DataverseEntity;
  path: string;
}

/** The images of this record (several may be registered; all describe the same moment). */
function images(
  context: RemoteExecutionContext,
  member: 'PreEntityImages' | 'PostEntityImages',
  entity: string,
  recordId: string,
): Image[] {
  const out: Image[] = [];
  (context[member] ?? []).forEach((item, i) => {
    const path = `${member}[${i}].value`;
    const image = assertValid(validateEntity, item.value, path);
    assertLogicalName(image.LogicalName, `${path}.LogicalName`);
    if (image.LogicalName !== entity) return;
    if (image.Id !== undefined && image.Id !== EMPTY_GUID && image.Id.toLowerCase() !== recordId) return;
    out.push({ entity: image, path });
  });
  return out;
}

function readAttributes(image: Image, reader: ValueReader, into: Record<string, AttributeValue>): void {
  const { entity, path } = image;
  const attributes: KeyValue[] = entity.Attributes;
  for (let i = 0; i < attributes.length; i++) {
    const { key, value } = attributes[i];
    assertLogicalName(key, `${path}.Attributes[${i}].key`);
    // Warnings name the attribute, so a skipped column can be found without counting positions.
    const named: ValueReader = {
      numberText: (v) => reader.numberText(v),
      warn: (m) => reader.warn(`${m} (attribute ${key})`),
    };
    const converted = toAttributeValue(value, `${path}.Attributes[${i}].value`, named);
    if (converted) into[key] = converted;
  }
}

/** The entity's `versionnumber` attribute, else its RowVersion (both decimal strings of a 64-bit integer). */
function versionOf(image: Image, reader: ValueReader): string | undefined {
  const { entity, path } = image;
  const i = entity.Attributes.findIndex((a) => a.key === 'versionnumber');
  const v = i < 0 ? undefined : toAttributeValue(entity.Attributes[i].value, `${path}.Attributes[${i}].value`, reader);
  if (v?.type === 'int' && v.value >= 0) return String(v.value);
  if (v?.type === 'bigint' && !v.value.startsWith('-')) return v.value;
  return entity.RowVersion ?? undefined;
}

function versionFrom(rowVersion: string | undefined, modifiedOn: string | undefined): ChangeVersion {
  const version: ChangeVersion = {};
  if (rowVersion !== undefined) version.rowVersion = rowVersion;
  if (modifiedOn !== undefined) version.modifiedOn = modifiedOn;
  return version;
}

/** Dataverse sends the header only when it stripped the payload; its value carries no meaning. */
function headerIsSet(headers: Record<string, string | undefined>, name: string): boolean {
  for (const key in headers) {
    if (key.length !== name.length || key.toLowerCase() !== name) continue;
    const value = headers[key];
    if (value === undefined) continue;
    const v = value.trim().toLowerCase();
    return v !== 'false' && v !== '0';
  }
  return false;
}

function failDate(text: string): never {
  throw invalid('OperationCreatedOn', 'must be a /Date(ms)/ time', text);
}
