/**
 * Blob names that start with a UTC hour, `yyyy/MM/dd/HH/`, so listing a prefix selects a time range and
 * name order is time order. Shared by claim checks and the failure log.
 */
export function hourPath(time: Date): string {
  const iso = time.toISOString(); // yyyy-MM-ddTHH:mm:ss.sssZ
  return `${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/${iso.slice(11, 13)}/`;
}

/** `20261105T143012345Z`: sortable, and safe in a URL without escaping. */
export function compactTime(time: Date): string {
  return time.toISOString().replace(/[-:.]/g, '');
}

/**
 * The UTC span [start, end) that a partial path covers: `2026/` a year, `2026/11/` a month, down to an
 * hour. Undefined when the path is not such a prefix.
 */
export function spanOfPath(path: string): { start: Date; end: Date } | undefined {
  const parts = path.split('/').filter(Boolean);
  if (parts.length < 1 || parts.length > 4 || !parts.every((p) => /^\d+$/.test(p))) return undefined;
  const [year, month = 1, day = 1, hour = 0] = parts.map(Number);
  const start = new Date(Date.UTC(year, month - 1, day, hour));
  const end = new Date(
    Date.UTC(
      year + (parts.length === 1 ? 1 : 0),
      month - 1 + (parts.length === 2 ? 1 : 0),
      day + (parts.length === 3 ? 1 : 0),
      hour + (parts.length === 4 ? 1 : 0),
    ),
  );
  return { start, end };
}
