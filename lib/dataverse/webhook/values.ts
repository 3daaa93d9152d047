import type { AttributeValue } from '../../change/change-event.js';
import { assertLogicalName } from '../../change/identifiers.js';
import { AppError } from '../../errors.js';

/**
 * Converts one attribute value as DataContractJsonSerializer writes it into an {@link AttributeValue}.
 *
 * Primitives carry no type hint, so the JSON decides: an integer literal is `int` (`bigint` beyond 2^53),
 * a literal with a fraction or exponent is `decimal` (its exact digits; an exponent is expanded), a
 * `/Date(ms)/` string is `datetime`, a GUID-shaped string is `guid` (lower case), other strings `string`.
 * The JSON cannot tell Decimal from Double or Int32 from a scale-0 Decimal; the sink coerces by the
 * attribute's metadata. Complex values carry `__type` (EntityReference, OptionSetValue, Money,
 * EntityCollection, AliasedValue); collections cannot carry one, so a multi-select arrives as a bare array of
 * `{"Value": n}`. Values we cannot represent (byte arrays of images, unknown types) are skipped with a warning.
 */
export interface ValueReader {
  numberText(value: unknown): string | undefined;
  warn(message: string): void;
}

export const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
/** `/Date(ms)/` or `/Date(ms+hhmm)/`: the milliseconds are UTC; the offset only says "local kind". */
export const DCJS_DATE = /^\/Date\((-?\d{1,15})(?:[+-]\d{4})?\)\/$/;

