/**
 * One suite, every engine: `describeEachEngine` runs a suite once per target database, with the same
 * assertions. PostgreSQL (the embedded server) always runs; SQL Server runs when `MSSQL_TEST_URL` holds an
 * ADO connection string to a database the tests may create and drop schemas in (`npm run test:mssql`).
 * Each test gets its own schema on SQL Server (one database, many schemas) and its own database on
 * PostgreSQL, so tests never see each other's rows.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'node:test';
import mssql from 'mssql';
import { startEmbeddedPostgres } from '../../dev/embedded/postgres.js';
import { mssqlConfig } from '../../lib/mssql-config.js';
import { connectClient } from '../../lib/postgres-pool.js';
import type { TargetDialect } from '../../lib/sink/dialect.js';
import { MssqlDialect, openMssqlPool } from '../../lib/sink/dialects/mssql.js';
import { PostgresDialect } from '../../lib/sink/dialects/postgres.js';
import type { TargetKind } from '../../lib/sink/index.js';
import type { ColumnType } from '../../lib/sink/table-model.js';
import { createTestDatabase } from './postgres.js';
import { startTcpRelay } from './tcp-relay.js';

export interface EngineDatabase extends AsyncDisposable {
  kind: TargetKind;
  connectionString: string;
  /** The schema this test owns (sink target schema; control-store schema). */
  schema: string;
  /**
   * Rows of `schema.table` with the named columns, ordered by the first; keys in lower case and values
   * made comparable across engines: times as ISO text, numbers as plain digits, GUIDs in lower case.
   */
  select(table: string, columns: string[], schema?: string): Promise<Record<string, unknown>[]>;
  count(table: string, schema?: string): Promise<number>;
  /** The table's columns as the sink reads them (portable types), keyed by lower-case name. */
  columnTypes(table: string): Promise<Record<string, ColumnType> | undefined>;
  /** Runs a statement of this engine (for tests that prepare a target by hand, e.g. a table DES created). */
  execute(text: string): Promise<void>;
}

/** Reads columns through the dialect itself, so both engines answer in the same portable types. */
async function columnTypesVia(dialect: TargetDialect, table: string): Promise<Record<string, ColumnType> | undefined> {
  try {
    const columns = await dialect.readColumns(table);
    return columns && Object.fromEntries(columns);
  } finally {
    await dialect.close();
  }
}

const NO_SIDES = { tombstone: 'Tombstone', deleteLog: 'DeleteLog' };

/**
 * A database a test can make unavailable to `connectionString` (and to every sink and pool using it) and
 * bring back, for outage tests. Reads through `select`/`count` go around the outage.
 */
export interface InterruptibleDatabase extends EngineDatabase {
  /** Connections are refused from now on; open ones are broken. */
  takeDown(): Promise<void>;
  /** The database takes connections again, on the same address. */
  bringBack(): Promise<void>;
}

export interface TestEngine {
  kind: TargetKind;
  createDatabase(): Promise<EngineDatabase>;
  /**
   * PostgreSQL: a server of the test's own, really stopped and started again. SQL Server: the test's schema
   * reached through a local TCP relay that is cut and restored (the server's certificate must then be trusted
   * for 127.0.0.1, as a development server with a self-signed certificate is).
   */
  createInterruptibleDatabase(): Promise<InterruptibleDatabase>;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** One value as both engines' drivers agree on it. */
function comparable(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') {
    if (GUID.test(value)) return value.toLowerCase();
    // numeric(38,4) answers '1.5000' on PostgreSQL, decimal answers 1.5 on SQL Server.
    if (/^-?\d+\.\d+$/.test(value)) return value.replace(/\.?0+$/, '');
  }
  return value;
}

function comparableRows(rows: Record<string, unknown>[]): Record<string, unknown>[] {
  return rows.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k.toLowerCase(), comparable(v)])));
}

