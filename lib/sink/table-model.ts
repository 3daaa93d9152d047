/**
 * The DES table layout (docs/architecture.md §4) independent of any SQL dialect: which columns an entity's
 * attributes become, what type each column gets, and how a typed value is rendered for a column that
 * already exists (possibly with another type).
 */
import type { AttributeType, AttributeValue } from '../change/change-event.js';
import { isCanonicalUtc } from '../change/iso-time.js';
import { AppError } from '../errors.js';

/** The portable column types the sink creates; each dialect maps them to its own names. */
export type ColumnKind = 'uuid' | 'text' | 'integer' | 'bigint' | 'decimal' | 'double' | 'boolean' | 'timestamp';

export interface ColumnType {
  kind: ColumnKind;
  /** decimal only */
  precision?: number;
  scale?: number;
  /** text only; absent = unlimited (text / nvarchar(max)) */
  maxLength?: number;
}

export interface Column {
  name: string;
  type: ColumnType;
}

/**
 * What the metadata mapper tells the sink about one attribute. `state` and `status` are option sets with
 * their own metadata tables; `memo` is a long string.
 */
export type AttributeSpecKind = Exclude<AttributeType, 'null'> | 'state' | 'status' | 'memo';

export interface AttributeSpec {
  /** Attribute logical name. */
  name: string;
  kind: AttributeSpecKind;
  /** decimal / money: total digits (≤ 38) */
  precision?: number;
  /** decimal / money: digits after the point */
  scale?: number;
  /** string: maximum characters */
  maxLength?: number;
}

/** Decimal without a spec: wide enough for Dataverse's range (±100 000 000 000) at full scale. */
export const DEFAULT_DECIMAL: ColumnType = { kind: 'decimal', precision: 38, scale: 10 };

/** Money as DES typed it: decimal(38,2), and the base-currency `<attr>_base` decimal(38,4). */
const MONEY_SCALE = 2;
const BASE_MONEY_SCALE = 4;

/** The lookup's `_entitytype` column, as DES typed it: an entity logical name (≤ 128 characters). */
export const ENTITY_TYPE_COLUMN: ColumnType = { kind: 'text', maxLength: 128 };

/** How a target counts the length of an nvarchar(n) / varchar(n) value. */
export type TextLengthUnit = 'codePoint' | 'utf16';

/** Column names the sink owns in every entity table (DES spelling; PostgreSQL folds them to lower case). */
export const SystemColumns = {
  id: 'Id',
  versionNumber: 'versionnumber',
  modifiedOn: 'modifiedon',
  sinkCreatedOn: 'SinkCreatedOn',
  sinkModifiedOn: 'SinkModifiedOn',
} as const;

/** Attributes that map onto system columns instead of their own. */
const RESERVED_ATTRIBUTES = new Set(['id', 'versionnumber', 'modifiedon', 'sinkcreatedon', 'sinkmodifiedon']);

export function isReservedAttribute(name: string): boolean {
  return RESERVED_ATTRIBUTES.has(name.toLowerCase());
}

export function systemColumns(): Column[] {
  return [
    { name: SystemColumns.id, type: { kind: 'uuid' } },
    { name: SystemColumns.versionNumber, type: { kind: 'bigint' } },
    { name: SystemColumns.modifiedOn, type: { kind: 'timestamp' } },
    { name: SystemColumns.sinkCreatedOn, type: { kind: 'timestamp' } },
    { name: SystemColumns.sinkModifiedOn, type: { kind: 'timestamp' } },
  ];
}

/** `<prefix>_<name>`, or just `<name>` without a prefix. */
export function prefixedName(prefix: string, name: string): string {
  return prefix ? `${prefix}_${name}` : name;
}

const PREFIX_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export function assertTablePrefix(prefix: string): void {
  if (prefix !== '' && !PREFIX_PATTERN.test(prefix)) {
    throw new AppError(
      'ILLEGAL_IDENTIFIER',
      `target.tablePrefix ${JSON.stringify(prefix)} is not a legal prefix: use letters, digits and underscores, starting with a letter or underscore.`,
      {
        details: [{ field: 'target.tablePrefix', message: 'must match ^[A-Za-z_][A-Za-z0-9_]{0,63}$', value: prefix }],
      },
    );
  }
}

