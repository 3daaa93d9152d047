import type { ChangeVersion } from './change-event.js';

/**
 * Compares two versions on the scale they share (docs/architecture.md §5): row versions when both have one,
 * else modification times. Returns 1 if `a` is newer, -1 if older, 0 if equal, undefined when the two
 * share no scale (the caller decides; the sink treats it as "apply").
 */
export function compareVersions(a: ChangeVersion, b: ChangeVersion): 1 | 0 | -1 | undefined {
  if (a.rowVersion !== undefined && b.rowVersion !== undefined) {
    const x = BigInt(a.rowVersion);
    const y = BigInt(b.rowVersion);
    return x > y ? 1 : x < y ? -1 : 0;
  }
  if (a.modifiedOn !== undefined && b.modifiedOn !== undefined) {
    const x = Date.parse(a.modifiedOn);
    const y = Date.parse(b.modifiedOn);
    return x > y ? 1 : x < y ? -1 : 0;
  }
  return undefined;
}
