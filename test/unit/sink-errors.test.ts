import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mssql from 'mssql';
import { type FailureClass, TargetConnectError } from '../../lib/sink/dialect.js';
import { classifyMssqlError } from '../../lib/sink/dialects/mssql-errors.js';
import { classifyPostgresError } from '../../lib/sink/dialects/postgres-errors.js';

/** Errors shaped as node-postgres raises them: a message, a SQLSTATE or a socket code. */
const pgError = (code: string, message = `failed with ${code}`, extra: object = {}) =>
  Object.assign(new Error(message), { code, ...extra });

/**
 * Errors as mssql raises them over tedious: a server error is tedious's Error with `info` (number, message),
 * wrapped in mssql's RequestError with code EREQUEST; a driver failure is tedious's error with a code only.
 */
const serverError = (number: number, message = `SQL Server error ${number}`) =>
  new mssql.RequestError(
    Object.assign(new Error(message), { info: { number, message, state: 1, class: 16 } }) as never,
    'EREQUEST',
  );
const driverError = (code: string) =>
  new mssql.RequestError(Object.assign(new Error(`driver ${code}`), { code }) as never, 'EREQUEST');
const connectionError = (code: string) => new mssql.ConnectionError(`cannot connect (${code})`, code as never);

/** The one table that pins every number and SQLSTATE the sink knows to its class, for both dialects. */
const TABLE: Array<[FailureClass, Array<number | string>, string[]]> = [
  [
    'permanent',
    [8152, 2628, 245, 8114, 8115, 220, 232, 241, 242, 244, 248, 295, 517, 8169, 515, 547, 2601, 2627, 511, 8672, 1701],
    ['22001', '22P02', '22003', '22007', '22008', '23502', '23503', '23514', '21000', '54011'],
  ],
  ['unavailable', [40544, 1132, 9002, 1105, 1101, 9001, 3906], ['53100', '25006']],
  [
    'transient',
    [1205, 1222, 10928, 10929, 10936, 40501, 40143, 926, 701, 8645, 8651, 40613, 40197, 40540, 4221, 233, 10054, 50001],
    ['40P01', '40001', '55P03', '57P01', '57P03', '08006', '53000', '53200', '53300', '53400', 'ECONNRESET'],
  ],
  ['timeout', [-2, 40550, 40552, 1204], ['57014']],
  [
    'misconfigured',
    [229, 230, 262, 297, 300, 916, 102, 105, 156, 170, 195, 319, 4145],
    ['42501', '42601', '42883', '0A000'],
  ],
  ['unreachable', [18456, 4060, 40532, 40615], ['28P01', '28000', '3D000', 'ECONNREFUSED', 'ENOTFOUND']],
  ['schemaRace', [2714, 2705, 1913, 2759], ['42P07', '42701', '42710']],
  ['schemaStale', [208, 207], ['42P01', '42703']],
];

describe('failure classes, one table for both dialects', () => {
  for (const [expected, numbers, states] of TABLE) {
    it(`sorts SQL Server ${numbers.join(', ')} as ${expected}`, () => {
      for (const n of numbers) assert.equal(classifyMssqlError(serverError(Number(n))).class, expected, `error ${n}`);
    });
    it(`sorts PostgreSQL ${states.join(', ')} as ${expected}`, () => {
      for (const s of states) assert.equal(classifyPostgresError(pgError(s)).class, expected, `SQLSTATE ${s}`);
    });
  }

  it('never blames a row for an error nobody listed: it waits as unavailable, naming it', () => {
    const mssqlUnknown = classifyMssqlError(serverError(33333, 'something new'));
    assert.equal(mssqlUnknown.class, 'unavailable');
    assert.match(mssqlUnknown.action ?? '', /SQL Server error 33333/);
    const pgUnknown = classifyPostgresError(pgError('XX000', 'internal error'));
    assert.equal(pgUnknown.class, 'unavailable');
    assert.match(pgUnknown.action ?? '', /SQLSTATE XX000/);
    assert.equal(classifyMssqlError(new TypeError('a bug')).class, 'unavailable');
    assert.equal(classifyPostgresError(new TypeError('a bug')).class, 'unavailable');
  });

  it('tells what to do about a database-wide condition and a permission, naming the schema', () => {
    assert.match(classifyMssqlError(serverError(40544)).action ?? '', /size quota/);
    assert.match(classifyMssqlError(serverError(262), 'sales').action ?? '', /ON SCHEMA::\[sales\]/);
    assert.match(classifyMssqlError(serverError(156)).action ?? '', /COMPATIBILITY_LEVEL = 130/);
    assert.match(classifyPostgresError(pgError('42501'), 'sales').action ?? '', /ON SCHEMA "sales"/);
    assert.match(classifyPostgresError(pgError('25006')).action ?? '', /read-only/);
  });
});