/** The lookup's companion column holding the referenced entity's logical name. */
export function entityTypeColumn(attribute: string): string {
  return `${attribute}_entitytype`;
}

/** The column type for an attribute described by metadata. */
export function columnTypeForSpec(spec: AttributeSpec): ColumnType {
  switch (spec.kind) {
    case 'string':
      return spec.maxLength && spec.maxLength > 0 ? { kind: 'text', maxLength: spec.maxLength } : { kind: 'text' };
    case 'memo':
    case 'multiselect':
    case 'partylist':
      return { kind: 'text' };
    case 'int':
    case 'optionset':
    case 'state':
    case 'status':
      return { kind: 'integer' };
    case 'bigint':
      return { kind: 'bigint' };
    case 'money':
      return moneyColumn(spec);
    case 'decimal':
      return spec.precision
        ? { kind: 'decimal', precision: Math.min(spec.precision, 38), scale: Math.min(spec.scale ?? 0, spec.precision) }
        : DEFAULT_DECIMAL;
    case 'float':
      return { kind: 'double' };
    case 'boolean':
      return { kind: 'boolean' };
    case 'datetime':
      return { kind: 'timestamp' };
    case 'guid':
    case 'lookup':
      return { kind: 'uuid' };
  }
}

/**
 * DES's money columns: decimal(38,2), `_base` decimal(38,4). A currency precision above that (pricing or
 * currency precision, up to 4 decimals) widens the scale rather than rounding; without metadata the scale
 * is unknown, so it is the 4 decimals money can carry.
 */
function moneyColumn(spec: AttributeSpec): ColumnType {
  const base = spec.name.endsWith('_base') ? BASE_MONEY_SCALE : MONEY_SCALE;
  const scale = spec.scale === undefined ? BASE_MONEY_SCALE : Math.min(spec.scale, 10);
  return { kind: 'decimal', precision: 38, scale: Math.max(base, scale) };
}

/**
 * The column type inferred from a value when no metadata is at hand; undefined for null. A whole number
 * (`int`/`bigint`) gets bigint: 8 bytes against decimal(38,10)'s 17, which counts against SQL Server's
 * 8,060-byte row; a decimal arriving later in it fails that record instead of widening the table.
 */
export function columnTypeForValue(name: string, value: AttributeValue): ColumnType | undefined {
  if (value.type === 'null') return undefined;
  if (value.type === 'int' || value.type === 'bigint') return { kind: 'bigint' };
  return columnTypeForSpec({ name, kind: value.type });
}

/** The columns one attribute occupies: a lookup also gets `<attr>_entitytype`. */
export function columnsForAttribute(name: string, type: ColumnType, isLookup: boolean): Column[] {
  const main = { name, type };
  return isLookup ? [main, { name: entityTypeColumn(name), type: ENTITY_TYPE_COLUMN }] : [main];
}

/** A value that cannot be stored in the column it is meant for (the record fails, the batch goes on). */
export class CellError extends Error {
  constructor(
    readonly column: string,
    message: string,
  ) {
    super(message);
    this.name = 'CellError';
  }
}

/**
 * Every cell travels to the target as text (or null) and is cast there, so decimals and 64-bit integers
 * keep every digit. This renders `value` for a column of type `column`, converting across types where
 * that loses nothing (an int into a text column) and refusing where it would (text into an integer).
 */
