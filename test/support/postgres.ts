import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type pg from 'pg';
import { type EmbeddedPostgresHandle, startEmbeddedPostgres } from '../../dev/embedded/postgres.js';
import { connectClient, createPool, endPool } from '../../lib/postgres-pool.js';

/**
 * One real embedded PostgreSQL per test run: `test/run.ts` starts it and passes TEST_PG_URL; a test file run
 * on its own starts a private one. Each test gets its own database, so tests never see each other's rows.
 */
let serverUrl: Promise<string> | undefined;
let ownServer: EmbeddedPostgresHandle | undefined;

export function testServerUrl(): Promise<string> {
  if (process.env.TEST_PG_URL) return Promise.resolve(process.env.TEST_PG_URL);
  serverUrl ??= (async () => {
    ownServer = await startEmbeddedPostgres({
      dataDir: join(process.cwd(), '.local', 'test', `pg-${process.pid}`),
      fresh: true,
    });
    process.once('exit', () => void ownServer?.stop());
    return ownServer.url;
  })();
  return serverUrl;
}

/** Stops the private server, if this process started one (call from an `after` hook when needed). */
export async function stopOwnServer(): Promise<void> {
  await ownServer?.stop();
  ownServer = undefined;
  serverUrl = undefined;
}

export interface TestDatabase extends AsyncDisposable {
  name: string;
  url: string;
  pool: pg.Pool;
}

/** Creates an empty database for one test; `await using db = await createTestDatabase()` drops it after. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const url = await testServerUrl();
  const name = `t_${randomBytes(6).toString('hex')}`;
  const admin = await connectClient(url);
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const dbUrl = url.replace(/\/[^/?]*(\?|$)/, `/${name}$1`);
  const pool = createPool({ connectionString: dbUrl, max: 10 });
  return {
    name,
    url: dbUrl,
    pool,
    async [Symbol.asyncDispose]() {
      // Every connection of the test's pool has closed before the drop, so none is terminated mid-close.
      await endPool(pool);
      const drop = await connectClient(url);
      try {
        await drop.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await drop.end();
      }
    },
  };
}