describe('Azure SQL driver codes and error shapes', () => {
  const cases: Array<[string, unknown, FailureClass]> = [
    ['request timeout (tedious ETIMEOUT)', driverError('ETIMEOUT'), 'timeout'],
    ['connection closed mid-request (tedious ECLOSE)', driverError('ECLOSE'), 'transient'],
    ['socket error mid-request', driverError('ESOCKET'), 'transient'],
    ['pool closed (mssql ECONNCLOSED)', connectionError('ECONNCLOSED'), 'unreachable'],
    ['request cancelled', driverError('ECANCEL'), 'transient'],
    ['login failed', connectionError('ELOGIN'), 'unreachable'],
    ['socket refused on connect', connectionError('ESOCKET'), 'unreachable'],
    ['Entra token refused', connectionError('EFEDAUTH'), 'unreachable'],
    ['connect wrapped by the connector', new TargetConnectError(connectionError('ETIMEOUT')), 'unreachable'],
  ];
  for (const [what, error, expected] of cases) {
    it(`classifies ${what} as ${expected}`, () => {
      assert.equal(classifyMssqlError(error).class, expected);
    });
  }

  it('lets a database-wide number win over the row error tedious reported before it', () => {
    const last = Object.assign(serverError(9002, 'log full'), { precedingErrors: [serverError(2628)] });
    assert.equal(classifyMssqlError(last).class, 'unavailable');
  });

  it('blames a row only when no number beside it is unknown, and skips the "statement terminated" echo', () => {
    const echoed = Object.assign(serverError(3621), { precedingErrors: [serverError(2628)] });
    assert.equal(classifyMssqlError(echoed).class, 'permanent');
    const mixed = Object.assign(serverError(33333), { precedingErrors: [serverError(2628)] });
    assert.equal(classifyMssqlError(mixed).class, 'unavailable');
  });

  it('keeps SQL Server’s words', () => {
    assert.equal(
      classifyMssqlError(serverError(2628, 'String or binary data would be truncated')).reason,
      'String or binary data would be truncated',
    );
  });
});

describe('PostgreSQL driver shapes', () => {
  it('keeps the driver’s words and the column it named', () => {
    const failure = classifyPostgresError(
      pgError('23502', 'null value in column "name"', { column: 'name', detail: 'x' }),
    );
    assert.deepEqual(failure, { class: 'permanent', reason: 'null value in column "name" (x)', column: 'name' });
  });

  it('treats a lost connection as transient and any connect failure as unreachable', () => {
    assert.equal(classifyPostgresError(new Error('Connection terminated unexpectedly')).class, 'transient');
    assert.equal(classifyPostgresError(new TargetConnectError(pgError('ETIMEDOUT'))).class, 'unreachable');
    const refused = new TargetConnectError(new AggregateError([pgError('ECONNREFUSED', 'connect ECONNREFUSED ::1')]));
    assert.equal(classifyPostgresError(refused).class, 'unreachable');
  });

  it('names the reason of a connect failure from the inner error', () => {
    const failure = classifyPostgresError(
      new TargetConnectError(pgError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:1')),
    );
    assert.equal(failure.reason, 'connect ECONNREFUSED 127.0.0.1:1');
  });
});