const postgres: TestEngine = {
  kind: 'postgres',
  async createDatabase() {
    const db = await createTestDatabase();
    const q = (name: string) => `"${name.toLowerCase()}"`;
    return {
      kind: 'postgres',
      connectionString: db.url,
      schema: 'public',
      async select(table, columns, schema = 'public') {
        const list = columns.map(q).join(', ');
        const result = await db.pool.query(`SELECT ${list} FROM ${q(schema)}.${q(table)} ORDER BY ${q(columns[0])}`);
        return comparableRows(result.rows);
      },
      async count(table, schema = 'public') {
        const result = await db.pool.query(`SELECT count(*)::int AS n FROM ${q(schema)}.${q(table)}`);
        return result.rows[0].n;
      },
      columnTypes: (table) => columnTypesVia(new PostgresDialect(db.url, 'public', NO_SIDES), table),
      async execute(text) {
        await db.pool.query(text);
      },
      [Symbol.asyncDispose]: () => db[Symbol.asyncDispose](),
    };
  },
  async createInterruptibleDatabase() {
    const dir = mkdtempSync(join(tmpdir(), 'dvx-outage-'));
    let server = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), fresh: true });
    const { port, url } = server;
    const q = (name: string) => `"${name.toLowerCase()}"`;
    // A client per read: the test's own reads must not hold connections across the stop.
    const query = async (text: string) => {
      const client = await connectClient(url);
      try {
        return (await client.query(text)).rows;
      } finally {
        await client.end();
      }
    };
    return {
      kind: 'postgres',
      connectionString: url,
      schema: 'public',
      async select(table, columns, schema = 'public') {
        const list = columns.map(q).join(', ');
        return comparableRows(await query(`SELECT ${list} FROM ${q(schema)}.${q(table)} ORDER BY ${q(columns[0])}`));
      },
      async count(table, schema = 'public') {
        return (await query(`SELECT count(*)::int AS n FROM ${q(schema)}.${q(table)}`))[0].n;
      },
      columnTypes: (table) => columnTypesVia(new PostgresDialect(url, 'public', NO_SIDES), table),
      async execute(text) {
        await query(text);
      },
      takeDown: () => server.stop(),
      async bringBack() {
        server = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), port });
      },
      async [Symbol.asyncDispose]() {
        await server.stop().catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

/** The connection string with its server replaced by the relay's loopback address. */
function throughRelay(connectionString: string, port: number): string {
  const server = /(^|;)\s*(server|data source|address|addr|network address)\s*=\s*[^;]*/i;
  return connectionString.replace(server, `$1Server=tcp:127.0.0.1,${port}`);
}

function sqlServer(connectionString: string): TestEngine {
  let pool: Promise<mssql.ConnectionPool> | undefined;
  const connect = () => {
    pool ??= new mssql.ConnectionPool(mssqlConfig(connectionString, { allowTrustServerCertificate: true })).connect();
    return pool;
  };
  const engine: TestEngine = {
    kind: 'mssql',
    async createInterruptibleDatabase() {
      const db = await engine.createDatabase();
      const config = mssqlConfig(connectionString, { allowTrustServerCertificate: true });
      const relay = await startTcpRelay(config.server, config.port ?? 1433);
      return {
        ...db,
        connectionString: throughRelay(connectionString, relay.port),
        takeDown: () => relay.cut(),
        bringBack: () => relay.restore(),
        async [Symbol.asyncDispose]() {
          await relay.close();
          await db[Symbol.asyncDispose]();
        },
      };
    },
    async createDatabase() {
      const own = await connect();
      const schema = `t_${randomBytes(6).toString('hex')}`;
      await own.request().batch(`CREATE SCHEMA [${schema}]`);
      const q = (name: string) => `[${name}]`;
      return {
        kind: 'mssql',
        connectionString,
        schema,
        async select(table, columns, inSchema = schema) {
          const list = columns.map(q).join(', ');
          const result = await own
            .request()
            .query(`SELECT ${list} FROM ${q(inSchema)}.${q(table)} ORDER BY ${q(columns[0])}`);
          return comparableRows(result.recordset);
        },
        async count(table, inSchema = schema) {
          const result = await own.request().query(`SELECT COUNT(*) AS n FROM ${q(inSchema)}.${q(table)}`);
          return Number(result.recordset[0].n);
        },
        columnTypes: (table) =>
          columnTypesVia(new MssqlDialect(openMssqlPool(connectionString), schema, NO_SIDES), table),
        async execute(text) {
          await own.request().batch(text);
        },
        async [Symbol.asyncDispose]() {
          // Foreign keys first, then every table of the test's schemas, then the schemas.
          await own.request().batch(`DECLARE @drop nvarchar(max) = N'';
SELECT @drop += N'ALTER TABLE ' + QUOTENAME(s.name) + N'.' + QUOTENAME(t.name) + N' DROP CONSTRAINT ' + QUOTENAME(f.name) + N';'
FROM sys.foreign_keys AS f JOIN sys.tables AS t ON t.object_id = f.parent_object_id JOIN sys.schemas AS s ON s.schema_id = t.schema_id
WHERE s.name LIKE N'${schema}%';
SELECT @drop += N'DROP TABLE ' + QUOTENAME(s.name) + N'.' + QUOTENAME(t.name) + N';'
FROM sys.tables AS t JOIN sys.schemas AS s ON s.schema_id = t.schema_id WHERE s.name LIKE N'${schema}%';
SELECT @drop += N'DROP SCHEMA ' + QUOTENAME(s.name) + N';' FROM sys.schemas AS s WHERE s.name LIKE N'${schema}%';
EXEC sp_executesql @drop;`);
        },
      };
    },
  };
  return engine;
}

/** The engines this run covers: PostgreSQL always, SQL Server with MSSQL_TEST_URL. */
export function testEngines(): { engines: TestEngine[]; skipped: string[] } {
  const url = process.env.MSSQL_TEST_URL;
  return url
    ? { engines: [postgres, sqlServer(url)], skipped: [] }
    : { engines: [postgres], skipped: ['SQL Server (skipped: MSSQL_TEST_URL not set)'] };
}

/** Runs `suite` once per engine, as `<name> on postgres` / `<name> on mssql`. */
export function describeEachEngine(name: string, suite: (engine: TestEngine) => void): void {
  const { engines, skipped } = testEngines();
  for (const engine of engines) describe(`${name} on ${engine.kind}`, () => suite(engine));
  for (const reason of skipped) describe(`${name} on ${reason}`, { skip: reason }, () => {});
}
