/**
 * The reduction buffer (docs/architecture.md §5): within a batch, an older change to a record is dropped when a
 * newer one makes it irrelevant. Partial updates are the exception Debezium does not have: an older update
 * that touches a column the newer one does not is kept, and applied first (rounds), so no column is lost.
 */
import { compareVersions } from '../change/version.js';
import type { RecordChange } from './record-change.js';

export interface ReducedBatch {
  /** Each round holds at most one change per record; round n+1 holds newer changes than round n. */
  rounds: RecordChange[][];
  /** Changes a newer change in the same batch supersedes: reported `stale`, never sent to SQL. */
  superseded: RecordChange[];
}

export function reduceBatch(changes: RecordChange[]): ReducedBatch {
  const byKey = new Map<string, RecordChange[]>();
  for (const change of changes) {
    const key = `${change.entity}\u0000${change.id}`;
    const list = byKey.get(key);
    if (list) list.push(change);
    else byKey.set(key, [change]);
  }
  const rounds: RecordChange[][] = [];
  const superseded: RecordChange[] = [];
  for (const list of byKey.values()) {
    if (list.length === 1) {
      // The common case: nothing in the batch competes with this change.
      if (!rounds[0]) rounds[0] = [];
      rounds[0].push(list[0]);
      continue;
    }
    const kept: RecordChange[] = [];
    // Newest first; a change survives only if no kept (newer) change covers it.
    for (const change of sortOldestFirst(list).reverse()) {
      if (kept.some((newer) => covers(newer, change))) superseded.push(change);
      else kept.push(change);
    }
    kept.reverse().forEach((change, round) => {
      if (!rounds[round]) rounds[round] = [];
      rounds[round].push(change);
    });
  }
  return { rounds, superseded };
}

/** Stable insertion sort: by version where comparable, else by arrival (a later arrival counts as newer). */
function sortOldestFirst(list: RecordChange[]): RecordChange[] {
  const sorted: RecordChange[] = [];
  for (const change of list) {
    let at = sorted.length;
    while (at > 0 && isOlder(change, sorted[at - 1])) at--;
    sorted.splice(at, 0, change);
  }
  return sorted;
}

function isOlder(a: RecordChange, b: RecordChange): boolean {
  const order = compareVersions(a.version, b.version);
  if (order === -1) return true;
  // Equal versions: a delete wins the tie (nothing updates a record after deleting it).
  if (order === 0) return a.kind !== 'delete' && b.kind === 'delete';
  return false;
}

/** Whether applying `newer` after `older` leaves nothing of `older` behind. */
function covers(newer: RecordChange, older: RecordChange): boolean {
  if (newer.kind === 'delete') return true;
  if (older.kind === 'delete') return false;
  return Object.keys(older.attributes).every((name) => name in newer.attributes);
}
