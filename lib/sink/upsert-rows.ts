/**
 * Row encoding: each upsert's attributes rendered into the cells of its table's columns, rows grouped by
 * the columns they write (one statement per group), and delete rows. A value its column cannot hold fails
 * that record alone.
 */
import type { AttributeValue } from '../change/change-event.js';
import type { ApplyOutcome } from './apply-outcome.js';
import type { DeleteRow, TargetDialect, UpsertRow } from './dialect.js';
import type { RecordChange } from './record-change.js';
import { CellError, type Column, type ColumnType, entityTypeColumn, renderCell, toUtcIso } from './table-model.js';
import type { Columns, TableSchema } from './table-schema.js';
import { permanentFailure } from './target-failure.js';

/** Upserts that write the same columns (one statement per group), each with the plan its cells follow. */
export interface UpsertGroup {
  columns: Column[];
  entries: Array<{ record: RecordChange; plan: CellPlan }>;
}

/** The table an upsert group goes to, as rendering its rows needs it. */
export interface RenderTarget {
  dialect: TargetDialect;
  schema: TableSchema;
  table: string;
  entity: string;
}

/**
 * Groups upserts by the columns they write (one statement per group). Records of one shape (the same
 * attribute names in the same order, the same ones lookups or null) write the same cells, so the column
 * lookups and the sort are done once per shape, not once per row. Cells are rendered later, per slice.
 */
export function upsertGroups(
  dialect: TargetDialect,
  upserts: RecordChange[],
  columns: Columns,
): Map<string, UpsertGroup> {
  const groups = new Map<string, UpsertGroup>();
  const plans = new Map<string, CellPlan>();
  let plan: CellPlan | undefined;
  for (const record of upserts) {
    const attributes = record.attributes;
    const names = Object.keys(attributes);
    // Most records have the shape of the one before: compare with it before building a key.
    if (!plan || !hasShape(plan, names, attributes)) {
      let shape = '';
      for (const name of names) shape += `${name}${shapeTag(attributes[name])},`;
      plan = plans.get(shape);
      if (!plan) {
        plan = cellPlan(dialect, names, attributes, columns);
        plans.set(shape, plan);
      }
    }
    let group = plan.group;
    if (!group) {
      group = groups.get(plan.signature);
      if (!group) {
        group = { columns: plan.columns, entries: [] };
        groups.set(plan.signature, group);
      }
      plan.group = group;
    }
    group.entries.push({ record, plan });
  }
  return groups;
}

/** Renders the cells of these upserts; a value its column cannot hold fails that record alone. */
export function renderRows(
  target: RenderTarget,
  entries: UpsertGroup['entries'],
  outcomes: ApplyOutcome[],
): Array<{ record: RecordChange; row: UpsertRow }> {
  const { dialect, schema, table, entity } = target;
  const rows: Array<{ record: RecordChange; row: UpsertRow }> = [];
  for (const { record, plan } of entries) {
    const attributes = record.attributes;
    try {
      const cells: (string | null)[] = new Array(plan.columns.length).fill(null);
      for (const step of plan.steps) {
        const value = attributes[step.attribute];
        const cellValue: AttributeValue =
          step.companion && value.type === 'lookup' ? { type: 'string', value: value.entityType } : value;
        cells[step.slot] = renderCell(step.column, step.type, cellValue, dialect.textLengthUnit);
      }
      rows.push({
        record,
        row: {
          id: record.id,
          rowVersion: record.version.rowVersion ?? null,
          modifiedOn: timeCell(record.version.modifiedOn),
          cells,
        },
      });
    } catch (err) {
      if (!(err instanceof CellError)) throw err;
      outcomes[record.index] = permanentFailure(
        entity,
        record.id,
        schema.withKeptNote(table, err.message, err.column),
        err.column,
      );
    }
  }
  return rows;
}

/** Delete rows of these records, as the dialect writes them. */
export function deleteRows(deletes: RecordChange[]): Array<{ record: RecordChange; row: DeleteRow }> {
  return deletes.map((record) => ({
    record,
    row: {
      id: record.id,
      rowVersion: record.version.rowVersion ?? null,
      deletedOn: timeCell(record.version.modifiedOn),
      logs: record.logsDelete,
    },
  }));
}

/**
 * The cells a record of this shape writes, in the order they are rendered (a later cell for the same
 * column wins), and the sorted columns of its statement. Columns the table lacks are left out.
 */
function cellPlan(
  dialect: TargetDialect,
  names: string[],
  attributes: Record<string, AttributeValue>,
  columns: Columns,
): CellPlan {
  const steps: Array<Omit<CellStep, 'slot'>> = [];
  const written = new Set<string>();
  for (const name of names) {
    for (const [column, companion] of cellsForAttribute(name, attributes[name], columns)) {
      const type = columns.get(dialect.fold(column));
      if (!type) continue;
      steps.push({ attribute: name, column, type, companion });
      written.add(column);
    }
  }
  const sorted = [...written].sort();
  const slots = new Map(sorted.map((name, slot) => [name, slot]));
  return {
    names,
    tags: names.map((name) => shapeTag(attributes[name])),
    signature: sorted.join(','),
    columns: sorted.map((n) => ({ name: n, type: columns.get(dialect.fold(n))! })),
    steps: steps.map((step) => ({ ...step, slot: slots.get(step.column)! })),
  };
}

/**
 * The columns one attribute writes, each flagged when it is the lookup's companion: a lookup also writes
 * its entity type, a null clears both.
 */
function cellsForAttribute(name: string, value: AttributeValue, columns: Columns): Array<[string, boolean]> {
  const typeColumn = entityTypeColumn(name);
  if (value.type === 'lookup')
    return [
      [name, false],
      [typeColumn, true],
    ];
  if (value.type === 'null' && columns.has(typeColumn))
    return [
      [name, false],
      [typeColumn, true],
    ];
  return [[name, false]];
}

/** What sets a record's shape apart besides its attribute names (see cellsForAttribute). */
function shapeTag(value: AttributeValue): string {
  return value.type === 'lookup' ? ':l' : value.type === 'null' ? ':n' : '';
}

function hasShape(plan: CellPlan, names: string[], attributes: Record<string, AttributeValue>): boolean {
  if (names.length !== plan.names.length) return false;
  for (let i = 0; i < names.length; i++) {
    if (names[i] !== plan.names[i] || shapeTag(attributes[names[i]]) !== plan.tags[i]) return false;
  }
  return true;
}

/** One cell of a shape: which attribute it comes from, the column it fills and its slot in the row. */
interface CellStep {
  attribute: string;
  column: string;
  type: ColumnType;
  /** The lookup's `_entitytype` cell (the entity type of a lookup, null for a null). */
  companion: boolean;
  slot: number;
}

export interface CellPlan {
  /** The shape: attribute names in order, and the shapeTag of each. */
  names: string[];
  tags: string[];
  signature: string;
  columns: Column[];
  steps: CellStep[];
  group?: UpsertGroup;
}

/** A version time as both targets read it (validated by toRecordChange). */
function timeCell(time: string | undefined): string | null {
  return time === undefined ? null : (toUtcIso(time) ?? null);
}
