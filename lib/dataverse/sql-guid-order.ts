/**
 * SQL Server's order of `uniqueidentifier` values, which Dataverse uses for `$orderby` on a primary id and
 * for `gt`/`le` in `$filter`. SqlGuid compares the bytes of Guid.ToByteArray() (first three groups
 * little-endian) in the order 10–15, 8–9, 6–7, 4–5, 0–3. As text `aabbccdd-eeff-gghh-iijj-kkllmmnnoopp` that
 * is: kkllmmnnoopp, iijj, hhgg, ffee, ddccbbaa — most significant first.
 */

const GUID = /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/i;

/** Two hex digits at a time, in reverse. */
const reversePairs = (hex: string): string => (hex.match(/../g) ?? []).reverse().join('');

/** The 32 hex digits of a GUID in SQL Server's order of significance (compare as text or as a number). */
export function sqlGuidHex(guid: string): string {
  const m = GUID.exec(guid);
  if (!m) throw new TypeError(`${JSON.stringify(guid)} is not a GUID`);
  return `${m[5]}${m[4]}${reversePairs(m[3])}${reversePairs(m[2])}${reversePairs(m[1])}`.toLowerCase();
}

/** The GUID as a 128-bit number whose numeric order is SQL Server's order of the GUIDs. */
export function sqlGuidKey(guid: string): bigint {
  return BigInt(`0x${sqlGuidHex(guid)}`);
}

/** The GUID (lower case) whose {@link sqlGuidKey} is `key` (0 ≤ key < 2^128). */
export function guidOfSqlKey(key: bigint): string {
  if (key < 0n || key >= 1n << 128n) throw new RangeError(`${key} is outside the 128-bit GUID range`);
  const h = key.toString(16).padStart(32, '0');
  return `${reversePairs(h.slice(24, 32))}-${reversePairs(h.slice(20, 24))}-${reversePairs(h.slice(16, 20))}-${h.slice(12, 16)}-${h.slice(0, 12)}`;
}

/** Array.sort comparator: SQL Server's ascending order of uniqueidentifier. */
export function compareSqlGuids(a: string, b: string): number {
  const x = sqlGuidHex(a);
  const y = sqlGuidHex(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
