import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rowsIn } from '../../dev/sample-org/latency.js';
import { type Admission, DATAVERSE_LIMITS, type Refusal, ServiceProtection } from '../../dev/sample-org/limits.js';

/** A clock the test moves by hand. */
function manualClock() {
  let now = 1_000_000;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

function admitted(result: Admission | Refusal): Admission {
  assert.ok(!('limit' in result), `expected admission, got ${JSON.stringify(result)}`);
  return result;
}

function refused(result: Admission | Refusal): Refusal {
  assert.ok('limit' in result, 'expected a refusal');
  return result;
}

describe('sample org service protection (a clock moved by hand)', () => {
  it('refuses the 53rd request in flight with 0x80072326, and admits again once one finishes', () => {
    const clock = manualClock();
    const protection = new ServiceProtection(DATAVERSE_LIMITS, clock.now);
    const open = Array.from({ length: 52 }, () => admitted(protection.admit('app')));
    const refusal = refused(protection.admit('app'));
    assert.equal(refusal.limit, 'concurrency');
    assert.equal(refusal.code, '0x80072326');
    assert.equal(refusal.message, 'Number of concurrent requests exceeded the limit of 52.');
    assert.equal(refusal.retryAfterSeconds, 1);
    admitted(protection.admit('another user'));
    open[0].finish();
    open[0].finish();
    admitted(protection.admit('app'));
    refused(protection.admit('app'));
    const stats = protection.stats();
    assert.equal(stats.peakInFlight, 54, 'refused arrivals count toward the peak');
    assert.equal(stats.inFlight, 53);
    assert.deepEqual(stats.refused, { requests: 0, executionTime: 0, concurrency: 2 });
  });

  it('refuses beyond 6,000 requests in the window until the oldest leave it, naming when', () => {
    const clock = manualClock();
    const protection = new ServiceProtection(DATAVERSE_LIMITS, clock.now);
    for (let i = 0; i < 6000; i++) {
      admitted(protection.admit('app')).finish();
      clock.advance(i < 10 ? 1000 : 10);
    }
    // The first ten came one second apart; the window is 300 s from each.
    const refusal = refused(protection.admit('app'));
    assert.equal(refusal.code, '0x80072322');
    assert.equal(refusal.message, 'Number of requests exceeded the limit of 6000 over time window of 300 seconds.');
    const elapsedSinceFirst = 10_000 + 5990 * 10;
    assert.equal(refusal.retryAfterSeconds, Math.ceil((300_000 - elapsedSinceFirst) / 1000));
    clock.advance(refusal.retryAfterSeconds * 1000);
    admitted(protection.admit('app'));
    refused(protection.admit('app')); // the second-oldest is still in the window
    clock.advance(1000);
    admitted(protection.admit('app'));
    assert.equal(protection.stats().refused.requests, 2);
  });

  it('refuses once 1,200 s of execution fall in the window, until enough of it has left', () => {
    const clock = manualClock();
    const protection = new ServiceProtection(DATAVERSE_LIMITS, clock.now);
    // 40 requests of 30 s each, 52 at a time would be the same: 1,200 s in all, finished at t = 30 s.
    const open = Array.from({ length: 40 }, () => admitted(protection.admit('app')));
    clock.advance(30_000);
    for (const a of open) a.finish();
    const refusal = refused(protection.admit('app'));
    assert.equal(refusal.code, '0x80072321');
    assert.match(
      refusal.message,
      /^Combined execution time of incoming requests exceeded limit of 1,200,000 milliseconds/,
    );
    assert.equal(refusal.retryAfterSeconds, 300, 'all of it finished just now');
    assert.equal(protection.stats().executionMs, 1_200_000);
    clock.advance(299_000);
    refused(protection.admit('app'));
    clock.advance(1000);
    admitted(protection.admit('app'));
  });

  it('keeps no limit that is not configured, and rejects a limit that is not a positive number', () => {
    const protection = new ServiceProtection({});
    const open = Array.from({ length: 500 }, () => admitted(protection.admit('app')));
    for (const a of open) a.finish();
    assert.equal(protection.stats().peakInFlight, 500);
    assert.throws(() => new ServiceProtection({ concurrent: 0 }), /limits\.concurrent must be a number above 0/);
    assert.throws(() => new ServiceProtection({ requests: Number.NaN }), /limits\.requests/);
    assert.throws(
      () => new ServiceProtection({ parallel: 3 } as never),
      /limits\.parallel is not a service protection limit/,
    );
  });

  it('counts the rows of a streamed piece and the entries of a delta page', () => {
    const row = (id: number, name: string) => `{"@odata.etag":"W/\\"${id}\\"","name":${JSON.stringify(name)}}`;
    assert.equal(rowsIn(`${row(1, 'a')},${row(2, '{"@odata.etag":')}`), 2, 'a marker inside a value is escaped');
    assert.equal(rowsIn('{"@odata.context":"x#contacts","value":['), 0);
    const deleted =
      '{"@odata.context":"http://o/api/data/v9.2/$metadata#contacts/$deletedEntity","id":"1","reason":"deleted"}';
    assert.equal(rowsIn(`{"@odata.context":"x#contacts/$delta","value":[${row(3, 'c')},${deleted}]}`), 2);
  });
});
