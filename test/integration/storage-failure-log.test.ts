import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { type FailureEntry, FailureLog, failuresToCsv } from '../../lib/storage/failure-log.js';
import { createTestStorage, stopOwnAzurite, type TestStorage } from '../support/azurite.js';

after(stopOwnAzurite);

const PROFILE = '3b1c2d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d';

function failure(time: string, recordId = `rec-${time}`, extra: Partial<FailureEntry> = {}): FailureEntry {
  return {
    profileId: PROFILE,
    entity: 'account',
    recordId,
    changeType: 'upsert',
    time,
    reason: 'value too long for column name (nvarchar(100))',
    code: 'TARGET_PERMANENT',
    attempts: 12,
    ...extra,
  };
}

function failureLog(storage: TestStorage): FailureLog {
  return new FailureLog({ blobs: storage.blobs, container: storage.container('failurelog') });
}

async function blobNames(storage: TestStorage): Promise<string[]> {
  const names: string[] = [];
  for await (const blob of storage.blobs.list(storage.container('failurelog'))) names.push(blob.name);
  return names;
}

/** Entries spread over five hour folders and two days. */
const TIMES = [
  '2026-11-04T22:15:00.000Z',
  '2026-11-04T23:59:59.999Z',
  '2026-11-05T00:00:00.000Z',
  '2026-11-05T00:30:00.000Z',
  '2026-11-05T09:05:00.000Z',
  '2026-11-05T09:45:00.000Z',
  '2026-11-05T10:00:01.000Z',
];

