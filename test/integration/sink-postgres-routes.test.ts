import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { AttributeValue } from '../../lib/change/change-event.js';
import type { AppError } from '../../lib/errors.js';
import { silentLogger } from '../../lib/log.js';
import { Applier } from '../../lib/sink/applier.js';
import { PostgresDialect, type UpsertRoute } from '../../lib/sink/dialects/postgres.js';
import type { ApplyOutcome } from '../../lib/sink/index.js';
import { deleteLogTable, tombstoneTable } from '../../lib/sink/side-tables.js';
import { guid, remove, str, upsert } from '../support/change-events.js';
import { createTestDatabase, stopOwnServer } from '../support/postgres.js';

const statuses = (outcomes: ApplyOutcome[]) => outcomes.map((o) => o.status);
const int = (value: number): AttributeValue => ({ type: 'int', value });

/** An applier on the given upsert route that closes with the test (`await using`). */
function applierOn(url: string, route: UpsertRoute) {
  const sides = { tombstone: tombstoneTable('').name, deleteLog: deleteLogTable('').name };
  const dialect = new PostgresDialect(url, 'public', sides, route);
  const applier = new Applier(dialect, '', true, silentLogger);
  return Object.assign(applier, { [Symbol.asyncDispose]: () => dialect.close() });
}

// Both ways rows can reach the server (arrays, COPY into a staging table) pass the same behaviour.
for (const route of ['arrays', 'copy'] as const) {
  describe(`PostgreSQL upserts with rows by ${route}`, () => {
    it('applies only what is newer, and no older change brings a deleted row back', async () => {
      await using db = await createTestDatabase();
      await using applier = applierOn(db.url, route);
      assert.deepEqual(
        statuses(
          await applier.applyBatch([
            upsert('account', guid(1), 5, { name: str('five') }),
            upsert('account', guid(2), 5, { name: str('two') }),
          ]),
        ),
        ['applied', 'applied'],
      );
      assert.deepEqual(
        statuses(
          await applier.applyBatch([
            upsert('account', guid(1), 4, { name: str('older') }),
            upsert('account', guid(2), 6, { name: str('newer') }),
          ]),
        ),
        ['stale', 'applied'],
      );
      await applier.applyBatch([remove('account', guid(1), 5, 7)]);
      assert.deepEqual(statuses(await applier.applyBatch([upsert('account', guid(1), 5, { name: str('late') })])), [
        'stale',
      ]);
      const stored = await db.pool.query('SELECT id, name, versionnumber FROM account ORDER BY id');
      assert.deepEqual(stored.rows, [{ id: guid(2), name: 'newer', versionnumber: '6' }]);
    });

    it('writes tabs, newlines, backslashes and NULLs exactly as sent', async () => {
      await using db = await createTestDatabase();
      await using applier = applierOn(db.url, route);
      const awkward = 'a\tb\nc\\d\re \\N "q" {x,y}';
      await applier.applyBatch([
        upsert('account', guid(1), 1, { name: str(awkward), description: str('plain') }),
        upsert('account', guid(2), 1, { name: str('\\N'), description: { type: 'null' } }),
      ]);
      const stored = await db.pool.query('SELECT name, description FROM account ORDER BY id');
      assert.deepEqual(stored.rows, [
        { name: awkward, description: 'plain' },
        { name: '\\N', description: null },
      ]);
    });

    it('isolates exactly the rows the database refuses, including a character no text column can hold', async () => {
      await using db = await createTestDatabase();
      await using applier = applierOn(db.url, route);
      const attributeSpecs = { account: [{ name: 'numberofemployees', kind: 'int' as const }] };
      const changes = Array.from({ length: 40 }, (_, i) =>
        upsert('account', guid(i + 1), 1, {
          // 3e9 overflows a 32-bit integer (22003); a NUL is refused in any text (22021), by COPY itself.
          numberofemployees: int(i === 7 ? 3_000_000_000 : i),
          name: str(i === 31 ? 'bad\u0000name' : `n${i}`),
        }),
      );
      const outcomes = await applier.applyBatch(changes, { attributeSpecs });
      const failed = outcomes.flatMap((o, i) => (o.status === 'failed' ? [i] : []));
      assert.deepEqual(failed, [7, 31]);
      for (const index of failed) assert.equal((outcomes[index] as { error: AppError }).error.code, 'TARGET_PERMANENT');
      assert.match((outcomes[31] as { error: AppError }).error.message, /0x00/);
      const count = await db.pool.query('SELECT count(*)::int AS n FROM account');
      assert.equal(count.rows[0].n, 38);
    });
  });
}

after(stopOwnServer);
