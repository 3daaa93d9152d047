import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AttributeValue, ChangeEvent } from '../../lib/change/change-event.js';
import { AppError } from '../../lib/errors.js';
import { pairId, type RecordChange, toRecordChange } from '../../lib/sink/record-change.js';
import { reduceBatch } from '../../lib/sink/reduce.js';
import {
  CellError,
  columnsForAttribute,
  columnTypeForSpec,
  columnTypeForValue,
  plainNumber,
  renderCell,
  toUtcIso,
} from '../../lib/sink/table-model.js';

const ID = '3f2504e0-4f89-41d3-9a0c-0305e82c3301';

function record(index: number, kind: 'upsert' | 'delete', v: number, attributes: string[] = []): RecordChange {
  return {
    index,
    entity: 'account',
    id: ID,
    kind,
    version: { rowVersion: String(v) },
    attributes: Object.fromEntries(attributes.map((a) => [a, { type: 'string', value: a } as AttributeValue])),
    logsDelete: kind === 'delete',
  };
}

const indexes = (list: RecordChange[]) => list.map((r) => r.index).sort();

describe('reduction within a batch', () => {
  it('keeps the newest full change and reports the older ones stale', () => {
    const { rounds, superseded } = reduceBatch([
      record(0, 'upsert', 1, ['name']),
      record(1, 'upsert', 3, ['name']),
      record(2, 'upsert', 2, ['name']),
    ]);
    assert.deepEqual(rounds.map(indexes), [[1]]);
    assert.deepEqual(indexes(superseded), [0, 2]);
  });

  it('lets a delete supersede every older change, and wins a tie', () => {
    const { rounds, superseded } = reduceBatch([record(0, 'upsert', 4, ['name']), record(1, 'delete', 4)]);
    assert.deepEqual(rounds.map(indexes), [[1]]);
    assert.deepEqual(indexes(superseded), [0]);
  });

  it('applies an older partial update first when it carries a column the newer one does not', () => {
    const { rounds, superseded } = reduceBatch([
      record(0, 'upsert', 2, ['city']),
      record(1, 'upsert', 1, ['name', 'city']),
    ]);
    assert.deepEqual(rounds.map(indexes), [[1], [0]]);
    assert.deepEqual(superseded, []);
  });

  it('keeps a re-create after a delete, delete first', () => {
    const { rounds } = reduceBatch([record(0, 'upsert', 9, ['name']), record(1, 'delete', 5)]);
    assert.deepEqual(rounds.map(indexes), [[1], [0]]);
  });
});

describe('change validation', () => {
  const base: ChangeEvent = {
    organizationId: 'org',
    entity: 'account',
    recordId: ID.toUpperCase(),
    operation: 'upsert',
    version: { rowVersion: '12' },
    operationTime: '2026-01-01T00:00:00Z',
    attributes: {
      name: { type: 'string', value: 'x' },
      modifiedon: { type: 'datetime', value: '2026-01-01T00:00:00Z' },
    },
    correlationId: 'c',
    source: 'webhook',
  };

  it('lower-cases the id, moves modifiedon into the version and drops reserved names', () => {
    const r = toRecordChange(base, 0);
    assert.equal(r.id, ID);
    assert.deepEqual(r.version, { rowVersion: '12', modifiedOn: '2026-01-01T00:00:00Z' });
    assert.deepEqual(Object.keys(r.attributes), ['name']);
  });

  it('gives a delete without a version the time of the operation', () => {
    const r = toRecordChange({ ...base, operation: 'delete', version: {}, attributes: undefined }, 0);
    assert.deepEqual(r.version, { modifiedOn: '2026-01-01T00:00:00Z' });
  });

  it('refuses a row version that is not a 64-bit number, naming it', () => {
    assert.throws(
      () => toRecordChange({ ...base, version: { rowVersion: '12abc' } }, 0),
      (err: unknown) => err instanceof AppError && err.code === 'VALIDATION_FAILED' && /12abc/.test(err.message),
    );
  });

  it('refuses a payload Dataverse stripped', () => {
    assert.throws(() => toRecordChange({ ...base, needsReread: true }, 0), { code: 'VALIDATION_FAILED' });
  });

  it('turns an association into a row keyed by the pair', () => {
    const other = '9f2504e0-4f89-41d3-9a0c-0305e82c3301';
    const r = toRecordChange(
      {
        ...base,
        entity: 'accountleads',
        recordId: `${ID}:${other}`,
        operation: 'associate',
        version: {},
        relationship: {
          name: 'accountleads',
          entity1: { logicalName: 'account', id: ID },
          entity2: { logicalName: 'lead', id: other },
        },
      },
      0,
    );
    assert.equal(r.id, pairId(ID, other));
    assert.deepEqual(Object.keys(r.attributes), ['accountid', 'leadid']);
    assert.equal(r.logsDelete, false);
  });
});

