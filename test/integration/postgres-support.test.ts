import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createTestDatabase } from '../support/postgres.js';

it('gives each test its own real PostgreSQL database', async () => {
  await using a = await createTestDatabase();
  await using b = await createTestDatabase();
  await a.pool.query('CREATE TABLE t (x int)');
  const seen = await b.pool.query(`SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 't'`);
  assert.equal(seen.rows[0].n, 0);
  const version = await a.pool.query('SHOW server_version');
  assert.match(version.rows[0].server_version, /^18\./);
});
