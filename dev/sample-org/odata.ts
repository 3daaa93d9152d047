/** The small part of OData URL and header syntax the sample org understands. */

export interface ExpandItem {
  name: string;
  select?: string[];
}

/** Splits on `sep` outside parentheses and quotes. */
function splitTopLevel(text: string, sep: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "'" || c === '"') quoted = !quoted;
    else if (!quoted && c === '(') depth++;
    else if (!quoted && c === ')') depth--;
    else if (!quoted && depth === 0 && c === sep) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out.map((s) => s.trim()).filter(Boolean);
}

export function parseSelect(value: string | null): string[] | undefined {
  return value ? splitTopLevel(value, ',') : undefined;
}

/** `Attributes($select=LogicalName,AttributeType),OptionSet` → items with their nested $select. */
export function parseExpand(value: string | null): ExpandItem[] {
  if (!value) return [];
  return splitTopLevel(value, ',').map((item) => {
    const open = item.indexOf('(');
    if (open < 0) return { name: item };
    const name = item.slice(0, open);
    const inner = item.slice(open + 1, item.lastIndexOf(')'));
    const options = splitTopLevel(inner, ';');
    const selectOption = options.find((o) => o.startsWith('$select='));
    return { name, select: selectOption ? parseSelect(selectOption.slice('$select='.length)) : undefined };
  });
}

export interface Preferences {
  maxPageSize?: number;
  trackChanges: boolean;
  includeAnnotations?: string;
  returnRepresentation: boolean;
}

/** `Prefer: odata.maxpagesize=10, odata.track-changes, odata.include-annotations="*"` (one or many headers). */
export function parsePrefer(header: string | string[] | undefined): Preferences {
  const text = Array.isArray(header) ? header.join(',') : (header ?? '');
  const prefs: Preferences = { trackChanges: false, returnRepresentation: false };
  for (const part of splitTopLevel(text, ',')) {
    const eq = part.indexOf('=');
    const name = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    const value =
      eq < 0
        ? ''
        : part
            .slice(eq + 1)
            .trim()
            .replace(/^"|"$/g, '');
    if (name === 'odata.maxpagesize') prefs.maxPageSize = Number.parseInt(value, 10) || undefined;
    else if (name === 'odata.track-changes') prefs.trackChanges = true;
    else if (name === 'odata.include-annotations') prefs.includeAnnotations = value;
    else if (name === 'return' && value === 'representation') prefs.returnRepresentation = true;
  }
  return prefs;
}

/** A Web API error body: `{"error":{"code":"0x…","message":"…"}}`. */
export function errorBody(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

/** `name='value'` inside a key segment such as `EntityDefinitions(LogicalName='account')`. */
export function keyValue(segment: string, key: string): string | undefined {
  const m = new RegExp(`\\(${key}='([^']*)'\\)`).exec(segment);
  return m?.[1];
}

export type Comparison = 'eq' | 'gt' | 'ge' | 'lt' | 'le';

/**
 * `accountid gt 0f8f…-… and accountid le 1a2b…-…`: comparisons of one GUID property joined by `and`, the
 * filter a keyset read of a primary id sends. Undefined when the text is anything else.
 */
export function parseGuidComparisons(
  filter: string,
  property: string,
): Array<{ op: Comparison; guid: string }> | undefined {
  const guid = "'?\\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\\}?'?";
  const term = new RegExp(`^\\(?\\s*${property}\\s+(eq|gt|ge|lt|le)\\s+${guid}\\s*\\)?$`, 'i');
  const out: Array<{ op: Comparison; guid: string }> = [];
  for (const part of filter.trim().split(/\s+and\s+/i)) {
    const m = term.exec(part.trim());
    if (!m) return undefined;
    out.push({ op: m[1].toLowerCase() as Comparison, guid: m[2].toLowerCase() });
  }
  return out;
}

/**
 * `accountid eq 0f8f…-… or accountid eq 1a2b…-…`: the ids of a re-read by id (two or more), lower case.
 * Undefined when the text is anything else.
 */
export function parseGuidSet(filter: string, property: string): string[] | undefined {
  const parts = filter.trim().split(/\s+or\s+/i);
  if (parts.length < 2) return undefined;
  const ids: string[] = [];
  for (const part of parts) {
    const terms = parseGuidComparisons(part, property);
    if (terms?.length !== 1 || terms[0].op !== 'eq') return undefined;
    ids.push(terms[0].guid);
  }
  return ids;
}

/** `accountid desc` → the property and direction; undefined for anything but one property. */
export function parseOrderBy(value: string): { property: string; descending: boolean } | undefined {
  const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)(?:\s+(asc|desc))?\s*$/i.exec(value);
  return m ? { property: m[1], descending: m[2]?.toLowerCase() === 'desc' } : undefined;
}
