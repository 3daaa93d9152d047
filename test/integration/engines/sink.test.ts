/**
 * The sink's behaviour on every engine (test/support/engines.ts): the same changes, the same assertions, on
 * PostgreSQL always and on SQL Server with MSSQL_TEST_URL (`npm run test:mssql`).
 */
import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import type { ChangeEvent } from '../../../lib/change/change-event.js';
import { AppError } from '../../../lib/errors.js';
import { type ApplyOutcome, openSink, type Sink, type SinkTarget } from '../../../lib/sink/index.js';
import { guid, remove, str, timeOf, upsert } from '../../support/change-events.js';
import { describeEachEngine, type EngineDatabase } from '../../support/engines.js';
import { stopOwnServer } from '../../support/postgres.js';
import { seeded, shuffle } from '../../support/storms.js';

after(stopOwnServer);

const statuses = (outcomes: ApplyOutcome[]) => outcomes.map((o) => o.status);

async function sinkOn(db: EngineDatabase, overrides: Partial<SinkTarget> = {}): Promise<Sink & AsyncDisposable> {
  const sink = await openSink({
    kind: db.kind,
    connectionString: db.connectionString,
    schema: db.schema,
    tablePrefix: '',
    writeDeleteLog: true,
    // A development SQL Server's self-signed certificate (the tests' own server, never a production one).
    allowTrustServerCertificate: true,
    ...overrides,
  });
  return Object.assign(sink, { [Symbol.asyncDispose]: () => sink.close() });
}

/** Two appliers at once can deadlock on the same rows: that batch is tried again, as the queue would. */
async function applyRetryingTransient(sink: Sink, batch: ChangeEvent[]): Promise<ApplyOutcome[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await sink.applyBatch(batch);
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'TARGET_TRANSIENT' || attempt === 5) throw err;
    }
  }
}

const label = (text: string) => ({
  isUserLocalizedLabel: false,
  localizedLabelLanguageCode: 1033,
  localizedLabel: text,
});

