import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TargetConnectError } from '../../lib/sink/dialect.js';
import { classifyMssqlError } from '../../lib/sink/dialects/mssql-errors.js';
import { classifyPostgresError } from '../../lib/sink/dialects/postgres-errors.js';

/** Errors shaped as node-postgres raises them: a message, a SQLSTATE or a socket code. */
const pgError = (code: string, message = `failed with ${code}`, extra: object = {}) =>
  Object.assign(new Error(message), { code, ...extra });

/** Errors shaped as mssql/tedious raises them: RequestError with a number, ConnectionError with a code. */
const mssqlError = (name: string, fields: { number?: number; code?: string }) =>
  Object.assign(new Error(`${name} ${fields.number ?? fields.code}`), { name, ...fields });

describe('PostgreSQL error classes', () => {
  const cases: Array<[string, unknown, string]> = [
    ['value too long', pgError('22001', 'value too long for type character varying(5)'), 'permanent'],
    ['invalid text for a type', pgError('22P02'), 'permanent'],
    ['numeric out of range', pgError('22003'), 'permanent'],
    ['serialization failure', pgError('40001'), 'transient'],
    ['deadlock', pgError('40P01'), 'transient'],
    ['lock timeout', pgError('55P03'), 'transient'],
    ['statement timeout', pgError('57014'), 'transient'],
    ['admin shutdown', pgError('57P01'), 'transient'],
    ['connection failure mid-statement', pgError('08006'), 'transient'],
    ['too many connections', pgError('53300'), 'transient'],
    ['socket reset', pgError('ECONNRESET'), 'transient'],
    ['connection lost', new Error('Connection terminated unexpectedly'), 'transient'],
    ['connection refused', pgError('ECONNREFUSED'), 'unreachable'],
    ['unknown host', pgError('ENOTFOUND'), 'unreachable'],
    ['bad password', pgError('28P01'), 'unreachable'],
    ['timeout while connecting', new TargetConnectError(pgError('ETIMEDOUT')), 'unreachable'],
    [
      'refused on every address',
      new TargetConnectError(
        Object.assign(new AggregateError([pgError('ECONNREFUSED', 'connect ECONNREFUSED ::1')]), {}),
      ),
      'unreachable',
    ],
    ['table created by another applier', pgError('42P07'), 'schemaRace'],
    ['column created by another applier', pgError('42701'), 'schemaRace'],
    ['table dropped under us', pgError('42P01'), 'schemaStale'],
  ];
  for (const [what, error, expected] of cases) {
    it(`classifies ${what} as ${expected}`, () => {
      assert.equal(classifyPostgresError(error).class, expected);
    });
  }

  it('keeps the driver’s words and the column it named', () => {
    const failure = classifyPostgresError(
      pgError('23502', 'null value in column "name"', { column: 'name', detail: 'x' }),
    );
    assert.deepEqual(failure, { class: 'permanent', reason: 'null value in column "name" (x)', column: 'name' });
  });

  it('names the reason of a connect failure from the inner error', () => {
    const failure = classifyPostgresError(
      new TargetConnectError(pgError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:1')),
    );
    assert.equal(failure.reason, 'connect ECONNREFUSED 127.0.0.1:1');
  });
});

describe('Azure SQL error classes', () => {
  const cases: Array<[string, unknown, string]> = [
    ['string truncation', mssqlError('RequestError', { number: 2628 }), 'permanent'],
    ['conversion failure', mssqlError('RequestError', { number: 245 }), 'permanent'],
    ['type clash', mssqlError('RequestError', { number: 8114 }), 'permanent'],
    ['deadlock victim', mssqlError('RequestError', { number: 1205 }), 'transient'],
    ['command timeout', mssqlError('RequestError', { number: -2 }), 'transient'],
    ['request timeout', mssqlError('RequestError', { code: 'ETIMEOUT' }), 'transient'],
    ['service busy', mssqlError('RequestError', { number: 40501 }), 'transient'],
    ['database unavailable', mssqlError('RequestError', { number: 40613 }), 'transient'],
    ['resource limit', mssqlError('RequestError', { number: 10928 }), 'transient'],
    ['connection closed mid-request', mssqlError('RequestError', { code: 'ECONNCLOSED' }), 'transient'],
    ['schema lock timeout of our DDL', mssqlError('RequestError', { number: 50001 }), 'transient'],
    ['login failed', mssqlError('ConnectionError', { code: 'ELOGIN', number: 18456 }), 'unreachable'],
    ['socket refused on connect', mssqlError('ConnectionError', { code: 'ESOCKET' }), 'unreachable'],
    [
      'connect wrapped by the connector',
      new TargetConnectError(mssqlError('ConnectionError', { code: 'ETIMEOUT' })),
      'unreachable',
    ],
    ['table created by another applier', mssqlError('RequestError', { number: 2714 }), 'schemaRace'],
    ['column dropped under us', mssqlError('RequestError', { number: 207 }), 'schemaStale'],
  ];
  for (const [what, error, expected] of cases) {
    it(`classifies ${what} as ${expected}`, () => {
      assert.equal(classifyMssqlError(error).class, expected);
    });
  }

  it('reads the number tedious nests in originalError', () => {
    const nested = Object.assign(new Error('Transaction was deadlocked'), {
      name: 'RequestError',
      originalError: { info: { number: 1205, message: 'deadlocked' } },
    });
    assert.equal(classifyMssqlError(nested).class, 'transient');
  });
});
