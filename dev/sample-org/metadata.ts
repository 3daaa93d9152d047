/**
 * Table definitions in the JSON shape of the Web API's EntityDefinitions: entity properties, the
 * `Attributes` collection with each attribute's derived `@odata.type`, typed casts
 * (`/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata`), and the `OptionSet` / `GlobalOptionSet`
 * navigation properties when expanded.
 */
import type { SampleAttribute, SampleEntity, SampleOptionSet, SampleRelationship } from './schema.js';

const NS = 'Microsoft.Dynamics.CRM';

export function label(text: string): Record<string, unknown> {
  const localized = { Label: text, LanguageCode: 1033, IsManaged: true, MetadataId: null, HasChanged: null };
  return { LocalizedLabels: [localized], UserLocalizedLabel: localized };
}

const castName: Record<SampleAttribute['kind'], string> = {
  uniqueidentifier: 'UniqueIdentifierAttributeMetadata',
  string: 'StringAttributeMetadata',
  memo: 'MemoAttributeMetadata',
  money: 'MoneyAttributeMetadata',
  decimal: 'DecimalAttributeMetadata',
  integer: 'IntegerAttributeMetadata',
  bigint: 'BigIntAttributeMetadata',
  boolean: 'BooleanAttributeMetadata',
  datetime: 'DateTimeAttributeMetadata',
  dateonly: 'DateTimeAttributeMetadata',
  picklist: 'PicklistAttributeMetadata',
  state: 'StateAttributeMetadata',
  status: 'StatusAttributeMetadata',
  lookup: 'LookupAttributeMetadata',
  customer: 'LookupAttributeMetadata',
  multiselect: 'MultiSelectPicklistAttributeMetadata',
};

const attributeType: Record<SampleAttribute['kind'], [type: string, typeName: string]> = {
  uniqueidentifier: ['Uniqueidentifier', 'UniqueidentifierType'],
  string: ['String', 'StringType'],
  memo: ['Memo', 'MemoType'],
  money: ['Money', 'MoneyType'],
  decimal: ['Decimal', 'DecimalType'],
  integer: ['Integer', 'IntegerType'],
  bigint: ['BigInt', 'BigIntType'],
  boolean: ['Boolean', 'BooleanType'],
  datetime: ['DateTime', 'DateTimeType'],
  dateonly: ['DateTime', 'DateTimeType'],
  picklist: ['Picklist', 'PicklistType'],
  state: ['State', 'StateType'],
  status: ['Status', 'StatusType'],
  lookup: ['Lookup', 'LookupType'],
  customer: ['Customer', 'CustomerType'],
  multiselect: ['Virtual', 'MultiSelectPicklistType'],
};

/** Attribute casts the real Web API knows that no sample attribute uses (they answer an empty list). */
const otherCasts = new Set([
  'DoubleAttributeMetadata',
  'BigIntAttributeMetadata',
  'EntityNameAttributeMetadata',
  'ImageAttributeMetadata',
  'FileAttributeMetadata',
  'ManagedPropertyAttributeMetadata',
]);

/**
 * The type segment of a cast URL (`PicklistAttributeMetadata`) → the attribute kinds it selects; an empty
 * list for a known cast without sample attributes, undefined for an unknown type.
 */
export function kindsOfCast(cast: string): Array<SampleAttribute['kind']> | undefined {
  const name = cast.startsWith(`${NS}.`) ? cast.slice(NS.length + 1) : cast;
  const kinds = (Object.keys(castName) as Array<SampleAttribute['kind']>).filter((k) => castName[k] === name);
  return kinds.length || otherCasts.has(name) ? kinds : undefined;
}

function typeSpecific(_entity: SampleEntity, a: SampleAttribute): Record<string, unknown> {
  switch (a.kind) {
    case 'string':
      return {
        MaxLength: a.maxLength,
        Format: a.logicalName.startsWith('email') ? 'Email' : 'Text',
        FormatName: { Value: a.logicalName.startsWith('email') ? 'Email' : 'Text' },
        DatabaseLength: (a.maxLength ?? 0) * 2,
      };
    case 'memo':
      return {
        MaxLength: a.maxLength,
        Format: 'TextArea',
        FormatName: { Value: 'TextArea' },
        DatabaseLength: (a.maxLength ?? 0) * 2,
      };
    case 'money':
      return {
        Precision: a.precision,
        PrecisionSource: 0,
        MinValue: -922337203685477,
        MaxValue: 922337203685477,
        IsBaseCurrency: false,
        ImeMode: 'Auto',
      };
    case 'decimal':
      return { Precision: a.precision, MinValue: a.minValue, MaxValue: a.maxValue, ImeMode: 'Auto' };
    case 'integer':
      return { MinValue: -2147483648, MaxValue: 2147483647, Format: 'None' };
    case 'bigint':
      // biome-ignore lint/correctness/noPrecisionLoss: Dataverse documents these bounds; JSON output rounds them the same way
      return { MinValue: -9223372036854775808, MaxValue: 9223372036854775807 };
    case 'boolean':
      return { DefaultValue: false };
    case 'datetime':
      return {
        Format: 'DateAndTime',
        DateTimeBehavior: { Value: 'UserLocal' },
        CanChangeDateTimeBehavior: { Value: false },
      };
    case 'dateonly':
      return {
        Format: 'DateOnly',
        DateTimeBehavior: { Value: 'DateOnly' },
        CanChangeDateTimeBehavior: { Value: false },
      };
    case 'lookup':
    case 'customer':
      return { Targets: a.targets ?? [], Format: 'None' };
    case 'picklist':
    case 'multiselect':
      return { DefaultFormValue: -1 };
    case 'state':
    case 'status':
      return { DefaultFormValue: null };
    default:
      return {};
  }
}