export function dcjsDateToIso(text: string): string | undefined {
  const m = DCJS_DATE.exec(text);
  if (!m) return undefined;
  const date = new Date(Number(m[1]));
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

export function toAttributeValue(raw: unknown, path: string, reader: ValueReader): AttributeValue | undefined {
  if (raw === null) return { type: 'null' };
  switch (typeof raw) {
    case 'boolean':
      return { type: 'boolean', value: raw };
    case 'number':
      return numberValue(String(raw), path);
    case 'string': {
      const literal = reader.numberText(raw);
      if (literal !== undefined) return numberValue(literal, path);
      if (raw.charCodeAt(0) === 0x2f) {
        const iso = dcjsDateToIso(raw);
        if (iso) return { type: 'datetime', value: iso };
      }
      if (raw.length === 36 && GUID.test(raw)) return { type: 'guid', value: raw.toLowerCase() };
      return { type: 'string', value: raw };
    }
    case 'object':
      return Array.isArray(raw)
        ? arrayValue(raw, path, reader)
        : typedValue(raw as Record<string, unknown>, path, reader);
    default:
      reader.warn(`${path}: skipped a value of unsupported JSON type ${typeof raw}`);
      return undefined;
  }
}

function typedValue(raw: Record<string, unknown>, path: string, reader: ValueReader): AttributeValue | undefined {
  const hint = raw.__type;
  // "EntityReference:http://schemas.microsoft.com/xrm/2011/Contracts" → "EntityReference"
  const type = typeof hint === 'string' ? hint.split(':', 1)[0] : undefined;
  switch (type) {
    case 'EntityReference': {
      const ref = entityReference(raw, path);
      return { type: 'lookup', value: ref.id, entityType: ref.logicalName };
    }
    case 'OptionSetValue':
      return { type: 'optionset', value: optionValue(raw, path) };
    case 'Money': {
      const literal = reader.numberText(raw.Value);
      if (literal === undefined) throw invalid(`${path}.Value`, 'must be a number', raw.Value);
      return { type: 'money', value: decimalText(literal, `${path}.Value`) };
    }
    case 'EntityCollection':
      return partyList(raw, path, reader);
    case 'AliasedValue':
      return toAttributeValue(raw.Value, `${path}.Value`, reader);
    default:
      reader.warn(`${path}: skipped a value of unsupported type ${JSON.stringify(hint ?? 'object')}`);
      return undefined;
  }
}

function arrayValue(raw: unknown[], path: string, reader: ValueReader): AttributeValue | undefined {
  if (raw.every((item) => item !== null && typeof item === 'object' && 'Value' in item)) {
    return {
      type: 'multiselect',
      value: raw.map((item, i) => optionValue(item as Record<string, unknown>, `${path}[${i}]`)),
    };
  }
  reader.warn(`${path}: skipped an array that is not a multi-select option set (e.g. image bytes)`);
  return undefined;
}

/** An activity party list: each party's `partyid` lookup. Unresolved parties (a bare address) have none. */
function partyList(raw: Record<string, unknown>, path: string, reader: ValueReader): AttributeValue {
  const entities = raw.Entities;
  if (!Array.isArray(entities)) throw invalid(`${path}.Entities`, 'must be an array', entities);
  const value: Array<{ id: string; entityType: string }> = [];
  entities.forEach((party, i) => {
    const attributes = (party as { Attributes?: unknown } | null)?.Attributes;
    if (!Array.isArray(attributes)) throw invalid(`${path}.Entities[${i}].Attributes`, 'must be an array', attributes);
    const index = attributes.findIndex((a) => (a as { key?: unknown } | null)?.key === 'partyid');
    const partyId = index < 0 ? null : (attributes[index] as { value?: unknown }).value;
    if (partyId === null || typeof partyId !== 'object') {
      reader.warn(`${path}.Entities[${i}]: skipped a party without a partyid lookup`);
      return;
    }
    const ref = entityReference(
      partyId as Record<string, unknown>,
      `${path}.Entities[${i}].Attributes[${index}].value`,
    );
    value.push({ id: ref.id, entityType: ref.logicalName });
  });
  return { type: 'partylist', value };
}

export function entityReference(raw: Record<string, unknown>, path: string): { id: string; logicalName: string } {
  if (typeof raw.Id !== 'string' || !GUID.test(raw.Id)) throw invalid(`${path}.Id`, 'must be a GUID', raw.Id);
  assertLogicalName(raw.LogicalName, `${path}.LogicalName`);
  return { id: raw.Id.toLowerCase(), logicalName: raw.LogicalName };
}

function optionValue(raw: Record<string, unknown>, path: string): number {
  if (!Number.isSafeInteger(raw.Value)) throw invalid(`${path}.Value`, 'must be an integer', raw.Value);
  return raw.Value as number;
}

function numberValue(literal: string, path: string): AttributeValue {
  if (/[.eE]/.test(literal)) return { type: 'decimal', value: decimalText(literal, path) };
  const n = Number(literal);
  return Number.isSafeInteger(n) ? { type: 'int', value: n } : { type: 'bigint', value: BigInt(literal).toString() };
}

const EXPONENT = /^(-?)(\d+)(?:\.(\d+))?[eE]([+-]?\d+)$/;

/** The literal's digits in plain notation: `1.5E+3` → `1500`, `1E-3` → `0.001`; others unchanged. */
export function decimalText(literal: string, path: string): string {
  const m = EXPONENT.exec(literal);
  if (!m) return literal;
  const [, sign, whole, fraction = '', exponentText] = m;
  const exponent = Number(exponentText);
  if (Math.abs(exponent) > 400) throw invalid(path, 'has an exponent out of range', literal);
  let digits = whole + fraction;
  let point = whole.length + exponent;
  if (point <= 0) {
    digits = '0'.repeat(1 - point) + digits;
    point = 1;
  } else if (point > digits.length) {
    digits += '0'.repeat(point - digits.length);
  }
  const intPart = digits.slice(0, point).replace(/^0+(?=\d)/, '');
  const fracPart = digits.slice(point);
  return sign + intPart + (fracPart ? '.' + fracPart : '');
}

export function invalid(field: string, message: string, value: unknown): AppError {
  return new AppError('VALIDATION_FAILED', `${field} ${message} (got ${JSON.stringify(value) ?? 'nothing'}).`, {
    details: [{ field, message, value }],
  });
}
