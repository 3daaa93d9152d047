/**
 * The tables next to the entity tables: our tombstones, DES's DeleteLog, and DES's metadata tables
 * (OptionSetMetadata, GlobalOptionSetMetadata, StateMetadata, StatusMetadata, TargetMetadata,
 * AttributeMetadata) with DES's column names.
 */
import type { TableDef } from './dialect.js';
import { type Column, type ColumnType, prefixedName } from './table-model.js';

const name128: ColumnType = { kind: 'text', maxLength: 128 };
const col = (name: string, type: ColumnType): Column => ({ name, type });

/** One row per deleted record: no change older than it may bring the record back (docs/architecture.md §5). */
export function tombstoneTable(prefix: string): TableDef {
  return {
    name: prefixedName(prefix, 'Tombstone'),
    columns: [
      col('EntityName', name128),
      col('RecordId', { kind: 'uuid' }),
      col('VersionNumber', { kind: 'bigint' }),
      col('DeletedOn', { kind: 'timestamp' }),
      col('SinkModifiedOn', { kind: 'timestamp' }),
    ],
    primaryKey: ['EntityName', 'RecordId'],
  };
}

export function deleteLogTable(prefix: string): TableDef {
  return {
    name: prefixedName(prefix, 'DeleteLog'),
    columns: [
      col('Id', { kind: 'bigint' }),
      col('EntityName', name128),
      col('RecordId', { kind: 'uuid' }),
      col('SinkDeleteTime', { kind: 'timestamp' }),
      col('VersionNumber', { kind: 'bigint' }),
    ],
    primaryKey: ['Id'],
    identity: 'Id',
  };
}

interface LabelRow {
  isUserLocalizedLabel: boolean;
  localizedLabelLanguageCode: number;
  localizedLabel: string;
}

export interface OptionSetMetadataRow extends LabelRow {
  optionSetName: string;
  option: number;
}

export interface GlobalOptionSetMetadataRow extends LabelRow {
  optionSetName: string;
  option: number;
}

export interface StateMetadataRow extends LabelRow {
  state: number;
}

export interface StatusMetadataRow extends LabelRow {
  state: number;
  status: number;
}

export interface TargetMetadataRow {
  attributeName: string;
  referencedEntity: string;
  referencedAttribute: string;
}

export interface AttributeMetadataRow {
  attributeName: string;
  attributeType: string;
  attributeTypeCode: number;
  version?: string;
  timestamp?: string;
  metadataId?: string;
  precision?: number;
  maxLength?: number;
}

/**
 * Metadata of one entity; each list present replaces that entity's rows in its table (full replace),
 * a list left out leaves its table alone. `globalOptionSets` replaces rows per option set name.
 */
export interface EntityMetadata {
  entity: string;
  optionSets?: OptionSetMetadataRow[];
  globalOptionSets?: GlobalOptionSetMetadataRow[];
  states?: StateMetadataRow[];
  statuses?: StatusMetadataRow[];
  targets?: TargetMetadataRow[];
  attributes?: AttributeMetadataRow[];
}

type Cell = string | null;

/** One metadata table: its definition, the column that scopes a replace, and how rows become cells. */
export interface MetadataTable<Row> {
  def: TableDef;
  key: string;
  cells(entity: string, row: Row): Cell[];
}

const labelColumns = [
  col('IsUserLocalizedLabel', { kind: 'boolean' }),
  col('LocalizedLabelLanguageCode', { kind: 'integer' }),
  col('LocalizedLabel', { kind: 'text' }),
];
const labelCells = (row: LabelRow): Cell[] => [
  String(row.isUserLocalizedLabel),
  String(row.localizedLabelLanguageCode),
  row.localizedLabel,
];
const opt = (value: number | string | undefined): Cell => (value === undefined ? null : String(value));

export function metadataTables(prefix: string) {
  const table = (name: string, columns: Column[], identity?: string): TableDef => ({
    name: prefixedName(prefix, name),
    columns: identity ? [col(identity, { kind: 'bigint' }), ...columns] : columns,
    primaryKey: identity ? [identity] : [],
    identity,
  });
  return {
    optionSets: {
      def: table('OptionSetMetadata', [
        col('EntityName', name128),
        col('OptionSetName', name128),
        col('Option', { kind: 'integer' }),
        ...labelColumns,
      ]),
      key: 'EntityName',
      cells: (entity, r) => [entity, r.optionSetName, String(r.option), ...labelCells(r)],
    } satisfies MetadataTable<OptionSetMetadataRow>,
    globalOptionSets: {
      def: table('GlobalOptionSetMetadata', [
        col('OptionSetName', name128),
        col('Option', { kind: 'integer' }),
        ...labelColumns,
      ]),
      key: 'OptionSetName',
      cells: (_entity, r) => [r.optionSetName, String(r.option), ...labelCells(r)],
    } satisfies MetadataTable<GlobalOptionSetMetadataRow>,
    states: {
      def: table('StateMetadata', [col('EntityName', name128), col('State', { kind: 'integer' }), ...labelColumns]),
      key: 'EntityName',
      cells: (entity, r) => [entity, String(r.state), ...labelCells(r)],
    } satisfies MetadataTable<StateMetadataRow>,
    statuses: {
      def: table('StatusMetadata', [
        col('EntityName', name128),
        col('State', { kind: 'integer' }),
        col('Status', { kind: 'integer' }),
        ...labelColumns,
      ]),
      key: 'EntityName',
      cells: (entity, r) => [entity, String(r.state), String(r.status), ...labelCells(r)],
    } satisfies MetadataTable<StatusMetadataRow>,
    targets: {
      def: table('TargetMetadata', [
        col('EntityName', name128),
        col('AttributeName', name128),
        col('ReferencedEntity', name128),
        col('ReferencedAttribute', name128),
      ]),
      key: 'EntityName',
      cells: (entity, r) => [entity, r.attributeName, r.referencedEntity, r.referencedAttribute],
    } satisfies MetadataTable<TargetMetadataRow>,
    attributes: {
      def: table(
        'AttributeMetadata',
        [
          col('EntityName', name128),
          col('AttributeName', name128),
          col('AttributeType', name128),
          col('AttributeTypeCode', { kind: 'integer' }),
          col('Version', { kind: 'bigint' }),
          col('Timestamp', { kind: 'timestamp' }),
          col('MetadataId', { kind: 'uuid' }),
          col('Precision', { kind: 'integer' }),
          col('MaxLength', { kind: 'integer' }),
        ],
        'Id',
      ),
      key: 'EntityName',
      cells: (entity, r) => [
        entity,
        r.attributeName,
        r.attributeType,
        String(r.attributeTypeCode),
        opt(r.version),
        opt(r.timestamp),
        opt(r.metadataId),
        opt(r.precision),
        opt(r.maxLength),
      ],
    } satisfies MetadataTable<AttributeMetadataRow>,
  };
}

/** The columns a metadata insert writes (the identity column is the database's). */
export function insertColumns(def: TableDef): Column[] {
  return def.columns.filter((c) => c.name !== def.identity);
}
