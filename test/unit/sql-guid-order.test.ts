import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareSqlGuids, guidOfSqlKey, sqlGuidKey } from '../../lib/dataverse/sql-guid-order.js';

/**
 * SQL Server's ascending ORDER BY of uniqueidentifiers that each hold one non-zero byte: the byte that
 * counts least comes first (SqlGuid compares ToByteArray() bytes 10–15, 8–9, 6–7, 4–5, 0–3).
 */
const SQL_SERVER_ORDER = [
  '01000000-0000-0000-0000-000000000000',
  '10000000-0000-0000-0000-000000000000',
  '00010000-0000-0000-0000-000000000000',
  '00100000-0000-0000-0000-000000000000',
  '00000100-0000-0000-0000-000000000000',
  '00001000-0000-0000-0000-000000000000',
  '00000001-0000-0000-0000-000000000000',
  '00000010-0000-0000-0000-000000000000',
  '00000000-0100-0000-0000-000000000000',
  '00000000-1000-0000-0000-000000000000',
  '00000000-0001-0000-0000-000000000000',
  '00000000-0010-0000-0000-000000000000',
  '00000000-0000-0100-0000-000000000000',
  '00000000-0000-1000-0000-000000000000',
  '00000000-0000-0001-0000-000000000000',
  '00000000-0000-0010-0000-000000000000',
  '00000000-0000-0000-0001-000000000000',
  '00000000-0000-0000-0010-000000000000',
  '00000000-0000-0000-0100-000000000000',
  '00000000-0000-0000-1000-000000000000',
  '00000000-0000-0000-0000-000000000001',
  '00000000-0000-0000-0000-000000000010',
  '00000000-0000-0000-0000-000000000100',
  '00000000-0000-0000-0000-000000001000',
  '00000000-0000-0000-0000-000000010000',
  '00000000-0000-0000-0000-000000100000',
  '00000000-0000-0000-0000-000001000000',
  '00000000-0000-0000-0000-000010000000',
  '00000000-0000-0000-0000-000100000000',
  '00000000-0000-0000-0000-001000000000',
  '00000000-0000-0000-0000-010000000000',
  '00000000-0000-0000-0000-100000000000',
];

describe("SQL Server's uniqueidentifier order", () => {
  it('sorts one-byte GUIDs as SQL Server does', () => {
    const shuffled = [...SQL_SERVER_ORDER].reverse().sort((a, b) => a.localeCompare(b));
    assert.deepEqual(shuffled.sort(compareSqlGuids), SQL_SERVER_ORDER);
  });

  it('keys ascend with the order, and a key turns back into its GUID', () => {
    const keys = SQL_SERVER_ORDER.map(sqlGuidKey);
    for (let i = 1; i < keys.length; i++) assert.ok(keys[i - 1] < keys[i], SQL_SERVER_ORDER[i]);
    for (const guid of [...SQL_SERVER_ORDER, '6f2d8a1c-3b4e-4f5a-9c7d-1e2f3a4b5c6d']) {
      assert.equal(guidOfSqlKey(sqlGuidKey(guid)), guid);
    }
  });

  it('orders by the last group first: ids that differ only in their last 12 digits sort by them', () => {
    const ids = ['ffffffff-ffff-4fff-bfff-000000000002', '00000000-0000-4000-8000-000000000003'];
    assert.deepEqual([...ids].sort(compareSqlGuids), ids);
    assert.equal(compareSqlGuids('A0000000-0000-0000-0000-000000000000', 'a0000000-0000-0000-0000-000000000000'), 0);
  });

  it('refuses text that is not a GUID', () => {
    assert.throws(() => sqlGuidKey('not-a-guid'), TypeError);
    assert.throws(() => guidOfSqlKey(1n << 128n), RangeError);
  });
});
