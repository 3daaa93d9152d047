/**
 * Table definitions as the exporter needs them, read from the Web API's EntityDefinitions and its typed
 * attribute casts. The JSON shapes below are the Web API's; the `…Metadata` interfaces are ours.
 */
import type { AttributeType } from '../../change/change-event.js';

export interface OptionMetadata {
  value: number;
  label: string;
}

export interface StateOptionMetadata extends OptionMetadata {
  defaultStatus?: number;
  invariantName?: string;
}

export interface StatusOptionMetadata extends OptionMetadata {
  /** The state this status belongs to. */
  state: number;
}

export interface OptionSetMetadata {
  name: string;
  isGlobal: boolean;
  options: OptionMetadata[];
}

export interface AttributeMetadata {
  logicalName: string;
  schemaName: string;
  /** Dataverse's AttributeType: `String`, `Money`, `Lookup`, `Customer`, `Virtual`, … */
  attributeType: string;
  /** Dataverse's AttributeTypeName.Value: `StringType`, `MultiSelectPicklistType`, … */
  attributeTypeName: string;
  /** The ChangeEvent value type this attribute exports as; undefined when it is not exported. */
  valueType: AttributeType | undefined;
  /** The property holding the value in Web API rows (`_x_value` for lookups). */
  webApiName: string;
  isValidForRead: boolean;
  isPrimaryId: boolean;
  isPrimaryName: boolean;
  /** Set for columns derived from another (e.g. a lookup's name); these are not exported. */
  attributeOf?: string;
  /** Strings and memos: maximum length in characters. */
  maxLength?: number;
  /** Money/decimal/float: total digits for a SQL decimal (integer digits of the range + scale, ≤ 38). */
  precision?: number;
  /** Money/decimal/float: digits after the decimal point (Dataverse's `Precision`). */
  scale?: number;
  minValue?: number;
  maxValue?: number;
  /** Date-times: `DateOnly` or `DateAndTime`; behaviour `UserLocal`, `DateOnly`, `TimeZoneIndependent`. */
  dateTimeFormat?: string;
  dateTimeBehavior?: string;
  /** Lookups: the entities it can point to. */
  targets?: string[];
  /** Picklists, multi-selects, state and status. */
  optionSet?: OptionSetMetadata;
}

export interface EntityMetadata {
  logicalName: string;
  schemaName: string;
  entitySetName: string;
  primaryIdAttribute: string;
  primaryNameAttribute?: string;
  objectTypeCode: number;
  isIntersect: boolean;
  changeTrackingEnabled?: boolean;
  attributes: AttributeMetadata[];
  /** Picklist and multi-select option sets, keyed by attribute logical name. */
  optionSets: Record<string, OptionSetMetadata>;
  stateOptions: StateOptionMetadata[];
  statusOptions: StatusOptionMetadata[];
}

export interface RelationshipMetadata {
  schemaName: string;
  intersectEntityName: string;
  entity1LogicalName: string;
  entity1IntersectAttribute: string;
  entity1NavigationPropertyName: string;
  entity2LogicalName: string;
  entity2IntersectAttribute: string;
  entity2NavigationPropertyName: string;
}

// ------------------------------------------------------------------ Web API JSON shapes

export interface LabelJson {
  UserLocalizedLabel?: { Label?: string } | null;
  LocalizedLabels?: Array<{ Label?: string; LanguageCode?: number }>;
}

export interface OptionJson {
  Value: number;
  Label?: LabelJson;
  State?: number;
  DefaultStatus?: number;
  InvariantName?: string;
}

export interface OptionSetJson {
  Name?: string;
  IsGlobal?: boolean;
  Options?: OptionJson[];
}

export interface AttributeJson {
  LogicalName: string;
  SchemaName?: string;
  AttributeType?: string;
  AttributeTypeName?: { Value?: string } | null;
  IsValidForRead?: boolean;
  IsPrimaryId?: boolean;
  IsPrimaryName?: boolean;
  AttributeOf?: string | null;
  MaxLength?: number;
  Precision?: number;
  PrecisionSource?: number;
  MinValue?: number | string;
  MaxValue?: number | string;
  Format?: string | null;
  DateTimeBehavior?: { Value?: string } | null;
  Targets?: string[];
  OptionSet?: OptionSetJson | null;
  GlobalOptionSet?: OptionSetJson | null;
}

export interface EntityDefinitionJson {
  LogicalName: string;
  SchemaName?: string;
  EntitySetName: string;
  PrimaryIdAttribute: string;
  PrimaryNameAttribute?: string | null;
  ObjectTypeCode: number;
  IsIntersect?: boolean;
  ChangeTrackingEnabled?: boolean;
  Attributes?: AttributeJson[];
}

