/**
 * Dataverse entity metadata → what the sink needs: the rows of DES's metadata side tables, and the column
 * specs that give each attribute its declared SQL type (length, precision) before any row arrives.
 */
import {
  type AttributeMetadata,
  type EntityMetadata as DataverseEntityMetadata,
  exportedAttributes,
} from '../dataverse/webapi/metadata.js';
import type { AttributeSpec, AttributeSpecKind, EntityMetadata as SinkEntityMetadata } from '../sink/index.js';
import { isReservedAttribute } from '../sink/table-model.js';

/** Dataverse's AttributeTypeCode values, as DES wrote them into AttributeMetadata. */
const ATTRIBUTE_TYPE_CODES: Record<string, number> = {
  Boolean: 0,
  Customer: 1,
  DateTime: 2,
  Decimal: 3,
  Double: 4,
  Integer: 5,
  Lookup: 6,
  Memo: 7,
  Money: 8,
  Owner: 9,
  PartyList: 10,
  Picklist: 11,
  State: 12,
  Status: 13,
  String: 14,
  Uniqueidentifier: 15,
  CalendarRules: 16,
  Virtual: 17,
  BigInt: 18,
  ManagedProperty: 19,
  EntityName: 20,
};

/** The language of the labels the Web API returns (UserLocalizedLabel); DES stored 1033 for English. */
const LABEL_LANGUAGE = 1033;

const label = (text: string) => ({
  isUserLocalizedLabel: true,
  localizedLabelLanguageCode: LABEL_LANGUAGE,
  localizedLabel: text,
});

/** The attributes that become columns of their own (system columns such as `versionnumber` excluded). */
function columnAttributes(metadata: DataverseEntityMetadata): AttributeMetadata[] {
  return exportedAttributes(metadata).filter((a) => !isReservedAttribute(a.logicalName));
}

export function toSinkMetadata(metadata: DataverseEntityMetadata): SinkEntityMetadata {
  const local: NonNullable<SinkEntityMetadata['optionSets']> = [];
  const global: NonNullable<SinkEntityMetadata['globalOptionSets']> = [];
  for (const [attribute, set] of Object.entries(metadata.optionSets)) {
    for (const option of set.options) {
      if (set.isGlobal) global.push({ optionSetName: set.name, option: option.value, ...label(option.label) });
      else local.push({ optionSetName: attribute, option: option.value, ...label(option.label) });
    }
  }
  const attributes = columnAttributes(metadata);
  return {
    entity: metadata.logicalName,
    optionSets: local,
    globalOptionSets: global,
    states: metadata.stateOptions.map((o) => ({ state: o.value, ...label(o.label) })),
    statuses: metadata.statusOptions.map((o) => ({ state: o.state, status: o.value, ...label(o.label) })),
    targets: attributes.flatMap((a) =>
      a.valueType === 'lookup'
        ? (a.targets ?? []).map((target) => ({
            attributeName: a.logicalName,
            referencedEntity: target,
            // Dataverse names a table's key `<table>id`; the metadata of every target is not worth a request.
            referencedAttribute: `${target}id`,
          }))
        : [],
    ),
    attributes: attributes.map((a) => ({
      attributeName: a.logicalName,
      attributeType: a.attributeType,
      attributeTypeCode: ATTRIBUTE_TYPE_CODES[a.attributeType] ?? ATTRIBUTE_TYPE_CODES.Virtual,
      ...(a.precision !== undefined ? { precision: a.precision } : {}),
      ...(a.maxLength !== undefined ? { maxLength: a.maxLength } : {}),
    })),
  };
}

/** Column specs for the sink, so a column gets its declared type even when the first rows hold nulls. */
export function attributeSpecs(metadata: DataverseEntityMetadata): AttributeSpec[] {
  const specs: AttributeSpec[] = [];
  for (const a of columnAttributes(metadata)) {
    const kind = specKind(a);
    if (!kind) continue;
    specs.push({
      name: a.logicalName,
      kind,
      ...(a.precision !== undefined ? { precision: a.precision } : {}),
      ...(a.scale !== undefined ? { scale: a.scale } : {}),
      ...(a.maxLength !== undefined && kind === 'string' ? { maxLength: a.maxLength } : {}),
    });
  }
  return specs;
}

function specKind(a: AttributeMetadata): AttributeSpecKind | undefined {
  if (a.attributeType === 'State') return 'state';
  if (a.attributeType === 'Status') return 'status';
  if (a.attributeType === 'Memo') return 'memo';
  return a.valueType === 'null' ? undefined : a.valueType;
}
