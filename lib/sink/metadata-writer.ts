/**
 * Writes Dataverse's labels (option sets, states, statuses, lookup targets, attributes) into the metadata
 * tables, one entity's rows replaced at a time; rows unchanged since the last write are not written again.
 */
import { assertLogicalName } from '../change/identifiers.js';
import type { TableDef, TargetDialect } from './dialect.js';
import { type EntityMetadata, insertColumns, type MetadataTable, metadataTables } from './side-tables.js';
import type { TableSchema } from './table-schema.js';

interface ReplaceJob {
  def: TableDef;
  key: string;
  keyValue: string;
  rows: (string | null)[][];
}

export class MetadataWriter {
  /** The rows last written per metadata table and key, so an unchanged refresh writes nothing. */
  private readonly written = new Map<string, string>();

  constructor(
    private readonly dialect: TargetDialect,
    private readonly schema: TableSchema,
    private readonly prefix: string,
  ) {
    schema.onForget(() => this.written.clear());
  }

  async write(metadata: EntityMetadata): Promise<void> {
    assertLogicalName(metadata.entity, 'entity');
    const tables = metadataTables(this.prefix);
    const { entity } = metadata;
    const jobs: ReplaceJob[] = [];
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
    const changed = jobs.filter((job) => this.written.get(metadataKey(job)) !== JSON.stringify(job.rows));
    if (changed.length) await this.schema.ensureSchema();
    for (const job of changed) {
      await this.schema.guard(() => this.schema.ensureTable(job.def));
      await this.schema.guard(
        () => this.dialect.replaceRows(job.def.name, insertColumns(job.def), job.key, job.keyValue, job.rows),
        true,
      );
      this.written.set(metadataKey(job), JSON.stringify(job.rows));
    }
  }
}

function metadataKey(job: { def: TableDef; keyValue: string }): string {
  return `${job.def.name}\u0000${job.keyValue}`;
}
