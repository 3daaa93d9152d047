import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type pg from 'pg';
import { freePort } from '../../dev/embedded/postgres.js';
import type { AttributeValue, ChangeEvent } from '../../lib/change/change-event.js';
import { AppError } from '../../lib/errors.js';
import { type ApplyOutcome, openSink, probeTarget, type Sink, type SinkTarget } from '../../lib/sink/index.js';
import { pairId } from '../../lib/sink/record-change.js';
import { guid, remove, T0, timeOf, upsert } from '../support/change-events.js';
import { createTestDatabase, stopOwnServer } from '../support/postgres.js';

const ORG = '6042beb1-a93a-ef11-8e4b-00224802c699';

function relate(op: 'associate' | 'disassociate', account: string, lead: string, at: number): ChangeEvent {
  return {
    organizationId: ORG,
    entity: 'accountleads',
    recordId: `${account}:${lead}`,
    operation: op,
    version: { modifiedOn: timeOf(at) },
    operationTime: timeOf(at),
    relationship: {
      name: 'accountleads',
      entity1: { logicalName: 'account', id: account },
      entity2: { logicalName: 'lead', id: lead },
    },
    correlationId: 'test',
    source: 'webhook',
  };
}

const str = (value: string): AttributeValue => ({ type: 'string', value });
const statuses = (outcomes: ApplyOutcome[]) => outcomes.map((o) => o.status);

function target(url: string, overrides: Partial<SinkTarget> = {}): SinkTarget {
  return {
    kind: 'postgres',
    connectionString: url,
    schema: 'public',
    tablePrefix: '',
    writeDeleteLog: true,
    ...overrides,
  };
}

/** Opens a sink that closes with the test (`await using`). */
async function sinkOn(url: string, overrides: Partial<SinkTarget> = {}): Promise<Sink & AsyncDisposable> {
  const sink = await openSink(target(url, overrides));
  return Object.assign(sink, { [Symbol.asyncDispose]: () => sink.close() });
}

async function rows(pool: pg.Pool, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  return (await pool.query(sql, params)).rows;
}

async function tables(pool: pg.Pool): Promise<string[]> {
  const r = await rows(
    pool,
    `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`,
  );
  return r.map((x) => String(x.table_name));
}

