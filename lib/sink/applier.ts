/**
 * The writer: validates a batch, reduces it per record, makes sure tables and columns exist, and hands
 * set-based upserts and deletes to the dialect. A statement that fails for a data reason is split in
 * halves until the bad rows are isolated, so only they fail and the rest of the batch applies.
 */
import type { AttributeValue, ChangeEvent } from '../change/change-event.js';
import { assertLogicalName } from '../change/identifiers.js';
import { AppError, toAppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ApplyOutcome } from './apply-outcome.js';
import { type ColumnWidening, keptKey, sameColumnType, widenColumnsToSpecs } from './column-widening.js';
import type { ClassifiedFailure, DeleteRow, TableDef, TargetDialect, UpsertRow } from './dialect.js';
import { type RecordChange, toRecordChange } from './record-change.js';
import { reduceBatch } from './reduce.js';
import type { EntitySchemaSource } from './schema-source.js';
import {
  deleteLogTable,
  type EntityMetadata,
  insertColumns,
  type MetadataTable,
  metadataTables,
  tombstoneTable,
} from './side-tables.js';
import {
  type AttributeSpec,
  CellError,
  type Column,
  type ColumnType,
  columnsForAttribute,
  columnTypeForSpec,
  columnTypeForValue,
  entityTypeColumn,
  prefixedName,
  renderCell,
  systemColumns,
  toUtcIso,
} from './table-model.js';

export type { ApplyOutcome };

export interface ApplyOptions {
  /** Column types from Dataverse metadata, per entity; without them types are inferred from values. */
  attributeSpecs?: Record<string, AttributeSpec[]>;
  /**
   * Dataverse's metadata on demand: it types the columns of entities without `attributeSpecs`, refreshes
   * their metadata tables, and is asked again once before a record whose value does not fit is failed.
   */
  schema?: EntitySchemaSource;
}

const APPLIED: ApplyOutcome = { status: 'applied' };
const STALE: ApplyOutcome = { status: 'stale' };
/** Below this many rows per slice a second statement costs more than it saves. */
const MIN_SLICE_ROWS = 1_000;

type Columns = Map<string, ColumnType>;

export class Applier {
  /** Known columns per table (folded names), filled on first use and after each DDL. */
  private readonly tables = new Map<string, Columns>();
  private sideTables: Promise<void> | undefined;
  private schemaReady: Promise<void> | undefined;
  /** Why a column was left as it is although the metadata asks for more, per `table.column` (folded). */
  private readonly keptColumns = new Map<string, string>();
  /** The rows last written per metadata table and key, so an unchanged refresh writes nothing. */
  private readonly writtenMetadata = new Map<string, string>();

  constructor(
    private readonly dialect: TargetDialect,
    private readonly prefix: string,
    private readonly writeDeleteLog: boolean,
    private readonly logger: Logger,
  ) {}

  async applyBatch(changes: ChangeEvent[], options: ApplyOptions = {}): Promise<ApplyOutcome[]> {
    const outcomes: ApplyOutcome[] = new Array(changes.length);
    const specs = this.validSpecs(await this.specsFor(changes, options));
    const records: RecordChange[] = [];
    const fitting = new Set<string>();
    changes.forEach((change, index) => {
      try {
        const record = toRecordChange(change, index);
        this.assertFits(record, specs, fitting);
        records.push(record);
      } catch (err) {
        outcomes[index] = { status: 'failed', error: toAppError(err) };
      }
    });
    const { rounds, superseded } = reduceBatch(records);
    for (const record of superseded) outcomes[record.index] = STALE;
    if (rounds.length) await this.ensureSideTables();
    for (const round of rounds) {
      const byEntity = new Map<string, RecordChange[]>();
      for (const record of round) {
        const list = byEntity.get(record.entity);
        if (list) list.push(record);
        else byEntity.set(record.entity, [record]);
      }
      for (const [entity, list] of byEntity) {
        // assertFits already failed every change of an entity whose specs are illegal.
        const spec = specs.get(entity);
        try {
          const known = spec instanceof AppError ? undefined : spec;
          await this.applyTable(entity, list, known, outcomes);
          await this.retryAfterReread(entity, list, known, outcomes, options.schema);
        } catch (err) {
          if (!(err instanceof AppError) || err.transient) throw err;
          if (err.code === 'TABLE_LIMIT_EXCEEDED') {
            // No row is at fault: the entity's changes wait, and its table is read again next time (it may be altered).
            this.tables.delete(this.dialect.fold(prefixedName(this.prefix, entity)));
            for (const record of list) outcomes[record.index] ??= { status: 'waiting', error: err };
            continue;
          }
          // The target refused this table's DDL for good: fail its records, go on.
          for (const record of list) outcomes[record.index] ??= { status: 'failed', error: err };
        }
      }
    }
    return outcomes;
  }