/** The typed casts read for an entity, each with the properties that cast adds. */
export const ATTRIBUTE_CASTS = {
  PicklistAttributeMetadata: '$select=LogicalName&$expand=OptionSet,GlobalOptionSet',
  MultiSelectPicklistAttributeMetadata: '$select=LogicalName&$expand=OptionSet,GlobalOptionSet',
  StateAttributeMetadata: '$select=LogicalName&$expand=OptionSet',
  StatusAttributeMetadata: '$select=LogicalName&$expand=OptionSet',
  LookupAttributeMetadata: '$select=LogicalName,Targets',
  MoneyAttributeMetadata: '$select=LogicalName,Precision,PrecisionSource,MinValue,MaxValue',
  DecimalAttributeMetadata: '$select=LogicalName,Precision,MinValue,MaxValue',
  DoubleAttributeMetadata: '$select=LogicalName,Precision,MinValue,MaxValue',
  StringAttributeMetadata: '$select=LogicalName,MaxLength',
  MemoAttributeMetadata: '$select=LogicalName,MaxLength',
  DateTimeAttributeMetadata: '$select=LogicalName,Format,DateTimeBehavior',
} as const;

export const ENTITY_DEFINITION_QUERY =
  '$select=LogicalName,SchemaName,EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute,ObjectTypeCode,IsIntersect,ChangeTrackingEnabled' +
  '&$expand=Attributes($select=LogicalName,SchemaName,AttributeType,AttributeTypeName,IsValidForRead,IsPrimaryId,IsPrimaryName,AttributeOf)';

// ------------------------------------------------------------------ conversion

export function labelText(label: LabelJson | undefined): string {
  return label?.UserLocalizedLabel?.Label ?? label?.LocalizedLabels?.[0]?.Label ?? '';
}

/** The ChangeEvent type for a Dataverse attribute type; undefined for types the Web API row does not carry. */
export function valueTypeOf(attributeType: string, attributeTypeName: string): AttributeType | undefined {
  switch (attributeType) {
    case 'String':
    case 'Memo':
    case 'EntityName':
      return 'string';
    case 'Integer':
      return 'int';
    case 'BigInt':
      return 'bigint';
    case 'Decimal':
      return 'decimal';
    case 'Money':
      return 'money';
    case 'Double':
      return 'float';
    case 'Boolean':
      return 'boolean';
    case 'DateTime':
      return 'datetime';
    case 'Uniqueidentifier':
      return 'guid';
    case 'Lookup':
    case 'Customer':
    case 'Owner':
      return 'lookup';
    case 'Picklist':
    case 'State':
    case 'Status':
      return 'optionset';
    case 'Virtual':
      return attributeTypeName === 'MultiSelectPicklistType' ? 'multiselect' : undefined;
    default:
      return undefined;
  }
}

function toNumber(value: number | string | undefined): number | undefined {
  if (value === undefined || value === null) return undefined;
  const n = typeof value === 'number' ? value : Number(value);
  return Number.isFinite(n) ? n : undefined;
}

function integerDigits(min: number | undefined, max: number | undefined): number {
  const bound = Math.max(Math.abs(min ?? 0), Math.abs(max ?? 0));
  return bound >= 1 ? Math.floor(Math.log10(bound)) + 1 : 1;
}

function optionSetOf(json: AttributeJson): OptionSetMetadata | undefined {
  const set = json.GlobalOptionSet ?? json.OptionSet;
  if (!set) return undefined;
  return {
    name: set.Name ?? json.LogicalName,
    isGlobal: set.IsGlobal === true,
    options: (set.Options ?? []).map((o) => ({ value: o.Value, label: labelText(o.Label) })),
  };
}

/**
 * Builds {@link EntityMetadata} from the entity definition (with its base `Attributes`) and the attribute
 * lists of each typed cast, keyed by cast name.
 */
