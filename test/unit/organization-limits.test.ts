import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  organizationLimits,
  ReadLanes,
  Slots,
  shareOrganization,
} from '../../lib/dataverse/webapi/organization-limits.js';

/** Lanes on a clock the test moves: each round of `limit` pages takes one second and reads `rowsPerPage` each. */
function lanesOnClock(cap: number) {
  let now = 0;
  const lanes = new ReadLanes(cap, 4, () => now);
  /** One full round: every lane busy at once, then each returns a page. */
  async function round(rowsPerPage: number) {
    const n = lanes.limit;
    for (let i = 0; i < n; i++) await lanes.acquire();
    now += 1000;
    for (let i = 0; i < n; i++) lanes.release(rowsPerPage);
  }
  return { lanes, round };
}

describe('read lanes of an organization', () => {
  it('double while a wider round reads more rows per second, and never pass the cap', async () => {
    const { lanes, round } = lanesOnClock(52);
    const seen = [lanes.limit];
    // Latency-bound: a round takes a second whatever its width, so wider rounds read proportionally more.
    for (let i = 0; i < 6; i++) {
      await round(5000);
      seen.push(lanes.limit);
    }
    assert.deepEqual(seen, [4, 8, 16, 32, 52, 52, 52]);
    assert.equal(lanes.peak, 52);
  });

  it('stop growing when a wider round brings no more rows per second', async () => {
    const { lanes, round } = lanesOnClock(52);
    await round(5000); // 4 lanes: 20,000 rows/s → 8
    await round(2500); // 8 lanes, same 20,000 rows/s: the source is the limit, stay
    await round(2500);
    assert.equal(lanes.limit, 8);
  });

  it('halve on a 429 and then grow one lane per round', async () => {
    const { lanes, round } = lanesOnClock(52);
    await round(5000);
    await round(5000);
    assert.equal(lanes.limit, 16);
    lanes.throttled();
    assert.equal(lanes.limit, 8);
    await round(5000);
    await round(5000);
    assert.equal(lanes.limit, 10);
  });

  it('do not grow while lanes stand idle (no round saturated them)', async () => {
    let now = 0;
    const lanes = new ReadLanes(52, 4, () => now);
    for (let i = 0; i < 8; i++) {
      await lanes.acquire();
      now += 100;
      lanes.release(5000);
    }
    assert.equal(lanes.limit, 4);
  });
});

describe('organization slots', () => {
  it('hold at most their capacity in flight and wake waiters in order', async () => {
    const slots = new Slots(2);
    let inFlight = 0;
    let most = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        slots.run(async () => {
          most = Math.max(most, ++inFlight);
          await new Promise((resolve) => setImmediate(resolve));
          order.push(i);
          inFlight--;
        }),
      ),
    );
    assert.equal(most, 2);
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);
  });

  it('are shared by every client of one organization URL, which the latest setting resizes', () => {
    const a = organizationLimits('https://contoso-limits.crm.dynamics.com/', 10);
    const b = organizationLimits('HTTPS://contoso-limits.crm.dynamics.com');
    assert.equal(a, b);
    assert.equal(b.requests.capacity, 10);
    organizationLimits('https://contoso-limits.crm.dynamics.com', 52);
    assert.equal(a.requests.capacity, 52);
    assert.notEqual(organizationLimits('https://fabrikam-limits.crm.dynamics.com'), a);
  });

  it("give this instance its share of the organization's cap, which a later client's setting keeps", () => {
    const url = 'https://northwind-limits.crm.dynamics.com';
    const limits = organizationLimits(url, 52);
    assert.equal(shareOrganization(url, 2), 26);
    assert.equal(limits.requests.capacity, 26);
    assert.ok(limits.lanes.limit <= 26);
    organizationLimits(url, 40);
    assert.equal(limits.requests.capacity, 20, 'the total changed, the split stays');
    assert.equal(shareOrganization(url, 3), 13);
    assert.equal(shareOrganization(url, 100), 1, 'never below one request');
    assert.equal(shareOrganization(url, 1), 40);
    assert.equal(limits.requests.capacity, 40);
  });
});