  async writeMetadata(metadata: EntityMetadata): Promise<void> {
    assertLogicalName(metadata.entity, 'entity');
    const tables = metadataTables(this.prefix);
    const { entity } = metadata;
    const jobs: Array<{ def: TableDef; key: string; keyValue: string; rows: (string | null)[][] }> = [];
    const replace = <Row>(table: MetadataTable<Row>, rows: Row[] | undefined) => {
      if (rows)
        jobs.push({ def: table.def, key: table.key, keyValue: entity, rows: rows.map((r) => table.cells(entity, r)) });
    };
    replace(tables.optionSets, metadata.optionSets);
    replace(tables.states, metadata.states);
    replace(tables.statuses, metadata.statuses);
    replace(tables.targets, metadata.targets);
    replace(tables.attributes, metadata.attributes);
    if (metadata.globalOptionSets) {
      // Global option sets are shared by entities: each named set is replaced as a whole.
      const t = tables.globalOptionSets;
      for (const name of new Set(metadata.globalOptionSets.map((r) => r.optionSetName))) {
        const rows = metadata.globalOptionSets.filter((r) => r.optionSetName === name);
        jobs.push({ def: t.def, key: t.key, keyValue: name, rows: rows.map((r) => t.cells(entity, r)) });
      }
    }
    const changed = jobs.filter((job) => this.writtenMetadata.get(metadataKey(job)) !== JSON.stringify(job.rows));
    if (changed.length) await this.ensureSchema();
    for (const job of changed) {
      await this.guard(() => this.ensureTable(job.def));
      await this.guard(
        () => this.dialect.replaceRows(job.def.name, insertColumns(job.def), job.key, job.keyValue, job.rows),
        true,
      );
      this.writtenMetadata.set(metadataKey(job), JSON.stringify(job.rows));
    }
  }

  /**
   * The specs of each entity in the batch: the caller's, else Dataverse's through `options.schema` (whose
   * metadata rows are written too when they changed), else none, and types are inferred from values.
   */
  private async specsFor(changes: ChangeEvent[], options: ApplyOptions): Promise<Record<string, AttributeSpec[]>> {
    const given = options.attributeSpecs ?? {};
    if (!options.schema) return given;
    const all = { ...given };
    for (const entity of new Set(changes.map((c) => c.entity))) {
      if (all[entity]) continue;
      const specs = await this.describe(options.schema, entity, false);
      if (specs) all[entity] = specs;
    }
    return all;
  }

  /** Asks the schema source about an entity; its metadata rows are kept current on the way. */
  private async describe(
    source: EntitySchemaSource,
    entity: string,
    refresh: boolean,
  ): Promise<AttributeSpec[] | undefined> {
    let described: Awaited<ReturnType<EntitySchemaSource['describe']>>;
    try {
      described = await source.describe(entity, { refresh });
    } catch (err) {
      this.logger.warn('sink.schema.unavailable', { entity, error: toAppError(err) });
      return undefined;
    }
    if (!described) return undefined;
    try {
      await this.writeMetadata(described.metadata);
    } catch (err) {
      // A transient fault of the target surfaces with the batch's own writes; labels are reporting only.
      const error = toAppError(err);
      if (error.transient) throw error;
      this.logger.warn('sink.metadata.failed', { entity, error });
    }
    return described.specs;
  }

