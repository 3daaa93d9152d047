/**
 * The sink: applies ChangeEvents to DES-layout tables in PostgreSQL or Azure SQL, version-guarded and
 * idempotent (docs/architecture.md §4, §5). `openSink` wires a dialect to the applier; nothing here writes SQL.
 */
import type { ChangeEvent } from '../change/change-event.js';
import { AppError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import { redactSecrets } from '../redact.js';
import { Applier, type ApplyOptions, type ApplyOutcome } from './applier.js';
import type { TargetDialect } from './dialect.js';
import { MssqlDialect, openMssqlPool } from './dialects/mssql.js';
import { classifyMssqlError } from './dialects/mssql-errors.js';
import { checkMssqlReadiness } from './dialects/mssql-readiness.js';
import { PostgresDialect } from './dialects/postgres.js';
import { classifyPostgresError } from './dialects/postgres-errors.js';
import { checkPostgresReadiness } from './dialects/postgres-readiness.js';
import { fold } from './dialects/postgres-sql.js';
import type { Readiness } from './dialects/readiness.js';
import { deleteLogTable, type EntityMetadata, metadataTables, tombstoneTable } from './side-tables.js';
import { assertTablePrefix, prefixedName } from './table-model.js';

export type { ApplyOptions, ApplyOutcome } from './applier.js';
export type { EntitySchema, EntitySchemaSource } from './schema-source.js';
export type {
  AttributeMetadataRow,
  EntityMetadata,
  GlobalOptionSetMetadataRow,
  OptionSetMetadataRow,
  StateMetadataRow,
  StatusMetadataRow,
  TargetMetadataRow,
} from './side-tables.js';
export type { AttributeSpec, AttributeSpecKind } from './table-model.js';

export type TargetKind = 'postgres' | 'mssql';

export interface SinkTarget {
  kind: TargetKind;
  connectionString: string;
  schema: string;
  tablePrefix: string;
  writeDeleteLog: boolean;
  /** Accept `TrustServerCertificate=true` in an Azure SQL connection string (development only). */
  allowTrustServerCertificate?: boolean;
}

export interface Sink {
  /** Applies a batch; one outcome per change, in input order. Throws TARGET_UNREACHABLE / TARGET_TRANSIENT. */
  applyBatch(changes: ChangeEvent[], options?: ApplyOptions): Promise<ApplyOutcome[]>;
  /** Replaces one entity's rows in the metadata tables for each list given. */
  writeMetadata(metadata: EntityMetadata): Promise<void>;
  /** Removes tombstones deleted (and last written) before `olderThan`; returns how many (cleanup timer). */
  purgeTombstones(olderThan: Date): Promise<number>;
  /**
   * Drops this target's tables of these entities and relationships (`<prefix>_<name>`), and their rows in
   * the side tables; a side table goes only once it is empty. Never touches another prefix's tables.
   * Returns the names of the tables dropped.
   */
  dropTables(entities: string[], relationships: string[]): Promise<string[]>;
  /** The folded column names of an entity's table as the target has them now, or undefined without the table. */
  readColumns(entity: string): Promise<string[] | undefined>;
  close(): Promise<void>;
}

export async function openSink(target: SinkTarget, logger: Logger = silentLogger): Promise<Sink> {
  assertTablePrefix(target.tablePrefix);
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(target.schema)) {
    throw new AppError(
      'ILLEGAL_IDENTIFIER',
      `target.schema ${JSON.stringify(target.schema)} is not a legal schema name: use letters, digits and underscores, starting with a letter or underscore (at most 63 characters).`,
      {
        details: [
          { field: 'target.schema', message: 'must match ^[A-Za-z_][A-Za-z0-9_]{0,62}$', value: target.schema },
        ],
      },
    );
  }
  const sides = {
    tombstone: tombstoneTable(target.tablePrefix).name,
    deleteLog: deleteLogTable(target.tablePrefix).name,
  };
  const dialect: TargetDialect =
    target.kind === 'postgres'
      ? new PostgresDialect(target.connectionString, target.schema, sides)
      : new MssqlDialect(
          openMssqlPool(target.connectionString, { allowTrustServerCertificate: target.allowTrustServerCertificate }),
          target.schema,
          sides,
        );
  // The longest name the sink makes must survive the target's identifier limit, or PostgreSQL would
  // silently truncate it and the sink would not find its own table again.
  const longest = metadataTables(target.tablePrefix).globalOptionSets.def.name;
  if (dialect.fold(longest).length > dialect.maxIdentifierLength) {
    await dialect.close();
    const room = dialect.maxIdentifierLength - (longest.length - target.tablePrefix.length);
    throw new AppError(
      'ILLEGAL_IDENTIFIER',
      `target.tablePrefix ${JSON.stringify(target.tablePrefix)} is too long for ${target.kind}: table names such as ${longest} would exceed ${dialect.maxIdentifierLength} characters. Use a prefix of at most ${room} characters.`,
      { details: [{ field: 'target.tablePrefix', message: `at most ${room} characters`, value: target.tablePrefix }] },
    );
  }
  const applier = new Applier(
    dialect,
    target.tablePrefix,
    target.writeDeleteLog,
    logger.child({ component: 'sink', target: target.kind }),
  );
  return {
    applyBatch: (changes, options) => applier.applyBatch(changes, options),
    writeMetadata: (metadata) => applier.writeMetadata(metadata),
    purgeTombstones: (olderThan) => applier.purgeTombstones(olderThan),
    dropTables: (entities, relationships) => applier.dropTables(entities, relationships),
    readColumns: async (entity) => {
      const columns = await dialect.readColumns(prefixedName(target.tablePrefix, entity));
      return columns && [...columns.keys()];
    },
    close: () => dialect.close(),
  };
}

