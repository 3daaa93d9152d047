/**
 * The writer: validates a batch, reduces it per record, makes sure tables and columns exist, and hands
 * set-based upserts and deletes to the dialect, isolating bad rows (bisect.ts) so only they fail.
 */
import type { ChangeEvent } from '../change/change-event.js';
import { assertLogicalName } from '../change/identifiers.js';
import { AppError, toAppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ApplyOutcome } from './apply-outcome.js';
import { type BisectContext, byId, byRecordId, writeIsolating, writeSlices } from './bisect.js';
import type { TargetDialect } from './dialect.js';
import { MetadataWriter } from './metadata-writer.js';
import { type RecordChange, toRecordChange } from './record-change.js';
import { reduceBatch } from './reduce.js';
import type { EntitySchemaSource } from './schema-source.js';
import { deleteLogTable, type EntityMetadata, metadataTables, tombstoneTable } from './side-tables.js';
import { type AttributeSpec, entityTypeColumn, prefixedName } from './table-model.js';
import { sameColumns, TableSchema } from './table-schema.js';
import { deleteRows, renderRows, upsertGroups } from './upsert-rows.js';

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

const STALE: ApplyOutcome = { status: 'stale' };

export class Applier {
  private readonly schema: TableSchema;
  private readonly metadata: MetadataWriter;
  private readonly bisect: BisectContext;

  constructor(
    private readonly dialect: TargetDialect,
    private readonly prefix: string,
    private readonly writeDeleteLog: boolean,
    private readonly logger: Logger,
  ) {
    this.schema = new TableSchema(dialect, prefix, writeDeleteLog, logger);
    this.metadata = new MetadataWriter(dialect, this.schema, prefix);
    this.bisect = { dialect, schema: this.schema, logger };
  }

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
    if (rounds.length) await this.schema.ensureSideTables();
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
            this.schema.invalidate(prefixedName(this.prefix, entity));
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

  writeMetadata(metadata: EntityMetadata): Promise<void> {
    return this.metadata.write(metadata);
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
      await this.metadata.write(described.metadata);
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
    const before = this.schema.cached(table);
    let fresh = specs;
    const reread = source && (await this.describe(source, entity, true));
    if (reread) fresh = this.validSpecs({ [entity]: reread }).get(entity) as Map<string, AttributeSpec> | undefined;
    if (fresh instanceof AppError) return;
    this.schema.invalidate(table);
    const after = await this.schema.guard(() => this.schema.ensureEntityTable(table, failed, fresh));
    if (before && sameColumns(before, after)) return;
    this.logger.info('sink.records.retried', { table, records: failed.length });
    await this.applyTable(entity, failed, fresh, outcomes);
  }

  /** Removes tombstones older than `olderThan` (the cleanup timer's retention); returns how many. */
  purgeTombstones(olderThan: Date): Promise<number> {
    return this.schema.guard(() => this.dialect.purgeTombstones(olderThan));
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
    return this.schema.guard(async () => {
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
      this.schema.forget();
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

  private async applyTable(
    entity: string,
    records: RecordChange[],
    specs: Map<string, AttributeSpec> | undefined,
    outcomes: ApplyOutcome[],
  ): Promise<void> {
    const table = prefixedName(this.prefix, entity);
    const upserts = records.filter((r) => r.kind === 'upsert');
    const deletes = records.filter((r) => r.kind === 'delete');
    const columns = await this.schema.guard(() => this.schema.ensureEntityTable(table, upserts, specs));

    // Upserts first, then deletes: the writer keeps the order the reduction produced. Rows go in id
    // order, so two appliers writing overlapping sets lock rows in the same order (fewer deadlocks).
    const target = { dialect: this.dialect, schema: this.schema, table, entity };
    for (const group of upsertGroups(this.dialect, upserts, columns).values()) {
      group.entries.sort(byRecordId);
      await writeSlices(this.dialect, group.entries, (slice) =>
        writeIsolating(
          this.bisect,
          table,
          entity,
          renderRows(target, slice, outcomes),
          (rows) => this.dialect.upsert({ table, entity, columns: group.columns, rows: rows.map((r) => r.row) }),
          outcomes,
        ),
      );
    }
    if (deletes.length) {
      const rows = deleteRows(deletes).sort(byId);
      await writeIsolating(
        this.bisect,
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
}
