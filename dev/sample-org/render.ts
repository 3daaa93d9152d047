/**
 * Typed rows → Web API JSON, as Dataverse prints them: lookups as `_x_value` with annotations when the
 * client asks for them (`Prefer: odata.include-annotations`), money and decimals as JSON numbers with every
 * digit, date-times as ISO without milliseconds, date-only columns as `yyyy-MM-dd`.
 */
import type { AttributeValue } from '../../lib/change/change-event.js';
import type { TypedRow } from './generate.js';
import type { SampleAttribute, SampleEntity } from './schema.js';

/** JSON text written as it is: a number with more digits than a double holds, or rows rendered already. */
export class RawJson {
  constructor(readonly text: string) {}
}

/** JSON.stringify that writes {@link RawJson} as its text. */
export function stringifyJson(value: unknown): string {
  if (value instanceof RawJson) return value.text;
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

/** A rendered row with `@odata.context` as its first property (a single-row answer). */
export function withContext(context: string, row: RawJson): RawJson {
  return new RawJson(`{"@odata.context":${JSON.stringify(context)},${row.text.slice(1)}`);
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

/** An attribute's property names as JSON text (`"name":`), worked out once per attribute. */
interface AttributeKeys {
  attribute: SampleAttribute;
  webApiName: string;
  value: string;
  formatted: string;
  navigation: string;
  lookupName: string;
}

/** `compute` remembered per object: worked out on first use, then looked up. */
function memoized<K extends object, V>(compute: (key: K) => V): (key: K) => V {
  const known = new WeakMap<K, V>();
  return (key) => {
    let value = known.get(key);
    if (value === undefined) {
      value = compute(key);
      known.set(key, value);
    }
    return value;
  };
}

const attributeKeys = memoized((attribute: SampleAttribute): AttributeKeys => {
  const name = webApiName(attribute);
  const prop = (k: string) => `${JSON.stringify(k)}:`;
  return {
    attribute,
    webApiName: name,
    value: prop(name),
    formatted: prop(`${name}@${FORMATTED_VALUE}`),
    navigation: prop(`${name}@${ASSOCIATED_NAVIGATION_PROPERTY}`),
    lookupName: prop(`${name}@${LOOKUP_LOGICAL_NAME}`),
  };
});

/** The annotations one request asked for, decided once for all its rows. */
interface Wanted {
  formatted: boolean;
  navigation: boolean;
  lookupName: boolean;
}

const wanted = memoized(
  (ctx: RenderContext): Wanted => ({
    formatted: ctx.wants(FORMATTED_VALUE),
    navigation: ctx.wants(ASSOCIATED_NAVIGATION_PROPERTY),
    lookupName: ctx.wants(LOOKUP_LOGICAL_NAME),
  }),
);

/** One attribute's properties (annotations, then the value) in Web API form, appended to `out` as JSON text. */
function renderAttribute(
  out: string[],
  keys: AttributeKeys,
  value: AttributeValue | undefined,
  ctx: RenderContext,
  want: Wanted,
): void {
  const { attribute } = keys;
  // Formatted values are worked out only when asked for: they cost more than the value itself.
  const formatted = (text: () => string | undefined) => {
    if (!want.formatted) return;
    const t = text();
    if (t !== undefined) out.push(keys.formatted + JSON.stringify(t));
  };
  if (!value || value.type === 'null') {
    out.push(`${keys.value}null`);
    return;
  }
  switch (value.type) {
    case 'lookup': {
      formatted(() => ctx.nameOf(value.entityType, value.value));
      if (want.navigation) {
        const property =
          attribute.kind === 'customer' ? `${attribute.logicalName}_${value.entityType}` : attribute.logicalName;
        out.push(keys.navigation + JSON.stringify(property));
      }
      if (want.lookupName) out.push(keys.lookupName + JSON.stringify(value.entityType));
      out.push(keys.value + JSON.stringify(value.value));
      return;
    }
    case 'money':
      formatted(() => `$${formatDecimalText(value.value, attribute.precision ?? 2)}`);
      out.push(keys.value + value.value);
      return;
    case 'decimal':
      formatted(() => formatDecimalText(value.value, attribute.precision ?? 2));
      out.push(keys.value + value.value);
      return;
    case 'bigint':
      out.push(keys.value + value.value);
      return;
    case 'int':
      formatted(() => groupDigits(String(value.value)));
      out.push(keys.value + value.value);
      return;
    case 'optionset':
      formatted(() => optionLabel(attribute, value.value));
      out.push(keys.value + value.value);
      return;
    case 'multiselect':
      formatted(() => value.value.map((v) => optionLabel(attribute, v) ?? String(v)).join('; '));
      out.push(`${keys.value}"${value.value.join(',')}"`);
      return;
    case 'boolean': {
      const [no, yes] = attribute.booleanLabels ?? ['No', 'Yes'];
      formatted(() => (value.value ? yes : no));
      out.push(keys.value + (value.value ? 'true' : 'false'));
      return;
    }
    case 'datetime':
      if (attribute.kind === 'dateonly') {
        formatted(() => formatDateTime(value.value).split(' ')[0]);
        out.push(`${keys.value}"${value.value.slice(0, 10)}"`);
      } else {
        formatted(() => formatDateTime(value.value));
        out.push(keys.value + JSON.stringify(value.value));
      }
      return;
    default:
      out.push(keys.value + JSON.stringify((value as { value: unknown }).value));
  }
}

/**
 * A row as the Web API prints it, as JSON text. `select` holds Web API property names; the primary id and
 * the etag are always present, as in Dataverse.
 */
export function renderRow(
  entity: SampleEntity,
  row: TypedRow,
  select: ReadonlySet<string> | undefined,
  ctx: RenderContext,
): RawJson {
  const version = row.versionnumber;
  const etag = `W/"${version && version.type === 'bigint' ? version.value : '0'}"`;
  const out = [`"@odata.etag":${JSON.stringify(etag)}`];
  const want = wanted(ctx);
  for (const attribute of entity.attributes) {
    const keys = attributeKeys(attribute);
    if (select && !select.has(keys.webApiName) && attribute.logicalName !== entity.primaryIdAttribute) continue;
    renderAttribute(out, keys, row[attribute.logicalName], ctx, want);
  }
  return new RawJson(`{${out.join(',')}}`);
}