export function toEntityMetadata(
  definition: EntityDefinitionJson,
  casts: Partial<Record<keyof typeof ATTRIBUTE_CASTS, AttributeJson[]>>,
): EntityMetadata {
  const details = new Map<string, AttributeJson>();
  for (const list of Object.values(casts)) {
    for (const a of list ?? []) details.set(a.LogicalName, { ...details.get(a.LogicalName), ...a });
  }
  const optionSets: Record<string, OptionSetMetadata> = {};
  let stateOptions: StateOptionMetadata[] = [];
  let statusOptions: StatusOptionMetadata[] = [];

  const attributes = (definition.Attributes ?? []).map((base): AttributeMetadata => {
    const extra = details.get(base.LogicalName) ?? ({} as Partial<AttributeJson>);
    const attributeType = base.AttributeType ?? '';
    const attributeTypeName = base.AttributeTypeName?.Value ?? '';
    const valueType = valueTypeOf(attributeType, attributeTypeName);
    const isLookup = valueType === 'lookup';
    const out: AttributeMetadata = {
      logicalName: base.LogicalName,
      schemaName: base.SchemaName ?? base.LogicalName,
      attributeType,
      attributeTypeName,
      valueType,
      webApiName: isLookup ? `_${base.LogicalName}_value` : base.LogicalName,
      isValidForRead: base.IsValidForRead !== false,
      isPrimaryId: base.IsPrimaryId === true,
      isPrimaryName: base.IsPrimaryName === true,
    };
    if (base.AttributeOf) out.attributeOf = base.AttributeOf;
    if (extra.MaxLength !== undefined) out.maxLength = extra.MaxLength;
    if (valueType === 'money' || valueType === 'decimal' || valueType === 'float') {
      const min = toNumber(extra.MinValue);
      const max = toNumber(extra.MaxValue);
      // Money with PrecisionSource 1 (pricing) or 2 (currency) can carry up to 4 decimals.
      const scale = valueType === 'money' && (extra.PrecisionSource ?? 0) !== 0 ? 4 : (extra.Precision ?? 2);
      out.scale = scale;
      out.precision = Math.min(38, integerDigits(min, max) + scale);
      if (min !== undefined) out.minValue = min;
      if (max !== undefined) out.maxValue = max;
    }
    if (extra.Format && valueType === 'datetime') out.dateTimeFormat = extra.Format;
    if (extra.DateTimeBehavior?.Value) out.dateTimeBehavior = extra.DateTimeBehavior.Value;
    if (extra.Targets) out.targets = [...extra.Targets];
    const set = optionSetOf(extra as AttributeJson);
    if (set) {
      out.optionSet = set;
      if (attributeType === 'State') {
        stateOptions = (extra.OptionSet?.Options ?? []).map((o) => ({
          value: o.Value,
          label: labelText(o.Label),
          ...(o.DefaultStatus !== undefined ? { defaultStatus: o.DefaultStatus } : {}),
          ...(o.InvariantName !== undefined ? { invariantName: o.InvariantName } : {}),
        }));
      } else if (attributeType === 'Status') {
        statusOptions = (extra.OptionSet?.Options ?? []).map((o) => ({
          value: o.Value,
          label: labelText(o.Label),
          state: o.State ?? 0,
        }));
      } else {
        optionSets[base.LogicalName] = set;
      }
    }
    return out;
  });

  return {
    logicalName: definition.LogicalName,
    schemaName: definition.SchemaName ?? definition.LogicalName,
    entitySetName: definition.EntitySetName,
    primaryIdAttribute: definition.PrimaryIdAttribute,
    ...(definition.PrimaryNameAttribute ? { primaryNameAttribute: definition.PrimaryNameAttribute } : {}),
    objectTypeCode: definition.ObjectTypeCode,
    isIntersect: definition.IsIntersect === true,
    ...(definition.ChangeTrackingEnabled !== undefined
      ? { changeTrackingEnabled: definition.ChangeTrackingEnabled }
      : {}),
    attributes,
    optionSets,
    stateOptions,
    statusOptions,
  };
}

/** The attributes a row exports: readable, typed, not derived from another, and not the version itself. */
export function exportedAttributes(metadata: EntityMetadata): AttributeMetadata[] {
  return metadata.attributes.filter(
    (a) => a.valueType !== undefined && a.isValidForRead && !a.attributeOf && a.logicalName !== 'versionnumber',
  );
}

export function toRelationshipMetadata(json: Record<string, unknown>): RelationshipMetadata {
  const s = (k: string) => String(json[k] ?? '');
  return {
    schemaName: s('SchemaName'),
    intersectEntityName: s('IntersectEntityName'),
    entity1LogicalName: s('Entity1LogicalName'),
    entity1IntersectAttribute: s('Entity1IntersectAttribute'),
    entity1NavigationPropertyName: s('Entity1NavigationPropertyName'),
    entity2LogicalName: s('Entity2LogicalName'),
    entity2IntersectAttribute: s('Entity2IntersectAttribute'),
    entity2NavigationPropertyName: s('Entity2NavigationPropertyName'),
  };
}
