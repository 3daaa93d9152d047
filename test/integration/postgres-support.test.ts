import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { stopOrphanedServer } from '../../dev/embedded/postgres.js';
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

it('leaves alone a process that took over a dead postmaster’s pid', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'dvx-orphan-'));
  // A live process that is not postgres, named in a stale postmaster.pid as a reused pid would be.
  const bystander = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
  try {
    await once(bystander, 'spawn');
    await writeFile(join(dataDir, 'postmaster.pid'), `${bystander.pid}\n${dataDir}\n`);
    await stopOrphanedServer(dataDir);
    assert.doesNotThrow(() => process.kill(bystander.pid as number, 0), 'the bystander still runs');
    assert.equal(bystander.exitCode, null, 'the bystander was not signalled');
    assert.equal(bystander.signalCode, null);
  } finally {
    bystander.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  }
});
