/**
 * Tables follow Dataverse as its metadata changes: the sample org changes an attribute at run time, and the
 * sink on the embedded PostgreSQL widens the column (never narrows it), re-reads the metadata once before a
 * too-long value fails, types a column the live path creates as the initial sync would, and refreshes the
 * metadata tables at reconcile.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { ChangeEvent } from '../../lib/change/change-event.js';
import { createDataverseClient } from '../../lib/dataverse/webapi/client.js';
import { createLogger, silentLogger } from '../../lib/log.js';
import { openSink } from '../../lib/sink/index.js';
import type { AttributeSpec } from '../../lib/sink/table-model.js';
import { EntitySchemaCache } from '../../lib/sync/entity-schema.js';
import type { DataverseSource } from '../../lib/sync/ports.js';
import { reconcileProfile } from '../../lib/sync/reconcile.js';
import { stopOwnServer } from '../support/postgres.js';
import { copyAll, copyToEnd, startSyncStack, writeToOrg } from '../support/sync-stack.js';

after(stopOwnServer);

async function columnType(
  pool: { query: (text: string) => Promise<{ rows: Array<Record<string, unknown>> }> },
  table: string,
  column: string,
) {
  const res = await pool.query(
    `SELECT data_type, character_maximum_length AS length, numeric_precision AS precision, numeric_scale AS scale
     FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '${table}' AND column_name = '${column}'`,
  );
  return res.rows[0];
}

/** A source that counts the metadata reads that went to Dataverse again (`refresh`). */
function countingSource(source: DataverseSource) {
  const counts = { refreshes: 0 };
  const counted: Pick<DataverseSource, 'entityMetadata'> = {
    entityMetadata: (entity, options) => {
      if (options?.refresh) counts.refreshes++;
      return source.entityMetadata(entity, options);
    },
  };
  return { counts, counted };
}

/** The record as the Web API now returns it (what a webhook post-image carries). */
async function current(source: DataverseSource, entity: string, id: string): Promise<ChangeEvent> {
  const change = await source.retrieve(entity, id);
  assert.ok(change, `${entity} ${id} exists`);
  return change;
}

const firstAccount = async (pool: { query: (text: string) => Promise<{ rows: Array<Record<string, unknown>> }> }) =>
  String((await pool.query('SELECT id FROM account ORDER BY id LIMIT 1')).rows[0].id);