  /**
   * A value that does not fit its column (too long, too many digits) may mean Dataverse widened the
   * attribute since: read the metadata again once, widen what it now allows, and apply the failed upserts
   * again. Without a schema source the table is still read again (another applier may have widened it).
   */
  private async retryAfterReread(
    entity: string,
    records: RecordChange[],
    specs: Map<string, AttributeSpec> | undefined,
    outcomes: ApplyOutcome[],
    source: EntitySchemaSource | undefined,
  ): Promise<void> {
    const failed = records.filter((r) => {
      const outcome = outcomes[r.index];
      return r.kind === 'upsert' && outcome?.status === 'failed' && !outcome.error.transient;
    });
    if (!failed.length) return;
    const table = prefixedName(this.prefix, entity);
    const key = this.dialect.fold(table);
    const before = this.tables.get(key);
    let fresh = specs;
    const reread = source && (await this.describe(source, entity, true));
    if (reread) fresh = this.validSpecs({ [entity]: reread }).get(entity) as Map<string, AttributeSpec> | undefined;
    if (fresh instanceof AppError) return;
    this.tables.delete(key);
    const after = await this.guard(() => this.ensureEntityTable(table, failed, fresh));
    if (before && sameColumns(before, after)) return;
    this.logger.info('sink.records.retried', { table, records: failed.length });
    await this.applyTable(entity, failed, fresh, outcomes);
  }

  /** Removes tombstones older than `olderThan` (the cleanup timer's retention); returns how many. */
  purgeTombstones(olderThan: Date): Promise<number> {
    return this.guard(() => this.dialect.purgeTombstones(olderThan));
  }

  /**
   * Drops the tables of these entities and relationships under this sink's prefix, removes their rows from
   * the side tables, and drops a side table only when no other entity's rows are left in it, so a profile
   * sharing the prefix keeps its own. Returns the tables dropped (names before folding).
   */
  async dropTables(entities: string[], relationships: string[]): Promise<string[]> {
    for (const name of entities) assertLogicalName(name, 'entity');
    for (const name of relationships) assertLogicalName(name, 'relationship');
    const names = [...new Set([...entities, ...relationships])];
    const meta = metadataTables(this.prefix);
    const scoped = [
      tombstoneTable(this.prefix),
      deleteLogTable(this.prefix),
      meta.optionSets.def,
      meta.states.def,
      meta.statuses.def,
      meta.targets.def,
      meta.attributes.def,
    ];
    return this.guard(async () => {
      const dropped = await this.dialect.dropTables(names.map((n) => prefixedName(this.prefix, n)));
      const emptied: string[] = [];
      for (const def of scoped) {
        await this.dialect.deleteRowsWhereIn(def.name, 'EntityName', names);
        if (await this.dialect.isEmpty(def.name)) emptied.push(def.name);
      }
      dropped.push(...(await this.dialect.dropTables(emptied)));
      // Global option sets belong to no entity: they go when no entity-scoped metadata table is left.
      const metadataLeft = await Promise.all(scoped.slice(2).map((def) => this.dialect.readColumns(def.name)));
      if (metadataLeft.every((columns) => columns === undefined)) {
        dropped.push(...(await this.dialect.dropTables([meta.globalOptionSets.def.name])));
      }
      this.forgetSchema();
      return dropped;
    });
  }

  /** Specs per entity, or the ILLEGAL_IDENTIFIER error that makes every change of that entity fail. */
  private validSpecs(all: Record<string, AttributeSpec[]>): Map<string, Map<string, AttributeSpec> | AppError> {
    const out = new Map<string, Map<string, AttributeSpec> | AppError>();
    for (const [entity, specs] of Object.entries(all)) {
      try {
        for (const spec of specs) {
          assertLogicalName(spec.name, `attribute spec of ${entity}`);
          this.assertIdentifierLength(spec.kind === 'lookup' ? entityTypeColumn(spec.name) : spec.name);
        }
        out.set(entity, new Map(specs.map((s) => [s.name, s])));
      } catch (err) {
        out.set(entity, toAppError(err));
      }
    }
    return out;
  }