describeEachEngine('sink', (engine) => {
  it('types columns from metadata as DES did, and an inferred whole number as bigint', async () => {
    await using db = await engine.createDatabase();
    await using sink = await sinkOn(db);
    const attributeSpecs = {
      account: [
        { name: 'name', kind: 'string' as const, maxLength: 160 },
        { name: 'description', kind: 'memo' as const },
        { name: 'revenue', kind: 'money' as const, precision: 12, scale: 2 },
        { name: 'revenue_base', kind: 'money' as const, precision: 12, scale: 2 },
        { name: 'industrycode', kind: 'optionset' as const },
        { name: 'donotemail', kind: 'boolean' as const },
        { name: 'parentaccountid', kind: 'lookup' as const },
      ],
    };
    const outcomes = await sink.applyBatch(
      [
        upsert('account', guid(1), 1, {
          name: str('Contoso'),
          revenue: { type: 'money', value: '1234.56' },
          revenue_base: { type: 'money', value: '1234.5678' },
          parentaccountid: { type: 'lookup', value: guid(2), entityType: 'account' },
          numberofemployees: { type: 'int', value: 42 },
        }),
      ],
      { attributeSpecs },
    );
    assert.deepEqual(statuses(outcomes), ['applied']);
    const types = await db.columnTypes('account');
    assert.deepEqual(types?.name, { kind: 'text', maxLength: 160 });
    assert.deepEqual(types?.description, { kind: 'text' });
    assert.deepEqual(types?.revenue, { kind: 'decimal', precision: 38, scale: 2 });
    assert.deepEqual(types?.revenue_base, { kind: 'decimal', precision: 38, scale: 4 });
    assert.deepEqual(types?.industrycode, { kind: 'integer' });
    assert.deepEqual(types?.donotemail, { kind: 'boolean' });
    assert.deepEqual(types?.parentaccountid, { kind: 'uuid' });
    assert.deepEqual(types?.parentaccountid_entitytype, { kind: 'text', maxLength: 128 });
    assert.deepEqual(types?.versionnumber, { kind: 'bigint' });
    assert.deepEqual(types?.numberofemployees, { kind: 'bigint' });
    const [row] = await db.select('account', ['Id', 'revenue', 'revenue_base', 'parentaccountid_entitytype']);
    assert.deepEqual(row, {
      id: guid(1),
      revenue: '1234.56',
      revenue_base: '1234.5678',
      parentaccountid_entitytype: 'account',
    });
  });

  it('upserts, keeps the columns a partial update does not carry, and skips an older change', async () => {
    await using db = await engine.createDatabase();
    await using sink = await sinkOn(db);
    await sink.applyBatch([upsert('account', guid(1), 1, { name: str('A'), city: str('Oslo') })]);
    assert.deepEqual(statuses(await sink.applyBatch([upsert('account', guid(1), 3, { city: str('Bergen') })])), [
      'applied',
    ]);
    assert.deepEqual(statuses(await sink.applyBatch([upsert('account', guid(1), 2, { city: str('Old') })])), ['stale']);
    assert.deepEqual(await db.select('account', ['Id', 'name', 'city', 'versionnumber', 'modifiedon']), [
      { id: guid(1), name: 'A', city: 'Bergen', versionnumber: '3', modifiedon: timeOf(3) },
    ]);
  });

  it('deletes behind a tombstone no older change passes, and logs the delete', async () => {
    await using db = await engine.createDatabase();
    await using sink = await sinkOn(db);
    await sink.applyBatch([upsert('account', guid(1), 1, { name: str('a') })]);
    assert.deepEqual(statuses(await sink.applyBatch([remove('account', guid(1), 1, 2)])), ['applied']);
    assert.deepEqual(statuses(await sink.applyBatch([upsert('account', guid(1), 1, { name: str('again') })])), [
      'stale',
    ]);
    assert.equal(await db.count('account'), 0);
    assert.deepEqual(await db.select('DeleteLog', ['RecordId', 'EntityName', 'VersionNumber']), [
      { recordid: guid(1), entityname: 'account', versionnumber: '1' },
    ]);
  });

  it('applies a batch larger than one statement may carry, and purges its tombstones in chunks', async () => {
    await using db = await engine.createDatabase();
    await using sink = await sinkOn(db);
    const ids = Array.from({ length: 2_500 }, (_, i) => guid(i + 1));
    const written = await sink.applyBatch(ids.map((id) => upsert('contact', id, 1, { fullname: str(id) })));
    assert.equal(written.filter((o) => o.status === 'applied').length, ids.length);
    assert.equal(await db.count('contact'), ids.length);
    const deleted = await sink.applyBatch(ids.map((id) => remove('contact', id, 1, 2)));
    assert.equal(deleted.filter((o) => o.status === 'applied').length, ids.length);
    assert.equal(await db.count('contact'), 0);
    assert.equal(await sink.purgeTombstones(new Date(Date.now() + 60_000)), ids.length);
    assert.equal(await db.count('Tombstone'), 0);
  });

  it('ends equal to the truth after a shuffled batch stream with duplicates and deletes', async () => {
    await using db = await engine.createDatabase();
    await using first = await sinkOn(db);
    await using second = await sinkOn(db);
    const random = seeded(20261125);
    const events: ChangeEvent[] = [];
    /** Per record: the latest change by version, which decides the final state whatever the order. */
    const truth = new Map<string, { name: string; amount: string } | undefined>();
    let version = 0;
    for (let n = 1; n <= 200; n++) {
      const id = guid(n);
      let last: { v: number; deleted: boolean; row?: { name: string; amount: string } } | undefined;
      for (let k = 0; k < 9; k++) {
        version++;
        if (last && !last.deleted && random() < 0.2) {
          // Every other delete has no pre-image: it compares by time only.
          const preVersion = random() < 0.5 ? last.v : undefined;
          events.push(remove('account', id, preVersion, version));
          last = { v: version, deleted: true };
        } else {
          const row = { name: `n${n}-v${version}`, amount: `${version}.25` };
          events.push(
            upsert('account', id, version, { name: str(row.name), amount: { type: 'decimal', value: row.amount } }),
          );
          last = { v: version, deleted: false, row };
        }
      }
      truth.set(id, last?.deleted ? undefined : last?.row);
    }
    for (const event of events.slice()) if (random() < 0.1) events.push(structuredClone(event));
    shuffle(events, random);
    assert.ok(events.length >= 1900 && events.length <= 2100, `${events.length} events`);

    // Two appliers take alternate batches at the same time, like two function instances.
    const batches: ChangeEvent[][] = [];
    for (let i = 0; i < events.length; i += 125) batches.push(events.slice(i, i + 125));
    const counts = { applied: 0, stale: 0, failed: 0, waiting: 0 };
    await Promise.all(
      [first, second].map(async (sink, lane) => {
        for (let b = lane; b < batches.length; b += 2) {
          for (const outcome of await applyRetryingTransient(sink, batches[b])) counts[outcome.status]++;
        }
      }),
    );
    assert.equal(counts.failed, 0);
    assert.equal(counts.applied + counts.stale, events.length);

    // Sorted here: SQL Server orders uniqueidentifiers by its own byte order.
    const stored = (await db.select('account', ['Id', 'name', 'amount'])).sort((a, b) =>
      String(a.id).localeCompare(String(b.id)),
    );
    const expected = [...truth]
      .flatMap(([id, row]) => (row ? [{ id, name: row.name, amount: row.amount }] : []))
      .sort((a, b) => a.id.localeCompare(b.id));
    assert.deepEqual(stored, expected);
  });

  it('leaves one set of metadata rows when writers replace the same entity at once', async () => {
    await using db = await engine.createDatabase();
    const sinks = await Promise.all([sinkOn(db), sinkOn(db), sinkOn(db), sinkOn(db)]);
    try {
      const states = [0, 1, 2].map((state) => ({ state, ...label(`state ${state}`) }));
      // Create the table first: the race under test is the rows' delete + insert, not the DDL.
      await sinks[0].writeMetadata({ entity: 'account', states });
      for (let round = 0; round < 5; round++) {
        await Promise.all(sinks.map((sink) => sink.writeMetadata({ entity: 'account', states })));
        assert.equal(await db.count('StateMetadata'), states.length, `round ${round}`);
      }
    } finally {
      await Promise.all(sinks.map((sink) => sink.close()));
    }
  });

  it('writes into a table DES created, in the column types DES gave it', async () => {
    await using db = await engine.createDatabase();
    // DES's own shape: datetime (no time zone), decimal(38,2), nvarchar(128) companions, int option sets.
    await db.execute(
      engine.kind === 'mssql'
        ? `CREATE TABLE [${db.schema}].[account] ([Id] uniqueidentifier NOT NULL PRIMARY KEY, [SinkCreatedOn] datetime NULL,
  [SinkModifiedOn] datetime NULL, [versionnumber] bigint NULL, [modifiedon] datetime NULL, [name] nvarchar(160) NULL,
  [revenue] decimal(38,2) NULL, [statecode] int NULL, [parentaccountid] uniqueidentifier NULL,
  [parentaccountid_entitytype] nvarchar(128) NULL, [lastusedincampaign] datetime NULL);`
        : `CREATE TABLE account (id uuid NOT NULL PRIMARY KEY, sinkcreatedon timestamp NULL, sinkmodifiedon timestamp NULL,
  versionnumber bigint NULL, modifiedon timestamp NULL, name varchar(160) NULL, revenue numeric(38,2) NULL,
  statecode integer NULL, parentaccountid uuid NULL, parentaccountid_entitytype varchar(128) NULL,
  lastusedincampaign timestamp NULL);`,
    );
    const before = await db.columnTypes('account');
    await using sink = await sinkOn(db);
    const outcomes = await sink.applyBatch([
      upsert('account', guid(1), 5, {
        name: str('Contoso'),
        revenue: { type: 'money', value: '10.25' },
        statecode: { type: 'optionset', value: 1 },
        parentaccountid: { type: 'lookup', value: guid(2), entityType: 'account' },
        lastusedincampaign: { type: 'datetime', value: '2025-06-01T08:00:00.000Z' },
      }),
    ]);
    assert.deepEqual(statuses(outcomes), ['applied']);
    assert.deepEqual(await db.columnTypes('account'), before, 'no column altered or added');
    const [row] = await db.select('account', ['Id', 'name', 'revenue', 'statecode', 'parentaccountid_entitytype']);
    assert.deepEqual(row, {
      id: guid(1),
      name: 'Contoso',
      revenue: '10.25',
      statecode: '1',
      parentaccountid_entitytype: 'account',
    });
    assert.deepEqual(statuses(await sink.applyBatch([upsert('account', guid(1), 4, { name: str('older') })])), [
      'stale',
    ]);
  });

  it('makes an entity whose table would pass the column limit wait, naming the columns, while another applies', async () => {
    await using db = await engine.createDatabase();
    // A table an administrator made, a few columns short of the engine's limit (SQL Server 1,024, PostgreSQL 1,600).
    const limit = engine.kind === 'mssql' ? 1_024 : 1_600;
    const fillers = Array.from({ length: limit - 6 }, (_, i) => `f${i + 1}`);
    await db.execute(
      engine.kind === 'mssql'
        ? `CREATE TABLE [${db.schema}].[contact] ([Id] uniqueidentifier NOT NULL PRIMARY KEY, ${fillers.map((f) => `[${f}] int NULL`).join(', ')});`
        : `CREATE TABLE contact (id uuid NOT NULL PRIMARY KEY, ${fillers.map((f) => `${f} integer NULL`).join(', ')});`,
    );
    await using sink = await sinkOn(db);
    const attributes = Object.fromEntries(
      Array.from({ length: 10 }, (_, i) => [`new_field${i + 1}`, { type: 'int' as const, value: i }]),
    );
    const batch = [upsert('contact', guid(1), 1, attributes), upsert('account', guid(2), 1, { name: str('fits') })];
    const outcomes = await sink.applyBatch(batch);
    assert.deepEqual(statuses(outcomes), ['waiting', 'applied']);
    const { error } = outcomes[0] as { error: { code: string; message: string; transient: boolean } };
    assert.equal(error.code, 'TABLE_LIMIT_EXCEEDED');
    assert.match(error.message, new RegExp(`^table contact would have ${limit + 9} columns, more than .*${limit}`));
    assert.match(error.message, /columns not created: .*new_field1, .*new_field10/);
    assert.match(error.message, /remove the entity from the profile/);
    assert.equal(Object.keys((await db.columnTypes('contact')) ?? {}).length, limit - 5, 'no column added');
    assert.deepEqual(statuses(await sink.applyBatch(batch.slice(0, 1))), ['waiting'], 'and again, without DDL');

    // The administrator makes room (here: the table goes, the sink creates it anew): the entity applies.
    await db.execute(engine.kind === 'mssql' ? `DROP TABLE [${db.schema}].[contact];` : 'DROP TABLE contact;');
    assert.deepEqual(statuses(await sink.applyBatch(batch.slice(0, 1))), ['applied']);
    assert.deepEqual(await db.select('contact', ['Id', 'new_field10']), [{ id: guid(1), new_field10: '9' }]);
  });
});
