/** CPU counters of processes, from Linux's /proc; undefined where there is no /proc. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** USER_HZ, which Linux fixes at 100 for /proc on every architecture it runs this on. */
const CLOCK_TICKS_PER_SECOND = 100;

/** The fields of `/proc/<pid>/stat` after the command name (which may hold spaces): field n is at n - 3. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // ended meanwhile
  }
}

const ticks = (fields: string[], field: number) => Number(fields[field - 3]);

/**
 * CPU seconds a process has used so far, with its ended and reaped children when asked (a postmaster's
 * backends that have closed).
 */
export function cpuSecondsOf(pid: number | undefined, withChildren: boolean): number | undefined {
  const fields = pid === undefined ? undefined : statFields(pid);
  if (!fields) return undefined;
  const total = ticks(fields, 14) + ticks(fields, 15) + (withChildren ? ticks(fields, 16) + ticks(fields, 17) : 0);
  return total / CLOCK_TICKS_PER_SECOND;
}

/** The pid of the postmaster running on a data directory (the first line of its postmaster.pid). */
export function postmasterPid(dataDir: string): number {
  return Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

/**
 * CPU seconds a PostgreSQL server has used so far: the postmaster with its reaped children, plus the
 * children still running (the backends of open connections), so a reading taken while a pool is open counts
 * its backends too. A backend that ends between two readings moves from one sum to the other.
 */
export function serverCpuSeconds(postmaster: number): number | undefined {
  const own = cpuSecondsOf(postmaster, true);
  if (own === undefined) return undefined;
  let running = 0;
  for (const { fields } of children(postmaster)) running += ticks(fields, 14) + ticks(fields, 15);
  return own + running / CLOCK_TICKS_PER_SECOND;
}

/** The pids of a postmaster's children (its backends and background processes), with their stat fields. */
function children(postmaster: number): Array<{ pid: number; fields: string[] }> {
  const out: Array<{ pid: number; fields: string[] }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (fields && ticks(fields, 4) === postmaster) out.push({ pid: Number(entry), fields });
  }
  return out;
}

/** A client's session: PostgreSQL titles it `postgres: <user> <database> <host>(<port>) <activity>`. */
const SESSION_TITLE = /^postgres: \S+ \S+ (\[local\]|\S+\(\d+\))/;

function isSessionOrEnded(child: { pid: number; fields: string[] }): boolean {
  if (child.fields[0] === 'Z') return true; // ended, not yet reaped: its CPU is about to move to the postmaster
  try {
    return SESSION_TITLE.test(readFileSync(`/proc/${child.pid}/cmdline`, 'utf8'));
  } catch {
    return true; // ended meanwhile
  }
}

/**
 * Resolves once no client session is open on the server and every one that ended has been reaped, so that
 * serverCpuSeconds reads a sum that stays put: a backend reaped between its two reads would be missed.
 */
export async function sessionsSettled(postmaster: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (children(postmaster).some(isSessionOrEnded)) {
    if (Date.now() > deadline) throw new Error(`PostgreSQL sessions still open after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** CPU seconds this process has used so far. */
export function ownCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}
