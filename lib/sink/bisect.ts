/**
 * How a set-based write meets the target: large sets cut into slices written side by side, statements
 * capped at the dialect's row limit, and a set whose statement fails for a data reason split in halves
 * until the bad rows are isolated, so only they fail and the rest applies.
 */
import type { Logger } from '../log.js';
import type { ApplyOutcome } from './apply-outcome.js';
import type { TargetDialect } from './dialect.js';
import type { RecordChange } from './record-change.js';
import type { TableSchema } from './table-schema.js';
import { batchError, permanentFailure } from './target-failure.js';

const APPLIED: ApplyOutcome = { status: 'applied' };
const STALE: ApplyOutcome = { status: 'stale' };
/** Below this many rows per slice a second statement costs more than it saves. */
const MIN_SLICE_ROWS = 1_000;
/** Slices per connection in flight: one written while the next is prepared. */
const SLICES_PER_CONNECTION = 2;

/** A row to write and the record it came from. */
export type WriteRow = { record: RecordChange; row: { id: string } };

export interface BisectContext {
  dialect: TargetDialect;
  schema: TableSchema;
  logger: Logger;
}

/**
 * Cuts a large id-ordered set into contiguous slices written at the same time on separate connections,
 * as far as the dialect allows, so the target works on one slice while we prepare, send or read another:
 * a few more slices than connections, so there is always a next one to prepare. Each slice is a statement
 * of its own, as each isolating half already is: rows still lock in id order, and outcomes do not depend
 * on the cut. Every slice is awaited before an error is passed on.
 */
export async function writeSlices<R>(
  dialect: TargetDialect,
  rows: R[],
  write: (slice: R[]) => Promise<void>,
): Promise<void> {
  const parallel = dialect.parallelWrites ?? 1;
  const count = Math.min(parallel * SLICES_PER_CONNECTION, Math.floor(rows.length / MIN_SLICE_ROWS));
  if (parallel <= 1 || count <= 1) return write(rows);
  const size = Math.ceil(rows.length / count);
  const slices: R[][] = [];
  for (let at = 0; at < rows.length; at += size) slices.push(rows.slice(at, at + size));
  let next = 0;
  const lane = async () => {
    while (next < slices.length) await write(slices[next++]);
  };
  const settled = await Promise.allSettled(Array.from({ length: Math.min(parallel, slices.length) }, lane));
  for (const result of settled) if (result.status === 'rejected') throw result.reason;
}

/**
 * Runs a set-based write; on a data error splits the set in halves until single rows fail on their own, and
 * on a timeout writes it again in halves (a single row that still times out is transient). Outage, database
 * and transient errors abort the whole batch (the caller keeps it queued).
 */
export async function writeIsolating<R extends WriteRow>(
  context: BisectContext,
  table: string,
  entity: string,
  rows: R[],
  write: (rows: R[]) => Promise<Set<string>>,
  outcomes: ApplyOutcome[],
): Promise<void> {
  if (!rows.length) return;
  const { dialect, schema, logger } = context;
  const max = dialect.maxRowsPerStatement;
  if (max && rows.length > max) {
    for (let at = 0; at < rows.length; at += max) {
      await writeIsolating(context, table, entity, rows.slice(at, at + max), write, outcomes);
    }
    return;
  }
  let applied: Set<string>;
  try {
    applied = await write(rows);
  } catch (err) {
    const failure = dialect.classify(err);
    if (failure.class === 'schemaStale') schema.forget();
    const halving = failure.class === 'timeout' && rows.length > 1;
    if (halving) logger.info('sink.statement.halved', { entity, rows: rows.length, reason: failure.reason });
    else if (failure.class !== 'permanent' && failure.class !== 'schemaRace') throw batchError(failure, err);
    if (rows.length === 1) {
      const { record } = rows[0];
      outcomes[record.index] = permanentFailure(
        entity,
        record.id,
        schema.withKeptNote(table, failure.reason, failure.column),
        failure.column,
      );
      logger.warn('sink.record.failed', { entity, recordId: record.id, reason: failure.reason });
      return;
    }
    const half = Math.ceil(rows.length / 2);
    await writeIsolating(context, table, entity, rows.slice(0, half), write, outcomes);
    await writeIsolating(context, table, entity, rows.slice(half), write, outcomes);
    return;
  }
  for (const { record, row } of rows) outcomes[record.index] = applied.has(row.id) ? APPLIED : STALE;
}

export function byId(a: { row: { id: string } }, b: { row: { id: string } }): number {
  return a.row.id < b.row.id ? -1 : a.row.id > b.row.id ? 1 : 0;
}

export function byRecordId(a: { record: { id: string } }, b: { record: { id: string } }): number {
  return a.record.id < b.record.id ? -1 : a.record.id > b.record.id ? 1 : 0;
}