/** An attribute's structural properties (no navigation properties). */
export function attributeJson(entity: SampleEntity, a: SampleAttribute, index: number): Record<string, unknown> {
  const [type, typeName] = attributeType[a.kind];
  return {
    '@odata.type': `#${NS}.${castName[a.kind]}`,
    MetadataId: a.metadataId,
    LogicalName: a.logicalName,
    SchemaName: a.schemaName,
    EntityLogicalName: entity.logicalName,
    AttributeType: type,
    AttributeTypeName: { Value: typeName },
    AttributeOf: null,
    ColumnNumber: index + 1,
    DisplayName: label(a.displayName),
    Description: label(''),
    IsPrimaryId: a.logicalName === entity.primaryIdAttribute,
    IsPrimaryName: a.isPrimaryName === true,
    IsValidForRead: true,
    IsValidForCreate: !a.readOnly,
    IsValidForUpdate: !a.readOnly && a.logicalName !== entity.primaryIdAttribute,
    IsCustomAttribute: a.logicalName.startsWith('new_'),
    IsLogical: false,
    SourceType: 0,
    IntroducedVersion: '5.0.0.0',
    ...typeSpecific(entity, a),
  };
}

export function optionSetJson(a: SampleAttribute, set: SampleOptionSet): Record<string, unknown> {
  const optionSetType =
    a.kind === 'state' ? 'State' : a.kind === 'status' ? 'Status' : a.kind === 'boolean' ? 'Boolean' : 'Picklist';
  return {
    MetadataId: set.metadataId,
    HasChanged: null,
    IsCustomOptionSet: set.isGlobal,
    IsGlobal: set.isGlobal,
    IsManaged: false,
    Name: set.name,
    ExternalTypeName: null,
    OptionSetType: optionSetType,
    IntroducedVersion: '5.0.0.0',
    Description: label(''),
    DisplayName: label(a.displayName),
    Options: set.options.map((o) => ({
      ...(a.kind === 'state' ? { '@odata.type': `#${NS}.StateOptionMetadata` } : {}),
      ...(a.kind === 'status' ? { '@odata.type': `#${NS}.StatusOptionMetadata` } : {}),
      Value: o.value,
      Color: null,
      IsManaged: false,
      ExternalValue: '',
      ParentValues: [],
      MetadataId: null,
      HasChanged: null,
      Label: label(o.label),
      Description: label(''),
      ...(a.kind === 'state' ? { DefaultStatus: o.defaultStatus, InvariantName: o.invariantName } : {}),
      ...(a.kind === 'status' ? { State: o.state, TransitionData: null } : {}),
    })),
  };
}

/** The `OptionSet` and `GlobalOptionSet` navigation properties of an enum attribute. */
export function attributeNavigation(a: SampleAttribute, name: string): unknown {
  if (a.kind === 'boolean' && name === 'OptionSet') {
    const [no, yes] = a.booleanLabels ?? ['No', 'Yes'];
    return {
      MetadataId: a.metadataId,
      IsGlobal: false,
      Name: `${a.logicalName}`,
      OptionSetType: 'Boolean',
      TrueOption: { Value: 1, Label: label(yes) },
      FalseOption: { Value: 0, Label: label(no) },
    };
  }
  if (!a.optionSet) return undefined;
  if (name === 'OptionSet') return optionSetJson(a, a.optionSet);
  if (name === 'GlobalOptionSet') return a.optionSet.isGlobal ? optionSetJson(a, a.optionSet) : null;
  return undefined;
}

export function entityJson(entity: SampleEntity): Record<string, unknown> {
  return {
    MetadataId: entity.metadataId,
    LogicalName: entity.logicalName,
    SchemaName: entity.schemaName,
    EntitySetName: entity.entitySetName,
    LogicalCollectionName: entity.entitySetName,
    CollectionSchemaName: `${entity.schemaName}s`,
    PrimaryIdAttribute: entity.primaryIdAttribute,
    PrimaryNameAttribute: entity.primaryNameAttribute,
    ObjectTypeCode: entity.objectTypeCode,
    IsIntersect: entity.isIntersect,
    IsCustomEntity: entity.logicalName.startsWith('new_'),
    ChangeTrackingEnabled: true,
    IsValidForAdvancedFind: !entity.isIntersect,
    DisplayName: label(entity.displayName),
    Description: label(''),
    IntroducedVersion: '5.0.0.0',
  };
}

export function relationshipJson(r: SampleRelationship): Record<string, unknown> {
  return {
    '@odata.type': `#${NS}.ManyToManyRelationshipMetadata`,
    MetadataId: r.metadataId,
    SchemaName: r.schemaName,
    RelationshipType: 'ManyToManyRelationship',
    IsCustomRelationship: true,
    IntersectEntityName: r.intersectEntityName,
    Entity1LogicalName: r.entity1LogicalName,
    Entity1IntersectAttribute: r.entity1IntersectAttribute,
    Entity1NavigationPropertyName: r.entity1NavigationPropertyName,
    Entity2LogicalName: r.entity2LogicalName,
    Entity2IntersectAttribute: r.entity2IntersectAttribute,
    Entity2NavigationPropertyName: r.entity2NavigationPropertyName,
  };
}
