/**
 * Array parameters as PostgreSQL array literals (`{"a","b",NULL}`). node-postgres would build the same
 * text from a JS array, but escapes every element with two regex replaces and concatenates piece by piece;
 * most columns hold neither NULL, a quote nor a backslash, so they are joined in one go.
 */

const NEEDS_ESCAPE = /["\\]/;
const ESCAPED = /["\\]/g;

/**
 * The literal of `pick(item)` for each item, in order; null (or undefined, as node-postgres reads it) is NULL.
 * `quotable: false` says no value can hold a quote or backslash (GUIDs, numbers, times), so none is searched.
 */
export function arrayLiteral<T>(
  items: readonly T[],
  pick: (item: T) => string | null | undefined,
  quotable = true,
): string {
  const values: Array<string | null | undefined> = new Array(items.length);
  let plain = true;
  for (let i = 0; i < items.length; i++) {
    const value = pick(items[i]);
    values[i] = value;
    if (plain && (value == null || (quotable && NEEDS_ESCAPE.test(value)))) plain = false;
  }
  if (!values.length) return '{}';
  if (plain) return `{"${values.join('","')}"}`;
  return `{${values.map(quotable ? element : unquotableElement).join(',')}}`;
}

function element(value: string | null | undefined): string {
  if (value == null) return 'NULL';
  return NEEDS_ESCAPE.test(value) ? `"${value.replace(ESCAPED, '\\$&')}"` : `"${value}"`;
}

function unquotableElement(value: string | null | undefined): string {
  return value == null ? 'NULL' : `"${value}"`;
}
