import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { connectClient } from '../../lib/postgres-pool.js';
import { eventually, startStackProcess } from './support/stack-process.js';

interface EntityStatus {
  entity: string;
  syncState: string;
  rowsCopied: number;
  rowsEstimated: number | null;
  partitions: Array<{ partition: number; rowsCopied: number; done: boolean }>;
}

const ACCOUNTS = 40_000;
const CONTACTS = 80_000;

/**
 * Issue 4's promise, as a user would see it: activate a profile on the sample organization, kill `npm start`
 * (SIGKILL, no goodbye) in the middle of the copy, start it again, and end with exact counts — while a write
 * made through the sample organization during the copy also lands.
 */
describe('initial sync survives a killed host', { timeout: 420_000 }, () => {
  it('resumes after SIGKILL mid-copy and ends with every row exactly once', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'dvx-resume-'));
    const start = (fresh: boolean) =>
      startStackProcess({ dataDir, fresh, args: [`--accounts=${ACCOUNTS}`, `--contacts=${CONTACTS}`] });
    try {
      let stack = await start(true);
      const { apiBaseUrl, functionKey, sampleOrg } = stack.info;
      const api = (path: string, init: RequestInit = {}) =>
        fetch(`${apiBaseUrl}${path}`, {
          ...init,
          headers: { 'x-functions-key': functionKey, 'content-type': 'application/json' },
        });
      const created = await api('/profiles', {
        method: 'POST',
        body: JSON.stringify({
          name: 'resume',
          organizationId: sampleOrg.organizationId,
          source: { url: sampleOrg.url },
          target: { kind: 'postgres', connectionSecret: 'local-postgres', tablePrefix: 'resume' },
          entities: ['account', 'contact'],
        }),
      });
      assert.equal(created.status, 201, await created.clone().text());
      const { id } = (await created.json()) as { id: string };
      assert.equal((await api(`/profiles/${id}/activate`, { method: 'POST' })).status, 200);
      const status = async () =>
        ((await (await api(`/profiles/${id}/status`)).json()) as { entities: EntityStatus[] }).entities;

      // A write during the copy: it must end in the target whichever of copy and webhook gets there first.
      const accountId = '00000000-0000-4000-8000-00000000abcd';
      const write = await fetch(`${sampleOrg.url}/api/data/v9.2/accounts(${accountId})`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Written during the copy' }),
      });
      assert.ok(write.status < 300, `sample org write answered ${write.status}`);

      const midway = await eventually(
        async () => {
          const entities = await status();
          const copied = entities.reduce((n, e) => n + e.rowsCopied, 0);
          const partitions = entities.reduce((n, e) => n + e.partitions.length, 0);
          return copied > 5_000 && entities.some((e) => e.syncState !== 'Completed')
            ? { copied, partitions }
            : undefined;
        },
        120_000,
        'the copy to be under way',
      );
      stack.child.kill('SIGKILL');
      await new Promise((resolve) => stack.child.once('exit', resolve));
      console.log(`[e2e] killed the stack with ${midway.copied} rows copied in ${midway.partitions} partitions`);
      assert.ok(midway.partitions > 2, 'the copy under way was read as parallel id ranges');

      stack = await start(false);
      const api2 = (path: string) =>
        fetch(`${stack.info.apiBaseUrl}${path}`, { headers: { 'x-functions-key': stack.info.functionKey } });
      const final = await eventually(
        async () => {
          const entities = ((await (await api2(`/profiles/${id}/status`)).json()) as { entities: EntityStatus[] })
            .entities;
          if (entities.some((e) => e.syncState === 'Failed')) throw new Error(JSON.stringify(entities));
          return entities.every((e) => e.syncState === 'Completed') ? entities : undefined;
        },
        300_000,
        'the resumed copy to complete',
      );
      console.log(`[e2e] resumed and completed: ${JSON.stringify(final)}`);
      // Status counts each row once although the kill made a page be read twice (its count moves with its
      // checkpoint). The account written during the copy is counted when the copy read it, not when its webhook did.
      const copied = Object.fromEntries(final.map((e) => [e.entity, e.rowsCopied]));
      assert.equal(copied.contact, CONTACTS);
      // Both tables are large enough to be read as parallel id ranges; each range's count is exact too.
      for (const entity of final) {
        assert.ok(entity.partitions.length > 1, `${entity.entity} was read by ${entity.partitions.length} partitions`);
        assert.ok(entity.partitions.every((p) => p.done));
        assert.equal(
          entity.partitions.reduce((n, p) => n + p.rowsCopied, 0),
          entity.rowsCopied,
        );
      }
      assert.ok(
        copied.account === ACCOUNTS || copied.account === ACCOUNTS + 1,
        `account rowsCopied ${copied.account}, expected ${ACCOUNTS} (or one more with the write)`,
      );

      const db = await connectClient({ connectionString: stack.info.postgresUrl });
      try {
        const counts = await db.query(
          `SELECT (SELECT count(*) FROM resume_account)::int AS accounts, (SELECT count(*) FROM resume_contact)::int AS contacts,
                  (SELECT count(DISTINCT id) FROM resume_contact)::int AS distinct_contacts`,
        );
        // The PATCH above was an upsert of a new id: one more account than generated.
        assert.deepEqual(counts.rows[0], { accounts: ACCOUNTS + 1, contacts: CONTACTS, distinct_contacts: CONTACTS });
        const written = await db.query('SELECT name FROM resume_account WHERE id = $1', [accountId]);
        assert.equal(written.rows[0]?.name, 'Written during the copy');
      } finally {
        await db.end();
      }
      await stack.stop();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