  /**
   * Names that the target would truncate are refused before any DDL, like illegal ones. `fitting` holds
   * the identifiers this batch already found short enough, so each is folded and measured once per batch.
   */
  private assertFits(record: RecordChange, specs: Map<string, unknown>, fitting: Set<string>): void {
    const table = prefixedName(this.prefix, record.entity);
    if (!fitting.has(table)) {
      this.assertIdentifierLength(table);
      fitting.add(table);
    }
    const attributes = record.attributes;
    for (const name of Object.keys(attributes)) {
      const column = attributes[name].type === 'lookup' ? entityTypeColumn(name) : name;
      if (fitting.has(column)) continue;
      this.assertIdentifierLength(column);
      fitting.add(column);
    }
    if (specs.get(record.entity) instanceof AppError) throw specs.get(record.entity);
  }

  private assertIdentifierLength(name: string): void {
    if (this.dialect.fold(name).length > this.dialect.maxIdentifierLength) {
      throw new AppError(
        'ILLEGAL_IDENTIFIER',
        `identifier ${JSON.stringify(name)} is longer than the ${this.dialect.maxIdentifierLength} characters ${this.dialect.kind} keeps; use a shorter table prefix or name`,
        {
          details: [
            { field: 'identifier', message: `at most ${this.dialect.maxIdentifierLength} characters`, value: name },
          ],
        },
      );
    }
  }

  private async ensureSchema(): Promise<void> {
    this.schemaReady ??= this.guard(() => this.dialect.ensureSchema()).catch((err) => {
      this.schemaReady = undefined;
      throw err;
    });
    return this.schemaReady;
  }

  /** Someone dropped what we cached (or we did): look at the target again on next use. */
  private forgetSchema(): void {
    this.tables.clear();
    this.writtenMetadata.clear();
    this.sideTables = undefined;
  }

  private ensureSideTables(): Promise<void> {
    this.sideTables ??= (async () => {
      await this.ensureSchema();
      await this.guard(() => this.ensureTable(tombstoneTable(this.prefix)));
      if (this.writeDeleteLog) await this.guard(() => this.ensureTable(deleteLogTable(this.prefix)));
    })().catch((err) => {
      this.sideTables = undefined;
      throw err;
    });
    return this.sideTables;
  }

  private async applyTable(
    entity: string,
    records: RecordChange[],
    specs: Map<string, AttributeSpec> | undefined,
    outcomes: ApplyOutcome[],
  ): Promise<void> {
    const table = prefixedName(this.prefix, entity);
    const upserts = records.filter((r) => r.kind === 'upsert');
    const deletes = records.filter((r) => r.kind === 'delete');
    const columns = await this.guard(() => this.ensureEntityTable(table, upserts, specs));

    // Upserts first, then deletes: the writer keeps the order the reduction produced. Rows go in id
    // order, so two appliers writing overlapping sets lock rows in the same order (fewer deadlocks).
    for (const group of this.upsertGroups(entity, upserts, columns, outcomes).values()) {
      group.rows.sort(byId);
      await this.writeSlices(group.rows, (slice) =>
        this.writeIsolating(
          table,
          entity,
          slice,
          (rows) => this.dialect.upsert({ table, entity, columns: group.columns, rows: rows.map((r) => r.row) }),
          outcomes,
        ),
      );
    }
    if (deletes.length) {
      const rows = deletes.map((record) => ({
        record,
        row: {
          id: record.id,
          rowVersion: record.version.rowVersion ?? null,
          deletedOn: timeCell(record.version.modifiedOn),
          logs: record.logsDelete,
        } satisfies DeleteRow,
      }));
      rows.sort(byId);
      await this.writeIsolating(
        table,
        entity,
        rows,
        (part) =>
          this.dialect.delete(
            { table, entity, rows: part.map((r) => r.row) },
            this.writeDeleteLog && part.some((r) => r.row.logs),
          ),
        outcomes,
      );
    }
  }