describe('cells', () => {
  it('writes a multi-select as "1,2" and a lookup id in lower case', () => {
    assert.equal(renderCell('c', { kind: 'text' }, { type: 'multiselect', value: [1, 2] }), '1,2');
    assert.equal(
      renderCell('c', { kind: 'uuid' }, { type: 'lookup', value: ID.toUpperCase(), entityType: 'account' }),
      ID,
    );
  });

  it('normalizes times to UTC', () => {
    assert.equal(
      renderCell('c', { kind: 'timestamp' }, { type: 'datetime', value: '2025-06-01T10:00:00+02:00' }),
      '2025-06-01T08:00:00.000Z',
    );
    assert.equal(toUtcIso('not a time'), undefined);
  });

  it('writes a whole decimal into an integer column and refuses a fraction', () => {
    assert.equal(renderCell('c', { kind: 'integer' }, { type: 'decimal', value: '3.000' }), '3');
    assert.throws(() => renderCell('c', { kind: 'integer' }, { type: 'decimal', value: '3.5' }), CellError);
  });

  it('refuses a value longer than the column, naming column and limit', () => {
    assert.throws(
      () => renderCell('accountnumber', { kind: 'text', maxLength: 3 }, { type: 'string', value: 'abcd' }),
      /accountnumber has 4 characters; the column holds at most 3/,
    );
  });

  it('spells exponents out, since T-SQL casts refuse them', () => {
    assert.equal(plainNumber('1e-7'), '0.0000001');
    assert.equal(plainNumber('1.5E+3'), '1500');
    assert.equal(plainNumber('-2.50e1'), '-25');
    assert.equal(plainNumber('12.3400'), '12.3400');
    assert.equal(plainNumber('abc'), undefined);
    assert.equal(renderCell('c', { kind: 'double' }, { type: 'float', value: 1e21 }), '1000000000000000000000');
  });

  it('infers bigint for a whole number and keeps metadata types as declared', () => {
    assert.deepEqual(columnTypeForValue('n', { type: 'int', value: 5 }), { kind: 'bigint' });
    assert.deepEqual(columnTypeForValue('n', { type: 'bigint', value: '5' }), { kind: 'bigint' });
    assert.deepEqual(columnTypeForSpec({ name: 'n', kind: 'int' }), { kind: 'integer' });
    assert.equal(columnTypeForValue('n', { type: 'null' }), undefined);
  });

  it('types money as DES did: decimal(38,2), its _base decimal(38,4), wider for a wider currency', () => {
    const money = (name: string, scale?: number) => columnTypeForSpec({ name, kind: 'money', precision: 19, scale });
    assert.deepEqual(money('revenue', 2), { kind: 'decimal', precision: 38, scale: 2 });
    assert.deepEqual(money('revenue_base', 2), { kind: 'decimal', precision: 38, scale: 4 });
    assert.deepEqual(money('price', 4), { kind: 'decimal', precision: 38, scale: 4 });
    // Without metadata the currency's precision is unknown: the 4 decimals money can carry, never rounded.
    assert.deepEqual(columnTypeForValue('revenue', { type: 'money', value: '1.5' }), {
      kind: 'decimal',
      precision: 38,
      scale: 4,
    });
    assert.deepEqual(columnsForAttribute('parentaccountid', { kind: 'uuid' }, true)[1], {
      name: 'parentaccountid_entitytype',
      type: { kind: 'text', maxLength: 128 },
    });
  });

  it('counts nvarchar lengths in UTF-16 code units for SQL Server and in code points for PostgreSQL', () => {
    const emoji = { type: 'string', value: 'ab😀' } as const;
    const three = { kind: 'text', maxLength: 3 } as const;
    assert.equal(renderCell('c', three, emoji, 'codePoint'), 'ab😀');
    assert.throws(
      () => renderCell('c', three, emoji, 'utf16'),
      /c has 4 UTF-16 code units; the column holds at most 3/,
    );
    assert.equal(renderCell('c', { kind: 'text', maxLength: 4 }, emoji, 'utf16'), 'ab😀');
  });
});