/** RFC 4180 reader for the test: quoted fields, doubled quotes, CRLF records. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  assert.equal(field, '', 'the last record ends with CRLF');
  return rows;
}

describe('failure log in Azurite', () => {
  it('writes one blob per hour of the entries, under <profileId>/yyyy/MM/dd/HH/', async () => {
    await using storage = await createTestStorage();
    const log = failureLog(storage);
    const names = await log.writeFailures(
      PROFILE,
      TIMES.slice(2, 6).map((t) => failure(t)),
    );
    assert.equal(names.length, 2);
    const stored = (await blobNames(storage)).sort();
    assert.deepEqual(stored, names.sort());
    assert.match(stored[0], new RegExp(`^${PROFILE}/2026/11/05/00/20261105T003000000Z-[0-9a-f-]{36}\\.json$`));
    assert.match(stored[1], new RegExp(`^${PROFILE}/2026/11/05/09/20261105T094500000Z-[0-9a-f-]{36}\\.json$`));
  });

  it('lists newest first across hour and day folders', async () => {
    await using storage = await createTestStorage();
    const log = failureLog(storage);
    // Out of order, over several writes, so neither write order nor blob order decides.
    await log.writeFailures(PROFILE, [failure(TIMES[4]), failure(TIMES[0]), failure(TIMES[6])]);
    await log.writeFailures(PROFILE, [failure(TIMES[5]), failure(TIMES[2])]);
    await log.writeFailures(PROFILE, [failure(TIMES[1]), failure(TIMES[3])]);
    const listed = await log.listFailures(PROFILE);
    assert.deepEqual(
      listed.map((e) => e.time),
      [...TIMES].reverse(),
    );
    assert.deepEqual(listed[0], failure(TIMES[6]));
  });

  it('filters by from and to (inclusive) and stops at the limit', async () => {
    await using storage = await createTestStorage();
    const log = failureLog(storage);
    await log.writeFailures(
      PROFILE,
      TIMES.map((t) => failure(t)),
    );
    const between = await log.listFailures(PROFILE, {
      from: new Date('2026-11-04T23:59:59.999Z'),
      to: new Date('2026-11-05T09:05:00.000Z'),
    });
    assert.deepEqual(
      between.map((e) => e.time),
      TIMES.slice(1, 5).reverse(),
    );
    const fromOnly = await log.listFailures(PROFILE, { from: new Date('2026-11-05T09:30:00Z') });
    assert.deepEqual(
      fromOnly.map((e) => e.time),
      [TIMES[6], TIMES[5]],
    );
    const toOnly = await log.listFailures(PROFILE, { to: new Date('2026-11-05T00:00:00Z') });
    assert.deepEqual(
      toOnly.map((e) => e.time),
      [TIMES[2], TIMES[1], TIMES[0]],
    );
    const newestThree = await log.listFailures(PROFILE, { limit: 3 });
    assert.deepEqual(
      newestThree.map((e) => e.time),
      [TIMES[6], TIMES[5], TIMES[4]],
    );
    assert.deepEqual(await log.listFailures(PROFILE, { from: new Date('2027-01-01T00:00:00Z') }), []);
  });

  it('keeps profiles apart', async () => {
    await using storage = await createTestStorage();
    const log = failureLog(storage);
    await log.writeFailures(PROFILE, [failure(TIMES[0])]);
    await log.writeFailures('other-profile', [failure(TIMES[1], 'x', { profileId: 'other-profile' })]);
    assert.deepEqual(
      (await log.listFailures(PROFILE)).map((e) => e.recordId),
      [`rec-${TIMES[0]}`],
    );
    await assert.rejects(log.writeFailures(PROFILE, [failure(TIMES[0], 'x', { profileId: 'other-profile' })]), {
      code: 'VALIDATION_FAILED',
    });
    await assert.rejects(log.listFailures('../x'), { code: 'VALIDATION_FAILED' });
  });

  it('rejects an entry whose time is not a date', async () => {
    await using storage = await createTestStorage();
    await assert.rejects(
      failureLog(storage).writeFailures(PROFILE, [failure('yesterday')]),
      /invalid time 'yesterday'/,
    );
  });

  it('deletes exactly the entries before a date, rewriting only the hour that straddles it', async () => {
    await using storage = await createTestStorage();
    const log = failureLog(storage);
    await log.writeFailures(
      PROFILE,
      TIMES.map((t) => failure(t)),
    );
    const before = new Date('2026-11-05T09:30:00Z');
    const blobsDeleted = await log.deleteFailures(PROFILE, { before });
    assert.equal(blobsDeleted, 3); // 2026-11-04T22, 2026-11-04T23, 2026-11-05T00
    assert.deepEqual(
      (await log.listFailures(PROFILE)).map((e) => e.time),
      [TIMES[6], TIMES[5]],
    );
    assert.equal((await blobNames(storage)).length, 2);
  });

  it('deletes all of a profile’s entries when no date is given', async () => {
    await using storage = await createTestStorage();
    const log = failureLog(storage);
    await log.writeFailures(
      PROFILE,
      TIMES.map((t) => failure(t)),
    );
    await log.writeFailures('other-profile', [failure(TIMES[0], 'x', { profileId: 'other-profile' })]);
    assert.equal(await log.deleteFailures(PROFILE), 5);
    assert.deepEqual(await log.listFailures(PROFILE), []);
    assert.equal((await log.listFailures('other-profile')).length, 1);
  });

  it('removes the entries a predicate selects (records a resync has applied)', async () => {
    await using storage = await createTestStorage();
    const log = failureLog(storage);
    await log.writeFailures(PROFILE, [
      failure(TIMES[4], 'a'),
      failure(TIMES[5], 'b'),
      failure(TIMES[6], 'a'),
      failure(TIMES[0], 'c'),
    ]);
    const applied = new Set(['a', 'c']);
    assert.equal(await log.deleteFailureEntries(PROFILE, (e) => applied.has(e.recordId)), 3);
    assert.deepEqual(
      (await log.listFailures(PROFILE)).map((e) => e.recordId),
      ['b'],
    );
    // Emptied blobs are removed rather than left as `[]`.
    assert.equal((await blobNames(storage)).length, 1);
    assert.equal(await log.deleteFailureEntries(PROFILE, () => true, { from: new Date('2026-11-06T00:00:00Z') }), 0);
  });

  it('exports CSV with a header row and RFC 4180 quoting that parses back', async () => {
    await using storage = await createTestStorage();
    const log = failureLog(storage);
    const awkward = failure(TIMES[1], 'r1', {
      reason: 'duplicate key "AK_name", value = "Contoso, Ltd"\r\nline two\nline three',
      correlationId: 'c0ffee',
    });
    const plain = failure(TIMES[0], 'r2', { attempts: undefined, changeType: 'delete' });
    await log.writeFailures(PROFILE, [awkward, plain]);
    const csv = failuresToCsv(await log.listFailures(PROFILE));
    const rows = parseCsv(csv);
    assert.deepEqual(rows[0], [
      'Time',
      'ProfileId',
      'Entity',
      'RecordId',
      'ChangeType',
      'Code',
      'Reason',
      'Attempts',
      'CorrelationId',
    ]);
    assert.deepEqual(rows[1], [
      TIMES[1],
      PROFILE,
      'account',
      'r1',
      'upsert',
      'TARGET_PERMANENT',
      awkward.reason,
      '12',
      'c0ffee',
    ]);
    assert.deepEqual(rows[2], [TIMES[0], PROFILE, 'account', 'r2', 'delete', 'TARGET_PERMANENT', plain.reason, '', '']);
    assert.equal(rows.length, 3);
    assert.equal(failuresToCsv([]).trim(), rows[0].join(','));
  });
});