/**
 * Connects and checks what the sink relies on in `schema` (rights, compatibility level, a writable database).
 * Throws TARGET_UNREACHABLE naming the driver's reason when it cannot connect, TARGET_MISCONFIGURED listing
 * each gap with the statement that closes it; answers the warnings (e.g. READ_COMMITTED_SNAPSHOT off).
 */
export async function probeTarget(
  kind: TargetKind,
  connectionString: string,
  schema: string = kind === 'mssql' ? 'dbo' : 'public',
  policy: { allowTrustServerCertificate?: boolean } = {},
): Promise<{ warnings: string[] }> {
  let readiness: Readiness;
  try {
    readiness =
      kind === 'postgres'
        ? await checkPostgresReadiness(connectionString, fold(schema))
        : await checkMssqlReadiness(connectionString, schema, policy);
  } catch (err) {
    if (err instanceof AppError) throw err;
    // A driver may echo what it was given (a host or database name): the connection string never leaves.
    const reason = redactSecrets((kind === 'postgres' ? classifyPostgresError(err) : classifyMssqlError(err)).reason, [
      connectionString,
    ]);
    throw new AppError(
      'TARGET_UNREACHABLE',
      `cannot connect to the ${kind === 'postgres' ? 'PostgreSQL' : 'Azure SQL'} target: ${reason}. Check the connection string's host, port, credentials and firewall rules.`,
      { cause: redactedCause(err, connectionString) },
    );
  }
  if (readiness.problems.length) {
    throw new AppError(
      'TARGET_MISCONFIGURED',
      `the target is not ready for the sink: ${readiness.problems.map((p) => `${p.message}; fix: ${p.fix}`).join(' — ')}`,
      { details: readiness.problems.map((p) => ({ field: p.field, message: p.message, value: p.fix })) },
    );
  }
  return { warnings: readiness.warnings };
}

/** The driver's error with its message redacted, keeping name and code for the logs. */
function redactedCause(err: unknown, connectionString: string): unknown {
  if (!(err instanceof Error)) return redactSecrets(String(err), [connectionString]);
  const code = (err as { code?: unknown }).code;
  return Object.assign(new Error(redactSecrets(err.message, [connectionString])), { name: err.name, code });
}
