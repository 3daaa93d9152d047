/**
 * Upsert rows as COPY text for the staging table (`id, vn, mo, c0 …`): tab-separated, `\N` for NULL, and a
 * backslash, tab, newline or carriage return in a cell escaped as COPY's text format wants it. Most cells
 * hold none of these, so they are appended as they are.
 */
import type { UpsertRow } from '../dialect.js';

const NEEDS_ESCAPE = /[\\\t\n\r]/;
const ESCAPED = /[\\\t\n\r]/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

export function copyText(rows: readonly UpsertRow[]): string {
  let text = '';
  for (const row of rows) {
    // Ids and row versions were validated (a GUID, digits): nothing in them needs escaping.
    text += `${row.id}\t${row.rowVersion ?? '\\N'}\t${cell(row.modifiedOn)}`;
    for (const value of row.cells) text += `\t${cell(value)}`;
    text += '\n';
  }
  return text;
}

function cell(value: string | null): string {
  if (value === null) return '\\N';
  return NEEDS_ESCAPE.test(value) ? value.replace(ESCAPED, (c) => ESCAPES[c]) : value;
}