export function renderCell(
  columnName: string,
  column: ColumnType,
  value: AttributeValue,
  unit: TextLengthUnit = 'codePoint',
): string | null {
  if (value.type === 'null') return null;
  switch (column.kind) {
    case 'text': {
      const text = renderAsText(value);
      // A JS string's length is its UTF-16 code units (SQL Server's nvarchar count: an emoji is 2); code
      // points (PostgreSQL's count) never outnumber them, so only a long string needs counting again.
      if (column.maxLength !== undefined && text.length > column.maxLength) {
        const length = unit === 'utf16' ? text.length : [...text].length;
        if (length > column.maxLength) {
          throw new CellError(
            columnName,
            `value for ${columnName} has ${length} ${unit === 'utf16' ? 'UTF-16 code units' : 'characters'}; the column holds at most ${column.maxLength}`,
          );
        }
      }
      return text;
    }
    case 'integer':
    case 'bigint':
    case 'decimal':
    case 'double': {
      if (value.type === 'boolean') return value.value ? '1' : '0';
      if (!NUMERIC_TYPES.has(value.type)) return refuse(columnName, column, value);
      const raw = (value as Extract<AttributeValue, { value: number | string }>).value;
      // A safe integer prints as plain digits, which is what plainNumber would make of it.
      if (typeof raw === 'number' && Number.isSafeInteger(raw)) return String(raw);
      const text = plainNumber(String(raw));
      if (text === undefined) return refuse(columnName, column, value);
      if (column.kind === 'integer' || column.kind === 'bigint') {
        // A whole value written as a decimal (`5.000`) still fits an integer column.
        const whole = /^(-?\d+)(?:\.0*)?$/.exec(text);
        return whole ? whole[1] : refuse(columnName, column, value);
      }
      return text;
    }
    case 'boolean':
      if (value.type === 'boolean') return value.value ? 'true' : 'false';
      if ((value.type === 'int' || value.type === 'optionset') && (value.value === 0 || value.value === 1)) {
        return value.value === 1 ? 'true' : 'false';
      }
      return refuse(columnName, column, value);
    case 'timestamp': {
      const iso = value.type === 'datetime' ? toUtcIso(value.value) : undefined;
      return iso ?? refuse(columnName, column, value);
    }
    case 'uuid':
      if ((value.type === 'guid' || value.type === 'lookup') && GUID.test(value.value))
        return value.value.toLowerCase();
      return refuse(columnName, column, value);
  }
}

function refuse(columnName: string, column: ColumnType, value: Exclude<AttributeValue, { type: 'null' }>): never {
  throw new CellError(
    columnName,
    `column ${columnName} is ${describeType(column)} and cannot hold the ${value.type} value ${JSON.stringify(value.value)}`,
  );
}

/** An ISO-8601 time as `YYYY-MM-DDTHH:mm:ss.sssZ` (UTC), the one shape both targets parse; undefined if invalid. */
export function toUtcIso(text: string): string | undefined {
  if (isCanonicalUtc(text)) return text;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

/**
 * A number as plain digits (`1e-7` → `0.0000001`): T-SQL's decimal cast refuses exponents. Undefined when
 * the text is not a finite number.
 */
export function plainNumber(text: string): string | undefined {
  if (PLAIN_DECIMAL.test(text)) return text;
  const m = /^([+-]?)(\d+)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text.trim());
  if (!m) return undefined;
  const [, sign, whole, fraction = '', exp] = m;
  if (exp === undefined) return `${sign === '-' ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
  const digits = whole + fraction;
  const point = whole.length + Number(exp);
  let int: string;
  let frac: string;
  if (point <= 0) {
    int = '0';
    frac = '0'.repeat(-point) + digits;
  } else if (point >= digits.length) {
    int = digits + '0'.repeat(point - digits.length);
    frac = '';
  } else {
    int = digits.slice(0, point);
    frac = digits.slice(point);
  }
  int = int.replace(/^0+(?=\d)/, '');
  frac = frac.replace(/0+$/, '');
  return `${sign === '-' ? '-' : ''}${int}${frac ? `.${frac}` : ''}`;
}

/** Already plain: the general path below would return it unchanged. */
const PLAIN_DECIMAL = /^-?\d+(?:\.\d+)?$/;

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isGuid(text: string): boolean {
  return GUID.test(text);
}

const NUMERIC_TYPES: ReadonlySet<AttributeType> = new Set(['int', 'bigint', 'decimal', 'money', 'float', 'optionset']);

function renderAsText(value: Exclude<AttributeValue, { type: 'null' }>): string {
  switch (value.type) {
    case 'multiselect':
      return value.value.join(',');
    case 'partylist':
      return JSON.stringify(value.value);
    case 'lookup':
    case 'guid':
      return value.value.toLowerCase();
    default:
      return String(value.value);
  }
}

export function describeType(type: ColumnType): string {
  if (type.kind === 'decimal') return `decimal(${type.precision ?? 38},${type.scale ?? 0})`;
  if (type.kind === 'text' && type.maxLength) return `text(${type.maxLength})`;
  return type.kind;
}