describe('schema evolution on PostgreSQL', () => {
  it('widens a text column when Dataverse raises its MaxLength, after one re-read of the metadata', async () => {
    await using stack = await startSyncStack({
      name: 'widen',
      entities: ['account'],
      counts: { account: 30, contact: 5 },
    });
    await copyToEnd(stack.deps, stack.profile.id, 'account');
    assert.equal((await columnType(stack.db.pool, 'account', 'name')).length, 160);
    const { counts, counted } = countingSource(stack.client);
    const schema = new EntitySchemaCache(counted, silentLogger);
    await schema.describe('account');
    const refreshesBefore = counts.refreshes;

    stack.org.metadata.setMaxLength('account', 'name', 400);
    const id = await firstAccount(stack.db.pool);
    const name = 'n'.repeat(300);
    await writeToOrg(stack.org, 'PATCH', `accounts(${id})`, { name });
    const outcomes = await stack.sink.applyBatch([await current(stack.client, 'account', id)], { schema });

    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['applied'],
    );
    assert.equal((await columnType(stack.db.pool, 'account', 'name')).length, 400);
    assert.equal((await stack.db.pool.query('SELECT name FROM account WHERE id = $1', [id])).rows[0].name, name);
    assert.equal(counts.refreshes - refreshesBefore, 1, 'the metadata was read again exactly once');
  });

  it('fails a value still too long after the re-read, naming the column and its length', async () => {
    await using stack = await startSyncStack({
      name: 'too-long',
      entities: ['account'],
      counts: { account: 10, contact: 5 },
    });
    await copyToEnd(stack.deps, stack.profile.id, 'account');
    const { counts, counted } = countingSource(stack.client);
    const schema = new EntitySchemaCache(counted, silentLogger);
    await schema.describe('account');
    const refreshesBefore = counts.refreshes;
    const id = await firstAccount(stack.db.pool);
    const change = await current(stack.client, 'account', id);
    const long: ChangeEvent = {
      ...change,
      version: { ...change.version, rowVersion: String(BigInt(change.version.rowVersion ?? '0') + 1n) },
      attributes: { ...change.attributes, name: { type: 'string', value: 'x'.repeat(200) } },
    };
    const [outcome] = await stack.sink.applyBatch([long], { schema });

    assert.equal(outcome.status, 'failed');
    assert.match(outcome.status === 'failed' ? outcome.error.message : '', /column name.*200 characters.*at most 160/);
    assert.equal(counts.refreshes - refreshesBefore, 1, 'the metadata was read again exactly once');
    assert.equal((await columnType(stack.db.pool, 'account', 'name')).length, 160);
  });

  it('never narrows: a shorter MaxLength in Dataverse keeps the column, and values that fit it still apply', async () => {
    await using stack = await startSyncStack({
      name: 'narrow',
      entities: ['account'],
      counts: { account: 10, contact: 5 },
    });
    await copyToEnd(stack.deps, stack.profile.id, 'account');
    stack.org.metadata.setMaxLength('account', 'name', 100);
    const id = await firstAccount(stack.db.pool);
    const change = await current(stack.client, 'account', id);
    const wide: ChangeEvent = {
      ...change,
      version: { ...change.version, rowVersion: String(BigInt(change.version.rowVersion ?? '0') + 1n) },
      attributes: { ...change.attributes, name: { type: 'string', value: 'w'.repeat(150) } },
    };
    const outcomes = await stack.sink.applyBatch([wide], { schema: new EntitySchemaCache(stack.client, silentLogger) });

    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['applied'],
    );
    assert.equal((await columnType(stack.db.pool, 'account', 'name')).length, 160);
  });

  it('refuses a type change: the column stays and a value it cannot hold fails saying what changed and what to do', async () => {
    await using stack = await startSyncStack({
      name: 'retype',
      entities: ['account'],
      counts: { account: 10, contact: 5 },
    });
    await copyToEnd(stack.deps, stack.profile.id, 'account');
    const id = await firstAccount(stack.db.pool);
    const change = await current(stack.client, 'account', id);
    // As if an admin had recreated numberofemployees as a text attribute.
    const specs: AttributeSpec[] = [{ name: 'numberofemployees', kind: 'string', maxLength: 100 }];
    const [outcome] = await stack.sink.applyBatch(
      [
        {
          ...change,
          version: { ...change.version, rowVersion: String(BigInt(change.version.rowVersion ?? '0') + 1n) },
          attributes: { numberofemployees: { type: 'string', value: 'a few' } },
        },
      ],
      { attributeSpecs: { account: specs } },
    );

    assert.equal(outcome.status, 'failed');
    const message = outcome.status === 'failed' ? outcome.error.message : '';
    assert.match(message, /Dataverse now describes numberofemployees as text\(100\) but its column is integer/);
    assert.match(message, /never changes a column's type\. Alter or drop the column by hand/);
    assert.equal((await columnType(stack.db.pool, 'account', 'numberofemployees')).data_type, 'integer');
  });

  it('widens decimals and int to bigint in place, keeping the values', async () => {
    await using stack = await startSyncStack({
      name: 'digits',
      entities: ['account'],
      counts: { account: 1, contact: 1 },
    });
    const id = 'aaaaaaaa-0000-4000-8000-000000000001';
    const row = (v: number, specs: AttributeSpec[]) =>
      stack.sink.applyBatch(
        [
          {
            organizationId: stack.org.organizationId,
            entity: 'gauge',
            recordId: id,
            operation: 'upsert',
            version: { rowVersion: String(v) },
            operationTime: new Date().toISOString(),
            attributes: {
              reading: { type: 'decimal', value: v === 1 ? '1234.56' : '123456.7891' },
              count: { type: 'int', value: v === 1 ? 7 : 2 ** 40 },
            },
            correlationId: 'test',
            source: 'webhook',
          },
        ],
        { attributeSpecs: { gauge: specs } },
      );
    await row(1, [
      { name: 'reading', kind: 'decimal', precision: 6, scale: 2 },
      { name: 'count', kind: 'int' },
    ]);
    assert.deepEqual(await columnType(stack.db.pool, 'gauge', 'reading'), {
      data_type: 'numeric',
      length: null,
      precision: 6,
      scale: 2,
    });
    const outcomes = await row(2, [
      { name: 'reading', kind: 'decimal', precision: 10, scale: 4 },
      { name: 'count', kind: 'bigint' },
    ]);

    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['applied'],
    );
    assert.deepEqual(await columnType(stack.db.pool, 'gauge', 'reading'), {
      data_type: 'numeric',
      length: null,
      precision: 10,
      scale: 4,
    });
    assert.equal((await columnType(stack.db.pool, 'gauge', 'count')).data_type, 'bigint');
    const stored = (await stack.db.pool.query('SELECT reading::text, count::text FROM gauge')).rows[0];
    assert.deepEqual(stored, { reading: '123456.7891', count: String(2 ** 40) });
  });

  it('types a column the live path creates as the initial sync would, and infers when the Web API is down', async () => {
    await using stack = await startSyncStack({
      name: 'live-types',
      entities: ['account'],
      counts: { account: 3, contact: 2 },
    });
    const change = await current(stack.client, 'account', (await firstIdOf(stack.client)) as string);
    // The initial sync's types, in a table of its own prefix: what the webhook-made table must match.
    await using copied = await startSyncStack({
      name: 'copied',
      entities: ['account'],
      counts: { account: 3, contact: 2 },
    });
    await copyToEnd(copied.deps, copied.profile.id, 'account');

    const outcomes = await stack.sink.applyBatch([change], {
      schema: new EntitySchemaCache(stack.client, silentLogger),
    });
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['applied'],
    );
    const types = async (pool: typeof stack.db.pool) =>
      (
        await pool.query(
          `SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale
           FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'account' ORDER BY column_name`,
        )
      ).rows;
    assert.deepEqual(await types(stack.db.pool), await types(copied.db.pool));
    assert.equal((await columnType(stack.db.pool, 'account', 'numberofemployees')).data_type, 'integer');

    // The Web API down: the first values type a new table's columns (a whole number becomes bigint).
    const down = createDataverseClient({ url: stack.org.url, logger: silentLogger, retry: { maxAttempts: 1 } });
    stack.org.faults.failNext(50, 503);
    const sink = await openSink({
      kind: 'postgres',
      connectionString: stack.db.url,
      schema: 'public',
      tablePrefix: 'inferred',
      writeDeleteLog: false,
    });
    try {
      const [inferred] = await sink.applyBatch([change], { schema: new EntitySchemaCache(down, silentLogger) });
      assert.equal(inferred.status, 'applied');
      assert.equal((await columnType(stack.db.pool, 'inferred_account', 'numberofemployees')).data_type, 'bigint');
    } finally {
      stack.org.faults.reset();
      await sink.close();
    }
  });

  it("writes a new option's label row at the next reconcile", async () => {
    await using stack = await startSyncStack({
      name: 'labels',
      entities: ['account'],
      counts: { account: 5, contact: 2 },
    });
    await copyAll(stack.deps, stack.profile.id);
    const label = async () =>
      (
        await stack.db.pool.query(
          `SELECT localizedlabel FROM optionsetmetadata WHERE entityname = 'account' AND optionsetname = 'industrycode' AND option = 11`,
        )
      ).rows;
    assert.deepEqual(await label(), []);

    stack.org.metadata.addOption('account', 'industrycode', 11, 'Robotics');
    await reconcileProfile({ ...stack.deps, startInitialSync: async () => {} }, stack.profile.id);

    assert.deepEqual(await label(), [{ localizedlabel: 'Robotics' }]);
  });

  it('keeps the column of an attribute deleted in Dataverse with its values, leaves it untouched, and says so once', async () => {
    await using stack = await startSyncStack({
      name: 'deleted attribute',
      entities: ['account'],
      counts: { account: 5, contact: 2 },
    });
    await copyAll(stack.deps, stack.profile.id);
    const [before] = (
      await stack.db.pool.query('SELECT id::text, accountnumber FROM account WHERE accountnumber IS NOT NULL LIMIT 1')
    ).rows;
    assert.ok(before, 'an account with an account number to keep');
    const lines: Array<{ message: string; attribute?: string; entity?: string }> = [];
    const logger = createLogger({ sink: (_level, line) => lines.push(JSON.parse(line)) });
    const reconcile = () =>
      reconcileProfile({ ...stack.deps, logger, startInitialSync: async () => {} }, stack.profile.id);

    stack.org.metadata.deleteAttribute('account', 'accountnumber');
    try {
      await reconcile();
      await writeToOrg(stack.org, 'PATCH', `accounts(${before.id})`, { name: 'renamed after the delete' });
      const reconciled = await reconcile();
      assert.equal(reconciled.entities[0].outcome, 'reconciled', JSON.stringify(reconciled));
    } finally {
      stack.org.metadata.reset();
    }

    const [after] = (await stack.db.pool.query('SELECT name, accountnumber FROM account WHERE id = $1', [before.id]))
      .rows;
    assert.deepEqual(after, { name: 'renamed after the delete', accountnumber: before.accountnumber });
    const said = lines.filter((l) => l.message === 'sink.attribute.deleted');
    assert.deepEqual(
      said.map((l) => [l.entity, l.attribute]),
      [['account', 'accountnumber']],
      'one log line across two reconciles',
    );
    const described = await stack.db.pool.query(
      `SELECT count(*)::int AS n FROM attributemetadata WHERE entityname = 'account' AND attributename = 'accountnumber'`,
    );
    assert.equal(described.rows[0].n, 0, 'AttributeMetadata describes the attributes Dataverse has now');
  });

  // Strict: delta links answer with the columns of the read that took them, so the row is read again by id.
  for (const strict of [false, true]) {
    it(`brings an attribute added in Dataverse to reconcile's deltas: a missed webhook's value arrives as a new column${strict ? " (delta links keep their read's $select)" : ''}`, async () => {
      await using stack = await startSyncStack({
        name: 'added attribute',
        entities: ['account'],
        counts: { account: 5, contact: 2 },
      });
      if (strict) stack.org.faults.deltaKeepsTrackedSelect();
      await copyAll(stack.deps, stack.profile.id);
      const reconcile = () => reconcileProfile({ ...stack.deps, startInitialSync: async () => {} }, stack.profile.id);
      // The baseline's delta link was taken before the attribute existed: its $select does not name it.
      await reconcile();
      const id = await firstAccount(stack.db.pool);
      stack.org.metadata.addAttribute('account', { logicalName: 'new_tier', kind: 'string', maxLength: 20 });
      try {
        // No webhook reaches the target: only reconcile can bring the value.
        await writeToOrg(stack.org, 'PATCH', `accounts(${id})`, { new_tier: 'Gold', name: 'tiered' });
        const reconciled = await reconcile();
        assert.equal(reconciled.entities[0].outcome, 'reconciled', JSON.stringify(reconciled));
      } finally {
        stack.org.metadata.reset();
      }
      const [row] = (await stack.db.pool.query('SELECT name, new_tier FROM account WHERE id = $1', [id])).rows;
      assert.deepEqual(row, { name: 'tiered', new_tier: 'Gold' });
      assert.deepEqual(await columnType(stack.db.pool, 'account', 'new_tier'), {
        data_type: 'character varying',
        length: 20,
        precision: null,
        scale: null,
      });
    });
  }

  it('lets two appliers widen the same column at once', async () => {
    await using stack = await startSyncStack({
      name: 'two',
      entities: ['account'],
      counts: { account: 1, contact: 1 },
    });
    const open = () =>
      openSink({
        kind: 'postgres',
        connectionString: stack.db.url,
        schema: 'public',
        tablePrefix: '',
        writeDeleteLog: false,
      });
    const [a, b] = await Promise.all([open(), open()]);
    try {
      const change = (n: number, length: number): ChangeEvent => ({
        organizationId: stack.org.organizationId,
        entity: 'note',
        recordId: `bbbbbbbb-0000-4000-8000-00000000000${n}`,
        operation: 'upsert',
        version: { rowVersion: '1' },
        operationTime: new Date().toISOString(),
        attributes: { subject: { type: 'string', value: 's'.repeat(length) } },
        correlationId: 'test',
        source: 'webhook',
      });
      const narrow = {
        attributeSpecs: { note: [{ name: 'subject', kind: 'string', maxLength: 50 } as AttributeSpec] },
      };
      await a.applyBatch([change(1, 10)], narrow);
      await b.applyBatch([change(2, 10)], narrow);
      const wide = { attributeSpecs: { note: [{ name: 'subject', kind: 'string', maxLength: 500 } as AttributeSpec] } };
      const [first, second] = await Promise.all([
        a.applyBatch([change(3, 400)], wide),
        b.applyBatch([change(4, 450)], wide),
      ]);

      assert.deepEqual(
        [...first, ...second].map((o) => o.status),
        ['applied', 'applied'],
      );
      assert.equal((await columnType(stack.db.pool, 'note', 'subject')).length, 500);
      assert.equal(Number((await stack.db.pool.query('SELECT count(*) FROM note')).rows[0].count), 4);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

async function firstIdOf(source: DataverseSource): Promise<string | undefined> {
  for await (const page of source.readPages('account', { pageSize: 1 })) return page.rows[0]?.recordId;
  return undefined;
}