describe('PostgreSQL sink', () => {
  after(stopOwnServer);

  it('creates the entity table with DES columns typed from the values', async () => {
    await using db = await createTestDatabase();
    await using sink = await sinkOn(db.url);
    const outcomes = await sink.applyBatch([
      upsert('account', guid(1), 10, {
        name: str('Contoso'),
        parentaccountid: { type: 'lookup', value: guid(2).toUpperCase(), entityType: 'account' },
        industrycode: { type: 'optionset', value: 3 },
        statecode: { type: 'optionset', value: 0 },
        categories: { type: 'multiselect', value: [1, 2] },
        revenue: { type: 'money', value: '1234.5678' },
        exchangerate: { type: 'decimal', value: '1.0000000001' },
        numberofemployees: { type: 'int', value: 42 },
        lastusedincampaign: { type: 'datetime', value: '2025-06-01T10:00:00+02:00' },
        donotemail: { type: 'boolean', value: true },
        latitude: { type: 'float', value: 47.5 },
        versionnumber: { type: 'bigint', value: '10' },
      }),
    ]);
    assert.deepEqual(statuses(outcomes), ['applied']);

    const columns = await rows(
      db.pool,
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'account' ORDER BY column_name`,
    );
    const types = Object.fromEntries(columns.map((c) => [c.column_name, c.data_type]));
    assert.deepEqual(types, {
      id: 'uuid',
      sinkcreatedon: 'timestamp with time zone',
      sinkmodifiedon: 'timestamp with time zone',
      versionnumber: 'bigint',
      modifiedon: 'timestamp with time zone',
      name: 'text',
      parentaccountid: 'uuid',
      parentaccountid_entitytype: 'character varying',
      industrycode: 'integer',
      statecode: 'integer',
      categories: 'text',
      revenue: 'numeric',
      exchangerate: 'numeric',
      // A bare whole number is a Whole Number: bigint (8 bytes, not decimal's 17 of SQL Server's row).
      numberofemployees: 'bigint',
      lastusedincampaign: 'timestamp with time zone',
      donotemail: 'boolean',
      latitude: 'double precision',
    });
    const [row] = await rows(db.pool, "SELECT *, lastusedincampaign AT TIME ZONE 'UTC' AS utc FROM account");
    assert.equal(row.id, guid(1));
    assert.equal(row.parentaccountid, guid(2));
    assert.equal(row.parentaccountid_entitytype, 'account');
    assert.equal(row.categories, '1,2');
    assert.equal(row.revenue, '1234.5678');
    assert.equal(row.exchangerate, '1.0000000001');
    assert.equal(row.versionnumber, '10');
    assert.equal((row.utc as Date).toISOString().slice(0, 19), '2025-06-01T08:00:00');
    assert.equal(row.donotemail, true);
    assert.ok(row.sinkcreatedon instanceof Date);
  });

  it('types columns from metadata when it is given, and a later value never breaks an existing column', async () => {
    await using db = await createTestDatabase();
    await using sink = await sinkOn(db.url);
    const attributeSpecs = {
      contact: [
        { name: 'fullname', kind: 'string' as const, maxLength: 160 },
        { name: 'numberofchildren', kind: 'int' as const },
        { name: 'creditlimit', kind: 'money' as const, precision: 19, scale: 4 },
        { name: 'statuscode', kind: 'status' as const },
      ],
    };
    await sink.applyBatch([upsert('contact', guid(1), 1, { fullname: str('Ann') })], { attributeSpecs });
    const types = await rows(
      db.pool,
      `SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale
       FROM information_schema.columns WHERE table_name = 'contact' ORDER BY column_name`,
    );
    const byName = Object.fromEntries(types.map((t) => [t.column_name, t]));
    assert.equal(byName.fullname.data_type, 'character varying');
    assert.equal(byName.fullname.character_maximum_length, 160);
    assert.equal(byName.numberofchildren.data_type, 'integer');
    // DES's money column: decimal(38,2) widened to the currency's 4 decimals, never rounded.
    assert.deepEqual([byName.creditlimit.numeric_precision, byName.creditlimit.numeric_scale], [38, 4]);
    assert.equal(byName.statuscode.data_type, 'integer');

    // Metadata now says something else: the existing column stays, values that fit it are written.
    const later = await sink.applyBatch(
      [upsert('contact', guid(1), 2, { numberofchildren: { type: 'decimal', value: '3.000' } })],
      { attributeSpecs: { contact: [{ name: 'numberofchildren', kind: 'decimal', precision: 10, scale: 2 }] } },
    );
    assert.deepEqual(statuses(later), ['applied']);
    const [row] = await rows(db.pool, 'SELECT numberofchildren, fullname FROM contact');
    assert.deepEqual(row, { numberofchildren: 3, fullname: 'Ann' });
  });

  it('upserts, and a partial update keeps the columns it does not carry', async () => {
    await using db = await createTestDatabase();
    await using sink = await sinkOn(db.url);
    await sink.applyBatch([upsert('account', guid(1), 1, { name: str('A'), city: str('Oslo') })]);
    const [before] = await rows(db.pool, 'SELECT sinkcreatedon FROM account');
    const outcomes = await sink.applyBatch([upsert('account', guid(1), 2, { city: str('Bergen') })]);
    assert.deepEqual(statuses(outcomes), ['applied']);
    const [row] = await rows(db.pool, 'SELECT name, city, versionnumber, modifiedon, sinkcreatedon FROM account');
    assert.equal(row.name, 'A');
    assert.equal(row.city, 'Bergen');
    assert.equal(row.versionnumber, '2');
    assert.equal((row.modifiedon as Date).toISOString(), timeOf(2));
    assert.deepEqual(row.sinkcreatedon, before.sinkcreatedon);
  });

  it('skips an update older than the stored row, and a duplicate is a no-op', async () => {
    await using db = await createTestDatabase();
    await using sink = await sinkOn(db.url);
    await sink.applyBatch([upsert('account', guid(1), 5, { name: str('five') })]);
    const outcomes = await sink.applyBatch([
      upsert('account', guid(1), 4, { name: str('four') }),
      upsert('account', guid(2), 1, { name: str('other') }),
    ]);
    assert.deepEqual(statuses(outcomes), ['stale', 'applied']);
    const duplicate = await sink.applyBatch([upsert('account', guid(1), 5, { name: str('five') })]);
    assert.deepEqual(statuses(duplicate), ['stale']);
    const r = await rows(db.pool, 'SELECT name FROM account WHERE id = $1', [guid(1)]);
    assert.deepEqual(r, [{ name: 'five' }]);
  });

  it('compares modification times when changes carry no row version', async () => {
    await using db = await createTestDatabase();
    await using sink = await sinkOn(db.url);
    const timed = (at: number, name: string): ChangeEvent => ({
      ...upsert('account', guid(1), undefined, { name: str(name) }),
      version: { modifiedOn: timeOf(at) },
    });
    assert.deepEqual(statuses(await sink.applyBatch([timed(10, 'ten')])), ['applied']);
    assert.deepEqual(statuses(await sink.applyBatch([timed(9, 'nine')])), ['stale']);
    assert.deepEqual(statuses(await sink.applyBatch([timed(11, 'eleven')])), ['applied']);
    assert.deepEqual(await rows(db.pool, 'SELECT name, versionnumber FROM account'), [
      { name: 'eleven', versionnumber: null },
    ]);
  });

  it('keeps only the newest change per record within a batch', async () => {
    await using db = await createTestDatabase();
    await using sink = await sinkOn(db.url);
    const outcomes = await sink.applyBatch([
      upsert('account', guid(1), 3, { name: str('three'), city: str('Rome') }),
      upsert('account', guid(1), 1, { name: str('one'), city: str('Oslo') }),
      upsert('account', guid(1), 3, { name: str('three'), city: str('Rome') }),
      upsert('account', guid(2), 2, { name: str('b') }),
      remove('account', guid(2), 2, 3),
    ]);
    // Equal versions: the last to arrive stands for both, the earlier copy is the stale one.
    assert.deepEqual(statuses(outcomes), ['stale', 'stale', 'applied', 'stale', 'applied']);
    assert.deepEqual(await rows(db.pool, 'SELECT id, name, city FROM account'), [
      { id: guid(1), name: 'three', city: 'Rome' },
    ]);
  });

  it('keeps an older partial update of the same batch whose columns the newer one does not carry', async () => {
    await using db = await createTestDatabase();
    await using sink = await sinkOn(db.url);
    const outcomes = await sink.applyBatch([
      upsert('account', guid(1), 2, { city: str('Bergen') }),
      upsert('account', guid(1), 1, { name: str('A'), city: str('Oslo') }),
    ]);
    assert.deepEqual(statuses(outcomes), ['applied', 'applied']);
    assert.deepEqual(await rows(db.pool, 'SELECT name, city, versionnumber FROM account'), [
      { name: 'A', city: 'Bergen', versionnumber: '2' },
    ]);
  });

  it('deletes with a tombstone; an older update does not resurrect, a newer re-create does', async () => {
    await using db = await createTestDatabase();
    await using sink = await sinkOn(db.url);
    await sink.applyBatch([upsert('account', guid(1), 5, { name: str('five') })]);
    assert.deepEqual(statuses(await sink.applyBatch([remove('account', guid(1), 5, 6)])), ['applied']);
    assert.deepEqual(await rows(db.pool, 'SELECT * FROM account'), []);
    const tomb = await rows(db.pool, 'SELECT entityname, recordid, versionnumber, deletedon FROM tombstone');
    assert.deepEqual(tomb, [
      { entityname: 'account', recordid: guid(1), versionnumber: '5', deletedon: new Date(timeOf(6)) },
    ]);

    assert.deepEqual(statuses(await sink.applyBatch([remove('account', guid(1), 5, 6)])), ['stale']);
    assert.deepEqual(statuses(await sink.applyBatch([upsert('account', guid(1), 5, { name: str('late') })])), [
      'stale',
    ]);
    assert.deepEqual(statuses(await sink.applyBatch([upsert('account', guid(1), 4, { name: str('older') })])), [
      'stale',
    ]);
    assert.deepEqual(await rows(db.pool, 'SELECT * FROM account'), []);

    assert.deepEqual(statuses(await sink.applyBatch([upsert('account', guid(1), 7, { name: str('again') })])), [
      'applied',
    ]);
    assert.deepEqual(await rows(db.pool, 'SELECT name FROM account'), [{ name: 'again' }]);
  });

  it('does not apply a delete older than a re-created row', async () => {
    await using db = await createTestDatabase();
    await using sink = await sinkOn(db.url);
    await sink.applyBatch([upsert('account', guid(1), 9, { name: str('recreated') })]);
    const outcomes = await sink.applyBatch([remove('account', guid(1), 5, 6)]);
    assert.deepEqual(statuses(outcomes), ['stale']);
    assert.deepEqual(await rows(db.pool, 'SELECT name FROM account'), [{ name: 'recreated' }]);
    assert.deepEqual(await rows(db.pool, 'SELECT * FROM deletelog'), []);
  });

  it('writes a DeleteLog row for each applied delete when the option is on', async () => {
    await using db = await createTestDatabase();
    await using sink = await sinkOn(db.url, { writeDeleteLog: true });
    await sink.applyBatch([
      upsert('account', guid(1), 1, { name: str('a') }),
      upsert('account', guid(2), 1, { name: str('b') }),
    ]);
    await sink.applyBatch([remove('account', guid(1), 1, 2), remove('account', guid(2), undefined, 3)]);
    await sink.applyBatch([remove('account', guid(1), 1, 2)]);
    const log = await rows(
      db.pool,
      'SELECT id, entityname, recordid, versionnumber, sinkdeletetime IS NOT NULL AS timed FROM deletelog ORDER BY recordid',
    );
    assert.deepEqual(
      log.map(({ id: _, ...rest }) => rest),
      [
        { entityname: 'account', recordid: guid(1), versionnumber: '1', timed: true },
        // Without a pre-image the log carries the version of the row that was removed.
        { entityname: 'account', recordid: guid(2), versionnumber: '1', timed: true },
      ],
    );
  });

  it('writes no DeleteLog when the option is off', async () => {
    await using db = await createTestDatabase();
    await using sink = await sinkOn(db.url, { writeDeleteLog: false });
    await sink.applyBatch([upsert('account', guid(1), 1, { name: str('a') })]);
    assert.deepEqual(statuses(await sink.applyBatch([remove('account', guid(1), 1, 2)])), ['applied']);
    assert.deepEqual(await tables(db.pool), ['account', 'tombstone']);
  });

  it('names every table with the profile prefix, folded to lower case', async () => {
    await using db = await createTestDatabase();
    await using sink = await sinkOn(db.url, { tablePrefix: 'Sales' });
    await sink.applyBatch([upsert('account', guid(1), 1, { name: str('a') })]);
    await sink.applyBatch([remove('account', guid(1), 1, 2)]);
    await sink.writeMetadata({ entity: 'account', states: [state(0, 'Active')] });
    assert.deepEqual(await tables(db.pool), [
      'sales_account',
      'sales_deletelog',
      'sales_statemetadata',
      'sales_tombstone',
    ]);
  });

  it('refuses a prefix so long that PostgreSQL would truncate the side-table names', async () => {
    await assert.rejects(openSink(target('postgres://unused', { tablePrefix: 'p'.repeat(40) })), (err: unknown) => {
      assert.ok(err instanceof AppError);
      assert.equal(err.code, 'ILLEGAL_IDENTIFIER');
      assert.match(err.message, /target\.tablePrefix .* at most 39 characters/);
      return true;
    });
  });

  it("creates the profile's schema and writes there", async () => {
    await using db = await createTestDatabase();
    await using sink = await sinkOn(db.url, { schema: 'Export' });
    await sink.writeMetadata({ entity: 'account', states: [state(0, 'Active')] });
    await sink.applyBatch([upsert('account', guid(1), 1, { name: str('a') })]);
    const found = await rows(
      db.pool,
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'export' ORDER BY 1`,
    );
    assert.deepEqual(
      found.map((r) => r.table_name),
      ['account', 'deletelog', 'statemetadata', 'tombstone'],
    );
    assert.deepEqual(await tables(db.pool), []);
  });

  it('adds a column for an attribute it has not seen', async () => {
    await using db = await createTestDatabase();
    await using sink = await sinkOn(db.url);
    await sink.applyBatch([upsert('account', guid(1), 1, { name: str('a') })]);
    const outcomes = await sink.applyBatch([
      upsert('account', guid(1), 2, {
        telephone1: str('555'),
        ownerid: { type: 'lookup', value: guid(9), entityType: 'team' },
      }),
    ]);
    assert.deepEqual(statuses(outcomes), ['applied']);
    assert.deepEqual(await rows(db.pool, 'SELECT name, telephone1, ownerid, ownerid_entitytype FROM account'), [
      { name: 'a', telephone1: '555', ownerid: guid(9), ownerid_entitytype: 'team' },
    ]);
  });

  it('writes N:N rows to a table named after the relationship, with tombstones', async () => {
    await using db = await createTestDatabase();
    await using sink = await sinkOn(db.url);
    const [account, lead] = [guid(1), guid(2, 'b')];
    assert.deepEqual(statuses(await sink.applyBatch([relate('associate', account, lead, 1)])), ['applied']);
    assert.deepEqual(await rows(db.pool, 'SELECT id, accountid, leadid FROM accountleads'), [
      { id: pairId(account, lead), accountid: account, leadid: lead },
    ]);
    assert.deepEqual(statuses(await sink.applyBatch([relate('disassociate', account, lead, 2)])), ['applied']);
    assert.deepEqual(await rows(db.pool, 'SELECT * FROM accountleads'), []);
    // A redelivered associate from before the disassociate stays out; a later one comes back.
    assert.deepEqual(statuses(await sink.applyBatch([relate('associate', account, lead, 1)])), ['stale']);
    assert.deepEqual(statuses(await sink.applyBatch([relate('associate', account, lead, 3)])), ['applied']);
    assert.equal((await rows(db.pool, 'SELECT * FROM accountleads')).length, 1);
    // Disassociations are not record deletes: nothing in the DeleteLog.
    assert.deepEqual(await rows(db.pool, 'SELECT * FROM deletelog'), []);
  });

  it('fails only the record whose value is too long for its typed column', async () => {
    await using db = await createTestDatabase();
    await using sink = await sinkOn(db.url);
    const attributeSpecs = { account: [{ name: 'accountnumber', kind: 'string' as const, maxLength: 5 }] };
    const outcomes = await sink.applyBatch(
      [
        upsert('account', guid(1), 1, { accountnumber: str('12345') }),
        upsert('account', guid(2), 1, { accountnumber: str('123456') }),
        upsert('account', guid(3), 1, { accountnumber: str('ok') }),
      ],
      { attributeSpecs },
    );
    assert.deepEqual(statuses(outcomes), ['applied', 'failed', 'applied']);
    const failure = outcomes[1] as { status: 'failed'; error: AppError };
    assert.equal(failure.error.code, 'TARGET_PERMANENT');
    assert.equal(failure.error.transient, false);
    assert.match(failure.error.message, /accountnumber/);
    assert.equal((await rows(db.pool, 'SELECT * FROM account')).length, 2);
  });

  it('isolates the rows the database itself refuses and applies the rest of the set', async () => {
    await using db = await createTestDatabase();
    await using sink = await sinkOn(db.url);
    const attributeSpecs = { account: [{ name: 'numberofemployees', kind: 'int' as const }] };
    const changes = Array.from({ length: 40 }, (_, i) =>
      upsert('account', guid(i + 1), 1, {
        // Two values overflow a 32-bit integer: only PostgreSQL can tell (22003).
        numberofemployees: { type: 'int', value: i === 7 || i === 31 ? 3_000_000_000 : i },
      }),
    );
    const outcomes = await sink.applyBatch(changes, { attributeSpecs });
    const failed = outcomes.flatMap((o, i) => (o.status === 'failed' ? [i] : []));
    assert.deepEqual(failed, [7, 31]);
    const error = (outcomes[7] as { error: AppError }).error;
    assert.equal(error.code, 'TARGET_PERMANENT');
    assert.match(error.message, /out of range/);
    assert.equal((await rows(db.pool, 'SELECT * FROM account')).length, 38);
  });

  it('throws TARGET_UNREACHABLE when nothing listens on the port', async () => {
    const port = await freePort();
    const url = `postgres://postgres:x@127.0.0.1:${port}/postgres`;
    await using sink = await sinkOn(url);
    await assert.rejects(sink.applyBatch([upsert('account', guid(1), 1, { name: str('a') })]), (err: unknown) => {
      assert.ok(err instanceof AppError);
      assert.equal(err.code, 'TARGET_UNREACHABLE');
      assert.equal(err.transient, true);
      return true;
    });
    await assert.rejects(probeTarget('postgres', url), { code: 'TARGET_UNREACHABLE' });
  });

  it('throws TARGET_TRANSIENT for the whole batch when a lock cannot be had in time', async () => {
    await using db = await createTestDatabase();
    await using setup = await sinkOn(db.url);
    await setup.applyBatch([upsert('account', guid(1), 1, { name: str('a') })]);
    const impatient = `${db.url}${db.url.includes('?') ? '&' : '?'}options=${encodeURIComponent('-c lock_timeout=200')}`;
    await using sink = await sinkOn(impatient);
    const holder = await db.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE account IN ACCESS EXCLUSIVE MODE');
      await assert.rejects(sink.applyBatch([upsert('account', guid(1), 2, { name: str('b') })]), {
        code: 'TARGET_TRANSIENT',
      });
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    assert.deepEqual(statuses(await sink.applyBatch([upsert('account', guid(1), 2, { name: str('b') })])), ['applied']);
  });

  it('lets two appliers create the same table and columns at once', async () => {
    await using db = await createTestDatabase();
    const sinks = await Promise.all([0, 1, 2, 3].map(() => openSink(target(db.url))));
    try {
      const results = await Promise.all(
        sinks.map((sink, i) =>
          sink.applyBatch([upsert('contact', guid(i + 1), 1, { fullname: str(`c${i}`), [`extra${i % 2}`]: str('x') })]),
        ),
      );
      assert.deepEqual(results.map(statuses), [['applied'], ['applied'], ['applied'], ['applied']]);
    } finally {
      await Promise.all(sinks.map((s) => s.close()));
    }
    assert.equal((await rows(db.pool, 'SELECT * FROM contact')).length, 4);
  });

  it('fails a change that names an illegal attribute without touching the rest', async () => {
    await using db = await createTestDatabase();
    await using sink = await sinkOn(db.url);
    const outcomes = await sink.applyBatch([
      upsert('account', guid(1), 1, { 'name; drop table x': str('a') }),
      upsert('account', guid(2), 1, { name: str('b') }),
    ]);
    assert.deepEqual(statuses(outcomes), ['failed', 'applied']);
    assert.equal((outcomes[0] as { error: AppError }).error.code, 'ILLEGAL_IDENTIFIER');
  });

  it('purges tombstones older than the cutoff', async () => {
    await using db = await createTestDatabase();
    await using sink = await sinkOn(db.url);
    assert.equal(await sink.purgeTombstones(new Date()), 0, 'no tombstone table yet');
    const future = (Date.now() + 86_400_000 - T0) / 1000;
    await sink.applyBatch([remove('account', guid(1), undefined, 10), remove('account', guid(2), undefined, future)]);
    assert.equal(await sink.purgeTombstones(new Date(Date.now() + 60_000)), 1);
    assert.deepEqual(await rows(db.pool, 'SELECT recordid FROM tombstone'), [{ recordid: guid(2) }]);
  });

  it("drops one profile's tables and leaves another prefix's alone", async () => {
    await using db = await createTestDatabase();
    await using a = await sinkOn(db.url, { tablePrefix: 'a' });
    await using b = await sinkOn(db.url, { tablePrefix: 'b' });
    for (const sink of [a, b]) {
      await sink.applyBatch([
        upsert('account', guid(1), 1, { name: str('x') }),
        upsert('contact', guid(2), 1, { fullname: str('y') }),
        relate('associate', guid(1), guid(3, 'b'), 1),
        remove('contact', guid(2), 1, 2),
      ]);
      await sink.writeMetadata({ entity: 'account', states: [state(0, 'Active')] });
    }
    const dropped = await a.dropTables(['account', 'contact'], ['accountleads']);
    assert.deepEqual(dropped.sort(), [
      'a_DeleteLog',
      'a_StateMetadata',
      'a_Tombstone',
      'a_account',
      'a_accountleads',
      'a_contact',
    ]);
    assert.deepEqual(await tables(db.pool), [
      'b_account',
      'b_accountleads',
      'b_contact',
      'b_deletelog',
      'b_statemetadata',
      'b_tombstone',
    ]);
    // The dropped profile can start again from nothing.
    assert.deepEqual(statuses(await a.applyBatch([upsert('account', guid(1), 1, { name: str('x') })])), ['applied']);
  });

  it('keeps side tables a profile with the same prefix still uses', async () => {
    await using db = await createTestDatabase();
    await using sink = await sinkOn(db.url);
    await sink.applyBatch([remove('account', guid(1), 1, 2), remove('contact', guid(2), 1, 2)]);
    const dropped = await sink.dropTables(['account'], []);
    assert.deepEqual(dropped, ['account']);
    assert.deepEqual(await tables(db.pool), ['contact', 'deletelog', 'tombstone']);
    assert.deepEqual(await rows(db.pool, 'SELECT entityname FROM tombstone'), [{ entityname: 'contact' }]);
    assert.deepEqual(await rows(db.pool, 'SELECT entityname FROM deletelog'), [{ entityname: 'contact' }]);
  });

  it('writes the metadata side tables and replaces an entity’s rows on a second write', async () => {
    await using db = await createTestDatabase();
    await using sink = await sinkOn(db.url, { tablePrefix: 'm' });
    await sink.writeMetadata({
      entity: 'account',
      optionSets: [{ optionSetName: 'industrycode', option: 1, ...label('Accounting') }],
      globalOptionSets: [
        { optionSetName: 'budgetstatus', option: 0, ...label('No Committed Budget') },
        { optionSetName: 'budgetstatus', option: 1, ...label('May Buy') },
      ],
      states: [state(0, 'Active'), state(1, 'Inactive')],
      statuses: [{ state: 0, status: 1, ...label('Active') }],
      targets: [{ attributeName: 'parentaccountid', referencedEntity: 'account', referencedAttribute: 'accountid' }],
      attributes: [
        {
          attributeName: 'name',
          attributeType: 'String',
          attributeTypeCode: 14,
          maxLength: 160,
          metadataId: guid(77),
          timestamp: '2025-01-01T00:00:00Z',
          version: '42',
        },
      ],
    });
    await sink.writeMetadata({ entity: 'account', states: [state(0, 'Open')] });
    assert.deepEqual(await rows(db.pool, 'SELECT * FROM m_statemetadata'), [
      {
        entityname: 'account',
        state: 0,
        isuserlocalizedlabel: false,
        localizedlabellanguagecode: 1033,
        localizedlabel: 'Open',
      },
    ]);
    assert.deepEqual(
      await rows(db.pool, 'SELECT entityname, optionsetname, option, localizedlabel FROM m_optionsetmetadata'),
      [{ entityname: 'account', optionsetname: 'industrycode', option: 1, localizedlabel: 'Accounting' }],
    );
    assert.equal((await rows(db.pool, 'SELECT * FROM m_globaloptionsetmetadata')).length, 2);
    assert.deepEqual(await rows(db.pool, 'SELECT entityname, state, status, localizedlabel FROM m_statusmetadata'), [
      { entityname: 'account', state: 0, status: 1, localizedlabel: 'Active' },
    ]);
    assert.deepEqual(
      await rows(db.pool, 'SELECT attributename, referencedentity, referencedattribute FROM m_targetmetadata'),
      [{ attributename: 'parentaccountid', referencedentity: 'account', referencedattribute: 'accountid' }],
    );
    const [attribute] = await rows(db.pool, 'SELECT * FROM m_attributemetadata');
    assert.equal(typeof attribute.id, 'string');
    assert.equal(attribute.attributename, 'name');
    assert.equal(attribute.attributetypecode, 14);
    assert.equal(attribute.maxlength, 160);
    assert.equal(attribute.version, '42');
    assert.equal(attribute.metadataid, guid(77));
    assert.equal(attribute.precision, null);
  });
});

/** What the queue trigger does with TARGET_TRANSIENT (a deadlock between the two appliers): try again. */
function label(text: string) {
  return { isUserLocalizedLabel: false, localizedLabelLanguageCode: 1033, localizedLabel: text };
}

function state(value: number, text: string) {
  return { state: value, ...label(text) };
}