  /**
   * Renders each upsert's cells and groups rows that write the same columns (one statement per group).
   * Records of one shape (the same attribute names in the same order, the same ones lookups or null) write
   * the same cells, so the column lookups and the sort are done once per shape, not once per row.
   */
  private upsertGroups(entity: string, upserts: RecordChange[], columns: Columns, outcomes: ApplyOutcome[]) {
    const table = prefixedName(this.prefix, entity);
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
          plan = this.cellPlan(names, attributes, columns);
          plans.set(shape, plan);
        }
      }
      try {
        const cells: (string | null)[] = new Array(plan.columns.length).fill(null);
        for (const step of plan.steps) {
          const value = attributes[step.attribute];
          const cellValue: AttributeValue =
            step.companion && value.type === 'lookup' ? { type: 'string', value: value.entityType } : value;
          cells[step.slot] = renderCell(step.column, step.type, cellValue, this.dialect.textLengthUnit);
        }
        let group = plan.group;
        if (!group) {
          group = groups.get(plan.signature);
          if (!group) {
            group = { columns: plan.columns, rows: [] };
            groups.set(plan.signature, group);
          }
          plan.group = group;
        }
        group.rows.push({
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
          this.withKeptNote(table, err.message, err.column),
          err.column,
        );
      }
    }
    return groups;
  }

  /**
   * The cells a record of this shape writes, in the order they are rendered (a later cell for the same
   * column wins), and the sorted columns of its statement. Columns the table lacks are left out.
   */
  private cellPlan(names: string[], attributes: Record<string, AttributeValue>, columns: Columns): CellPlan {
    const steps: Array<Omit<CellStep, 'slot'>> = [];
    const written = new Set<string>();
    for (const name of names) {
      for (const [column, companion] of cellsForAttribute(name, attributes[name], columns)) {
        const type = columns.get(this.dialect.fold(column));
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
      columns: sorted.map((n) => ({ name: n, type: columns.get(this.dialect.fold(n))! })),
      steps: steps.map((step) => ({ ...step, slot: slots.get(step.column)! })),
    };
  }

  /**
   * Cuts a large id-ordered set into contiguous slices written at the same time on separate connections,
   * as far as the dialect allows, so the target works on one slice while we send or read another. Each
   * slice is a statement of its own, as each isolating half already is: rows still lock in id order, and
   * outcomes do not depend on the cut. Every slice is awaited before an error is passed on.
   */
  private async writeSlices<R>(rows: R[], write: (slice: R[]) => Promise<void>): Promise<void> {
    const parallel = Math.min(this.dialect.parallelWrites ?? 1, Math.floor(rows.length / MIN_SLICE_ROWS));
    if (parallel <= 1) return write(rows);
    const size = Math.ceil(rows.length / parallel);
    const slices: R[][] = [];
    for (let at = 0; at < rows.length; at += size) slices.push(rows.slice(at, at + size));
    const settled = await Promise.allSettled(slices.map(write));
    for (const result of settled) if (result.status === 'rejected') throw result.reason;
  }

  /**
   * Runs a set-based write; on a data error splits the set in halves until single rows fail on their own, and
   * on a timeout writes it again in halves (a single row that still times out is transient). Outage, database
   * and transient errors abort the whole batch (the caller keeps it queued).
   */
  private async writeIsolating<R extends { record: RecordChange; row: { id: string } }>(
    table: string,
    entity: string,
    rows: R[],
    write: (rows: R[]) => Promise<Set<string>>,
    outcomes: ApplyOutcome[],
  ): Promise<void> {
    if (!rows.length) return;
    const max = this.dialect.maxRowsPerStatement;
    if (max && rows.length > max) {
      for (let at = 0; at < rows.length; at += max) {
        await this.writeIsolating(table, entity, rows.slice(at, at + max), write, outcomes);
      }
      return;
    }
    let applied: Set<string>;
    try {
      applied = await write(rows);
    } catch (err) {
      const failure = this.dialect.classify(err);
      if (failure.class === 'schemaStale') this.forgetSchema();
      const halving = failure.class === 'timeout' && rows.length > 1;
      if (halving) this.logger.info('sink.statement.halved', { entity, rows: rows.length, reason: failure.reason });
      else if (failure.class !== 'permanent' && failure.class !== 'schemaRace') throw batchError(failure, err);
      if (rows.length === 1) {
        const { record } = rows[0];
        outcomes[record.index] = permanentFailure(
          entity,
          record.id,
          this.withKeptNote(table, failure.reason, failure.column),
          failure.column,
        );
        this.logger.warn('sink.record.failed', { entity, recordId: record.id, reason: failure.reason });
        return;
      }
      const half = Math.ceil(rows.length / 2);
      await this.writeIsolating(table, entity, rows.slice(0, half), write, outcomes);
      await this.writeIsolating(table, entity, rows.slice(half), write, outcomes);
      return;
    }
    for (const { record, row } of rows) outcomes[record.index] = applied.has(row.id) ? APPLIED : STALE;
  }

  /** Creates the entity table or adds missing columns; returns the table's columns as they are in the target. */
  private async ensureEntityTable(
    table: string,
    upserts: RecordChange[],
    specs: Map<string, AttributeSpec> | undefined,
  ): Promise<Columns> {
    const wanted = new Map<string, Column>();
    const want = (name: string, type: ColumnType, isLookup: boolean) => {
      if (wanted.has(name)) return;
      for (const column of columnsForAttribute(name, type, isLookup)) wanted.set(column.name, column);
    };
    for (const spec of specs?.values() ?? []) want(spec.name, columnTypeForSpec(spec), spec.kind === 'lookup');
    for (const record of upserts) {
      for (const [name, value] of Object.entries(record.attributes)) {
        if (wanted.has(name)) continue;
        const type = columnTypeForValue(name, value);
        if (type) want(name, type, value.type === 'lookup');
      }
    }
    const columns = await this.ensureTable({
      name: table,
      columns: [...systemColumns(), ...wanted.values()],
      primaryKey: ['Id'],
    });
    if (!specs?.size) return columns;
    const widening: ColumnWidening = {
      dialect: this.dialect,
      logger: this.logger,
      kept: this.keptColumns,
      retry: (ddl) => this.retryingRace(ddl),
    };
    const widened = await widenColumnsToSpecs(widening, table, columns, specs.values());
    if (widened !== columns) this.tables.set(this.dialect.fold(table), widened);
    return widened;
  }

  private async ensureTable(def: TableDef): Promise<Columns> {
    const key = this.dialect.fold(def.name);
    let columns = this.tables.get(key) ?? (await this.dialect.readColumns(def.name));
    if (!columns) {
      this.assertTableFits(def.name, def.columns, def.columns);
      await this.retryingRace(() => this.dialect.createTable(def));
      columns = await this.dialect.readColumns(def.name);
    }
    const missing = def.columns.filter((c) => !columns!.has(this.dialect.fold(c.name)));
    if (missing.length) {
      const present = [...columns!].map(([name, type]) => ({ name, type }));
      this.assertTableFits(def.name, [...present, ...missing], missing);
      this.logger.info('sink.columns.add', { table: def.name, columns: missing.map((c) => c.name) });
      await this.retryingRace(() => this.dialect.addColumns(def.name, missing));
      columns = await this.dialect.readColumns(def.name);
    }
    if (!columns) throw new AppError('TARGET_TRANSIENT', `table ${def.name} vanished while it was being created`);
    this.tables.set(key, columns);
    return columns;
  }

  /** A record's failure reason, with why its column was not widened when the metadata asked for more. */
  private withKeptNote(table: string, reason: string, column: string | undefined): string {
    const note = column && this.keptColumns.get(keptKey(this.dialect, table, column));
    return note ? `${reason}. ${note}` : reason;
  }

  /** A table the target cannot hold makes its entity wait with one error naming the columns, before any DDL. */
  private assertTableFits(table: string, columns: Column[], adding: Column[]): void {
    const problem = this.dialect.tableLimitProblem?.(table, columns, adding);
    if (problem) {
      throw new AppError('TABLE_LIMIT_EXCEEDED', problem, {
        details: adding.map((c) => ({ field: c.name, message: 'does not fit the table', value: table })),
      });
    }
  }

  /** Another applier may create the same table or column between our check and our DDL: retry once. */
  private async retryingRace(ddl: () => Promise<void>): Promise<void> {
    try {
      await ddl();
    } catch (err) {
      if (this.dialect.classify(err).class !== 'schemaRace') throw err;
      await ddl();
    }
  }

  /** Turns driver errors of schema and metadata work into AppErrors; data errors there are permanent. */
  private async guard<T>(work: () => Promise<T>, dataErrorsArePermanent = false): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (err instanceof AppError) throw err;
      const failure = this.dialect.classify(err);
      if (failure.class === 'schemaStale') this.forgetSchema();
      if (failure.class === 'permanent' && dataErrorsArePermanent) {
        throw new AppError('TARGET_PERMANENT', failure.reason, { cause: err });
      }
      throw batchError(failure, err);
    }
  }
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

