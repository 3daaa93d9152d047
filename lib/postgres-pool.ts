/** node-postgres pools and clients that neither crash the process nor outlive their `end()`. */
import pg from 'pg';

const openClients = new WeakMap<pg.Pool, Set<Promise<void>>>();

/**
 * A pool whose lost connections go to `onLost` instead of an unhandled 'error' event (a server restart or a
 * `DROP DATABASE … WITH (FORCE)` terminates idle connections), and which `endPool` can close completely.
 */
export function createPool(config: pg.PoolConfig, onLost: (err: Error) => void = () => {}): pg.Pool {
  const pool = new pg.Pool(config);
  pool.on('error', onLost);
  const open = new Set<Promise<void>>();
  pool.on('connect', (client) => {
    // Not events.once: that rejects on the 'error' a lost connection emits first, and nobody awaits it then.
    const ended = new Promise<void>((resolve) => client.once('end', resolve)).then(() => {
      open.delete(ended);
    });
    open.add(ended);
  });
  openClients.set(pool, open);
  return pool;
}

/**
 * Ends the pool and waits until every connection has closed: `pool.end()` resolves before the sockets do,
 * so a database dropped right after would otherwise terminate connections still closing.
 */
export async function endPool(pool: pg.Pool): Promise<void> {
  await pool.end();
  await Promise.all(openClients.get(pool) ?? []);
}

/** A connected single client whose lost connection is ignored (its next query reports it). */
export async function connectClient(config: pg.ClientConfig | string): Promise<pg.Client> {
  const client = new pg.Client(config);
  client.on('error', () => {});
  await client.connect();
  return client;
}
