/**
 * The `$select` of a Web API link (a delta link above all). Only that query option is read or rewritten: the
 * rest of the link, its token above all, goes back exactly as Dataverse gave it.
 */

const SELECT = /([?&]\$select=)([^&#]*)/;

/** The Web API property names the link selects (a lookup as `_<name>_value`); undefined when it selects none. */
export function selectedColumns(link: string): string[] | undefined {
  const match = SELECT.exec(link);
  if (!match) return undefined;
  const names = decodeURIComponent(match[2]).split(',').filter(Boolean);
  return names.length ? names : undefined;
}

/** The link with `columns` as its `$select`, added when it has none. */
export function withSelect(link: string, columns: readonly string[]): string {
  const match = SELECT.exec(link);
  if (!match) return `${link}${link.includes('?') ? '&' : '?'}$select=${columns.join(',')}`;
  const start = match.index + match[1].length;
  return link.slice(0, start) + columns.join(',') + link.slice(start + match[2].length);
}
