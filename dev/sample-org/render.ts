/**
 * Typed rows → Web API JSON, as Dataverse prints them: lookups as `_x_value` with annotations when the
 * client asks for them (`Prefer: odata.include-annotations`), money and decimals as JSON numbers with every
 * digit, date-times as ISO without milliseconds, date-only columns as `yyyy-MM-dd`.
 */
import type { AttributeValue } from '../../lib/change/change-event.js';
import type { TypedRow } from './generate.js';
import type { SampleAttribute, SampleEntity } from './schema.js';

/** A JSON number written exactly as its text (JSON.stringify cannot hold more than a double). */
export class RawNumber {
  constructor(readonly text: string) {}
}

/** JSON.stringify that writes {@link RawNumber}s as bare numbers. */
export function stringifyJson(value: unknown): string {
  if (value instanceof RawNumber) return value.text;
  if (Array.isArray(value)) return `[${value.map(stringifyJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const parts: string[] = [];
    for (const [k, v] of Object.entries(value)) {
      if (v !== undefined) parts.push(`${JSON.stringify(k)}:${stringifyJson(v)}`);
    }
    return `{${parts.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export const LOOKUP_LOGICAL_NAME = 'Microsoft.Dynamics.CRM.lookuplogicalname';
export const ASSOCIATED_NAVIGATION_PROPERTY = 'Microsoft.Dynamics.CRM.associatednavigationproperty';
export const FORMATTED_VALUE = 'OData.Community.Display.V1.FormattedValue';

/** Which instance annotations a `Prefer: odata.include-annotations="…"` asks for. */
export function annotationFilter(pattern: string | undefined): (annotation: string) => boolean {
  if (!pattern) return () => false;
  const terms = pattern.split(',').map((t) => t.trim());
  return (annotation) =>
    terms.some((t) => {
      if (t === '*') return true;
      if (t.startsWith('-')) return false;
      if (t.endsWith('.*')) return annotation.startsWith(t.slice(0, -1));
      return t === annotation;
    });
}

/** The property name of an attribute in Web API rows. */
export function webApiName(attribute: SampleAttribute): string {
  return attribute.kind === 'lookup' || attribute.kind === 'customer'
    ? `_${attribute.logicalName}_value`
    : attribute.logicalName;
}

export interface RenderContext {
  wants: (annotation: string) => boolean;
  /** The primary name of a referenced record (for lookups' formatted values). */
  nameOf: (entity: string, id: string) => string | undefined;
}

const groupDigits = (intPart: string) => intPart.replace(/\B(?=(\d{3})+(?!\d))/g, ',');

function formatDecimalText(text: string, decimals: number): string {
  const negative = text.startsWith('-');
  const [i, f = ''] = (negative ? text.slice(1) : text).split('.');
  const frac = f.padEnd(decimals, '0').slice(0, decimals);
  return `${negative ? '-' : ''}${groupDigits(i)}${frac ? `.${frac}` : ''}`;
}

function formatDateTime(iso: string): string {
  const d = new Date(iso);
  const h = d.getUTCHours();
  const mm = String(d.getUTCMinutes()).padStart(2, '0');
  return `${d.getUTCMonth() + 1}/${d.getUTCDate()}/${d.getUTCFullYear()} ${h % 12 || 12}:${mm} ${h < 12 ? 'AM' : 'PM'}`;
}

function optionLabel(attribute: SampleAttribute, value: number): string | undefined {
  return attribute.optionSet?.options.find((o) => o.value === value)?.label;
}

/** One attribute's properties (value plus annotations) in Web API form. */
function renderAttribute(
  out: Record<string, unknown>,
  attribute: SampleAttribute,
  value: AttributeValue | undefined,
  ctx: RenderContext,
): void {
  const key = webApiName(attribute);
  const formatted = (text: string | undefined) => {
    if (text !== undefined && ctx.wants(FORMATTED_VALUE)) out[`${key}@${FORMATTED_VALUE}`] = text;
  };
  if (!value || value.type === 'null') {
    out[key] = null;
    return;
  }
  switch (value.type) {
    case 'lookup': {
      formatted(ctx.nameOf(value.entityType, value.value));
      if (ctx.wants(ASSOCIATED_NAVIGATION_PROPERTY)) {
        out[`${key}@${ASSOCIATED_NAVIGATION_PROPERTY}`] =
          attribute.kind === 'customer' ? `${attribute.logicalName}_${value.entityType}` : attribute.logicalName;
      }
      if (ctx.wants(LOOKUP_LOGICAL_NAME)) out[`${key}@${LOOKUP_LOGICAL_NAME}`] = value.entityType;
      out[key] = value.value;
      return;
    }
    case 'money':
      formatted(`$${formatDecimalText(value.value, attribute.precision ?? 2)}`);
      out[key] = new RawNumber(value.value);
      return;
    case 'decimal':
      formatted(formatDecimalText(value.value, attribute.precision ?? 2));
      out[key] = new RawNumber(value.value);
      return;
    case 'bigint':
      out[key] = new RawNumber(value.value);
      return;
    case 'int':
      formatted(groupDigits(String(value.value)));
      out[key] = value.value;
      return;
    case 'optionset':
      formatted(optionLabel(attribute, value.value));
      out[key] = value.value;
      return;
    case 'multiselect':
      formatted(value.value.map((v) => optionLabel(attribute, v) ?? String(v)).join('; '));
      out[key] = value.value.join(',');
      return;
    case 'boolean': {
      const [no, yes] = attribute.booleanLabels ?? ['No', 'Yes'];
      formatted(value.value ? yes : no);
      out[key] = value.value;
      return;
    }
    case 'datetime':
      if (attribute.kind === 'dateonly') {
        formatted(formatDateTime(value.value).split(' ')[0]);
        out[key] = value.value.slice(0, 10);
      } else {
        formatted(formatDateTime(value.value));
        out[key] = value.value;
      }
      return;
    default:
      out[key] = (value as { value: unknown }).value;
  }
}

/**
 * A row as the Web API prints it. `select` holds Web API property names; the primary id and the etag are
 * always present, as in Dataverse.
 */
export function renderRow(
  entity: SampleEntity,
  row: TypedRow,
  select: ReadonlySet<string> | undefined,
  ctx: RenderContext,
): Record<string, unknown> {
  const version = row.versionnumber;
  const out: Record<string, unknown> = {
    '@odata.etag': `W/"${version && version.type === 'bigint' ? version.value : '0'}"`,
  };
  for (const attribute of entity.attributes) {
    const key = webApiName(attribute);
    if (select && !select.has(key) && attribute.logicalName !== entity.primaryIdAttribute) continue;
    renderAttribute(out, attribute, row[attribute.logicalName], ctx);
  }
  return out;
}
