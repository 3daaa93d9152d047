/**
 * The few calls the Azure SQL control store makes, over an `mssql` pool. Kept as an interface so the
 * store's logic can be exercised with a recorder in unit tests: no SQL Server runs here.
 */
import mssql from 'mssql';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import { type MssqlPolicy, mssqlConfig } from '../mssql-config.js';
import type { MssqlParamType, MssqlStatement } from './sql/mssql.js';

export type MssqlRows = Array<Record<string, unknown>>;

export interface MssqlSession {
  /** Runs one batch; answers the rows of its last result set (empty when it has none). */
  query(statement: MssqlStatement): Promise<MssqlRows>;
}

export interface MssqlControlConnection extends MssqlSession {
  /** `work` on one connection in a transaction: committed if it resolves, rolled back if it throws. */
  transaction<T>(work: (session: MssqlSession) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

const TYPES: Record<MssqlParamType, mssql.ISqlType | mssql.ISqlTypeFactoryWithNoParams> = {
  UNIQUEIDENTIFIER: mssql.UniqueIdentifier,
  'NVARCHAR(16)': mssql.NVarChar(16),
  'NVARCHAR(36)': mssql.NVarChar(36),
  'NVARCHAR(128)': mssql.NVarChar(128),
  'NVARCHAR(200)': mssql.NVarChar(200),
  'NVARCHAR(255)': mssql.NVarChar(255),
  'NVARCHAR(MAX)': mssql.NVarChar(mssql.MAX),
  BIGINT: mssql.BigInt,
  INT: mssql.Int,
  BIT: mssql.Bit,
  'DATETIME2(3)': mssql.DateTime2(3),
};

async function execute(request: mssql.Request, statement: MssqlStatement): Promise<MssqlRows> {
  for (const p of statement.params) request.input(p.name, TYPES[p.type], p.value);
  const result = await request.query(statement.text);
  const sets = (result.recordsets ?? []) as unknown as MssqlRows[];
  return sets.length ? sets[sets.length - 1] : [];
}

/** Connects a pool from an ADO-style connection string; TLS is always on, whatever the string says. */
export async function connectMssqlControl(
  connectionString: string,
  log: Logger,
  policy: MssqlPolicy = {},
): Promise<MssqlControlConnection> {
  const pool = new mssql.ConnectionPool(controlConfig(connectionString, policy));
  pool.on('error', (err) => log.warn('control store connection lost', { error: err }));
  await pool.connect();
  let closed = false;
  return {
    query: (statement) => execute(pool.request(), statement),
    async transaction(work) {
      const tx = new mssql.Transaction(pool);
      await tx.begin();
      try {
        const value = await work({ query: (statement) => execute(new mssql.Request(tx), statement) });
        await tx.commit();
        return value;
      } catch (err) {
        // XACT_ABORT may already have rolled back; the original error is the one worth reporting.
        await tx.rollback().catch(() => {});
        throw err;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.close();
    },
  };
}

/** The control store's string is a setting: a refusal names ControlStoreConnection. */
function controlConfig(connectionString: string, policy: MssqlPolicy): mssql.config {
  try {
    return mssqlConfig(connectionString, policy);
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    throw new AppError('CONFIG_INVALID', `setting ControlStoreConnection: ${err.message}`, {
      details: [{ field: 'ControlStoreConnection', message: err.message }],
    });
  }
}