interface UpsertGroup {
  columns: Column[];
  rows: Array<{ record: RecordChange; row: UpsertRow }>;
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

interface CellPlan {
  /** The shape: attribute names in order, and the shapeTag of each. */
  names: string[];
  tags: string[];
  signature: string;
  columns: Column[];
  steps: CellStep[];
  group?: UpsertGroup;
}

function metadataKey(job: { def: TableDef; keyValue: string }): string {
  return `${job.def.name}\u0000${job.keyValue}`;
}

function sameColumns(a: Columns, b: Columns): boolean {
  if (a.size !== b.size) return false;
  for (const [name, type] of a) {
    const other = b.get(name);
    if (!other || !sameColumnType(type, other)) return false;
  }
  return true;
}

function byId(a: { row: { id: string } }, b: { row: { id: string } }): number {
  return a.row.id < b.row.id ? -1 : a.row.id > b.row.id ? 1 : 0;
}

/** A version time as both targets read it (validated by toRecordChange). */
function timeCell(time: string | undefined): string | null {
  return time === undefined ? null : (toUtcIso(time) ?? null);
}

function permanentFailure(entity: string, id: string, reason: string, column?: string): ApplyOutcome {
  const where = column ? ` (column ${column})` : '';
  return {
    status: 'failed',
    error: new AppError('TARGET_PERMANENT', `${entity} ${id}${where}: ${reason}`, {
      details: [{ field: column ?? entity, message: reason, value: id }],
    }),
  };
}

function batchError(failure: ClassifiedFailure, cause: unknown): AppError {
  // What to do travels as the one detail, so the pipeline can show it on the profile's status.
  const details = failure.action ? [{ field: 'target', message: failure.action }] : [];
  switch (failure.class) {
    case 'unreachable':
      return new AppError('TARGET_UNREACHABLE', `the target database cannot be reached: ${failure.reason}`, {
        cause,
        details,
      });
    case 'unavailable':
      return new AppError('TARGET_UNAVAILABLE', `the target database cannot take writes: ${failure.reason}`, {
        cause,
        details,
      });
    case 'misconfigured':
      return new AppError('TARGET_MISCONFIGURED', `the target is not set up for this profile: ${failure.reason}`, {
        cause,
        details,
      });
    case 'timeout':
    case 'transient':
    case 'schemaStale':
    case 'schemaRace':
      return new AppError('TARGET_TRANSIENT', `the target database refused the write for now: ${failure.reason}`, {
        cause,
      });
    case 'permanent':
      return new AppError('TARGET_PERMANENT', `the target database refused the statement: ${failure.reason}`, {
        cause,
      });
  }
}
