/**
 * Schema evolution of an existing column: Dataverse's metadata may describe an attribute wider than its
 * column (a longer text, more digits, int → bigint). A column only ever widens, and only where every value
 * it holds survives; anything else leaves the column as it is and says why.
 */
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { TargetDialect } from './dialect.js';
import { type AttributeSpec, type ColumnType, columnTypeForSpec, describeType } from './table-model.js';

/** Most digits a decimal column takes in both targets. */
const MAX_DECIMAL_PRECISION = 38;

export type ColumnChange =
  /** The column already holds every value the metadata allows (equal or wider): nothing to do. */
  | { action: 'keep' }
  /** Altering the column to `to` loses nothing and makes it hold what the metadata allows. */
  | { action: 'widen'; to: ColumnType }
  /** The metadata asks for what the column cannot become without loss: it stays; `reason` says what to do. */
  | { action: 'refuse'; reason: string };

/** What to do with column `name` of type `current` when the metadata asks for `wanted`. */
export function planColumnChange(name: string, current: ColumnType, wanted: ColumnType): ColumnChange {
  if (current.kind === 'text' && wanted.kind === 'text') {
    if (current.maxLength === undefined) return KEEP;
    if (wanted.maxLength === undefined || wanted.maxLength > current.maxLength) return { action: 'widen', to: wanted };
    return KEEP;
  }
  if (current.kind === wanted.kind && current.kind !== 'decimal') return KEEP;
  if (current.kind === 'bigint' && wanted.kind === 'integer') return KEEP;
  if (current.kind === 'integer' && wanted.kind === 'bigint') return { action: 'widen', to: wanted };
  if (current.kind === 'decimal' && wanted.kind === 'decimal') return planDecimal(name, current, wanted);
  return {
    action: 'refuse',
    reason: `Dataverse now describes ${name} as ${describeType(wanted)} but its column is ${describeType(current)}; the export never changes a column's type. Alter or drop the column by hand (a dropped column is created again with the new type), then resync the failed records`,
  };
}

/** A decimal widens to hold both its integer digits and its scale and the metadata's, within 38 digits. */
function planDecimal(name: string, current: ColumnType, wanted: ColumnType): ColumnChange {
  const scale = Math.max(current.scale ?? 0, wanted.scale ?? 0);
  const integerDigits = Math.max(digitsBeforePoint(current), digitsBeforePoint(wanted));
  if (scale === (current.scale ?? 0) && integerDigits === digitsBeforePoint(current)) return KEEP;
  const precision = integerDigits + scale;
  if (precision > MAX_DECIMAL_PRECISION) {
    return {
      action: 'refuse',
      reason: `Dataverse now describes ${name} as ${describeType(wanted)}; holding that and what its column ${describeType(current)} holds needs ${precision} digits, more than the ${MAX_DECIMAL_PRECISION} a decimal column takes. Alter the column by hand, then resync the failed records`,
    };
  }
  return { action: 'widen', to: { kind: 'decimal', precision, scale } };
}

function digitsBeforePoint(type: ColumnType): number {
  return (type.precision ?? MAX_DECIMAL_PRECISION) - (type.scale ?? 0);
}

const KEEP: ColumnChange = { action: 'keep' };

/** Whether two column types are the same type (what a widening checks before it alters). */
export function sameColumnType(a: ColumnType, b: ColumnType): boolean {
  return a.kind === b.kind && a.maxLength === b.maxLength && a.precision === b.precision && a.scale === b.scale;
}

/** What widening the columns of a table needs from the applier. */
export interface ColumnWidening {
  dialect: Pick<TargetDialect, 'fold' | 'readColumns' | 'widenColumn' | 'classify' | 'tableLimitProblem'>;
  logger: Logger;
  /** Why a column was kept although the metadata asks for more, per keptKey; read into failure reasons. */
  kept: Map<string, string>;
  /** Runs DDL, once more if another applier raced it. */
  retry(ddl: () => Promise<void>): Promise<void>;
}

export function keptKey(dialect: Pick<TargetDialect, 'fold'>, table: string, column: string): string {
  return `${dialect.fold(table)}.${dialect.fold(column)}`;
}

/**
 * Widens each column of `table` that the specs describe wider than it is, where that loses nothing; notes
 * (and logs once) each column that stays although the metadata asks for another type. Returns the
 * table's columns as they are afterwards (`columns` itself when nothing was altered).
 */
export async function widenColumnsToSpecs(
  step: ColumnWidening,
  table: string,
  columns: Map<string, ColumnType>,
  specs: Iterable<AttributeSpec>,
): Promise<Map<string, ColumnType>> {
  const { dialect, logger, kept } = step;
  let altered = false;
  for (const spec of specs) {
    const current = columns.get(dialect.fold(spec.name));
    if (!current) continue;
    const key = keptKey(dialect, table, spec.name);
    let change = planColumnChange(spec.name, current, columnTypeForSpec(spec));
    if (change.action === 'widen') {
      const to = change.to;
      const all = [...columns].map(([name, type]) => ({ name, type: name === dialect.fold(spec.name) ? to : type }));
      const problem = dialect.tableLimitProblem?.(table, all, [{ name: spec.name, type: to }]);
      if (problem)
        change = { action: 'refuse', reason: `${spec.name} was not widened to ${describeType(to)}: ${problem}` };
    }
    if (change.action === 'keep') {
      kept.delete(key);
      continue;
    }
    if (change.action === 'refuse') {
      if (kept.get(key) !== change.reason)
        logger.warn('sink.column.kept', { table, column: spec.name, reason: change.reason });
      kept.set(key, change.reason);
      continue;
    }
    const to = change.to;
    try {
      let widened = false;
      await step.retry(async () => {
        widened = await dialect.widenColumn(table, spec.name, current, to);
      });
      logger.info('sink.column.widen', {
        table,
        column: spec.name,
        from: describeType(current),
        to: describeType(to),
        ...(widened ? {} : { already: 'changed by someone else' }),
      });
      kept.delete(key);
      altered = true;
    } catch (err) {
      const failure = dialect.classify(err);
      if (failure.class !== 'permanent') throw err;
      const reason = `the target refused to widen ${spec.name} from ${describeType(current)} to ${describeType(to)} (${failure.reason}); alter the column by hand, then resync the failed records`;
      logger.warn('sink.column.kept', { table, column: spec.name, reason });
      kept.set(key, reason);
    }
  }
  if (!altered) return columns;
  const now = await dialect.readColumns(table);
  if (!now) throw new AppError('TARGET_TRANSIENT', `table ${table} vanished while a column was being widened`);
  return now;
}
