import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { RowGenerator } from '../../dev/sample-org/generate.js';
import { DATAVERSE_LIMITS, type SampleOrg, STATS_PATH, startSampleOrg } from '../../dev/sample-org/index.js';
import { createDataverseClient } from '../../lib/dataverse/webapi/client.js';
import { silentLogger } from '../../lib/log.js';

function api(org: SampleOrg, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${org.url}/api/data/v9.2/${path}`, init);
}

/** Waits (polling, no fixed sleep) until the org's figures say so; a guard stops a test that would hang. */
async function until(condition: () => boolean, guardMs = 20_000): Promise<void> {
  const givingUp = Date.now() + guardMs;
  while (!condition()) {
    if (Date.now() > givingUp) assert.fail('the sample org never reached the expected state');
    await sleep(5);
  }
}

describe('sample organization: service protection limits and latency', () => {
  it('answers exactly the 53rd of 53 concurrent requests with 429, 0x80072326 and a short Retry-After', async () => {
    await using org = await startSampleOrg({ counts: { account: 5, contact: 5 }, limits: DATAVERSE_LIMITS });
    const release = org.faults.holdRequests();
    const answers = Array.from({ length: 53 }, () => api(org, 'accounts'));
    await until(() => org.stats().inFlight === 52 && org.stats().refused.concurrency === 1);
    release();
    const responses = await Promise.all(answers);
    const refused = responses.filter((r) => r.status === 429);
    assert.equal(refused.length, 1);
    assert.equal(responses.filter((r) => r.status === 200).length, 52);
    assert.equal(refused[0].headers.get('retry-after'), '1');
    assert.deepEqual(await refused[0].json(), {
      error: { code: '0x80072326', message: 'Number of concurrent requests exceeded the limit of 52.' },
    });
    await Promise.all(responses.filter((r) => !r.bodyUsed).map((r) => r.text()));
    const stats = org.stats();
    assert.equal(stats.peakInFlight, 53);
    assert.deepEqual(stats.refused, { requests: 0, executionTime: 0, concurrency: 1 });
    await until(() => org.stats().inFlight === 0);
    // The same figures over HTTP, outside the limits, for a bench whose org runs in another process.
    const remote = (await (await fetch(`${org.url}${STATS_PATH}`)).json()) as ReturnType<SampleOrg['stats']>;
    assert.equal(remote.peakInFlight, 53);
    assert.deepEqual(remote.refused, stats.refused);
  });

  it('refuses requests beyond the window’s count with 0x80072322, and admits them again after Retry-After', async () => {
    await using org = await startSampleOrg({
      counts: { account: 5, contact: 5 },
      limits: { requests: 3, windowSeconds: 1 },
    });
    for (let i = 0; i < 3; i++) assert.equal((await api(org, 'WhoAmI')).status, 200);
    const refused = await api(org, 'accounts');
    assert.equal(refused.status, 429);
    const retryAfter = refused.headers.get('retry-after');
    assert.equal(retryAfter, '1');
    assert.deepEqual(await refused.json(), {
      error: {
        code: '0x80072322',
        message: 'Number of requests exceeded the limit of 3 over time window of 1 seconds.',
      },
    });
    await sleep(Number(retryAfter) * 1000);
    assert.equal((await api(org, 'accounts')).status, 200);
    assert.deepEqual(org.stats().refused, { requests: 1, executionTime: 0, concurrency: 0 });
  });

  it('answers a page no sooner than fixedMs + rows/1000 × perThousandRowsMs, counted as execution time', async () => {
    const latency = { fixedMs: 100, perThousandRowsMs: 100 };
    await using org = await startSampleOrg({ counts: { account: 5, contact: 3000 }, latency });
    const started = performance.now();
    const res = await api(org, 'contacts?$select=fullname', { headers: { Prefer: 'odata.maxpagesize=2000' } });
    const page = (await res.json()) as { value: unknown[] };
    const elapsed = performance.now() - started;
    assert.equal(page.value.length, 2000);
    assert.ok(elapsed >= 100 + 2 * 100, `a 2000-row page took ${elapsed} ms`);
    await until(() => org.stats().inFlight === 0);
    assert.ok(org.stats().executionMs >= 300, `execution time ${org.stats().executionMs} ms`);

    // A delta page (answered as one piece) waits the same way.
    const tracked = await api(org, 'accounts?$select=name', { headers: { Prefer: 'odata.track-changes' } });
    const deltaLink = ((await tracked.json()) as { '@odata.deltaLink': string })['@odata.deltaLink'];
    const id = new RowGenerator(org.seed, org.counts).id('account', 1);
    const patched = await api(org, `accounts(${id})`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Changed' }),
    });
    assert.equal(patched.status, 204);
    const deltaStarted = performance.now();
    const delta = (await (await fetch(deltaLink)).json()) as { value: { accountid: string }[] };
    const deltaElapsed = performance.now() - deltaStarted;
    assert.deepEqual(
      delta.value.map((r) => r.accountid),
      [id],
    );
    assert.ok(deltaElapsed >= 100, `a delta page took ${deltaElapsed} ms`);
  });

  it('renders a page after its wait, so a write made meanwhile is in it, and keeps serving other requests', async () => {
    await using org = await startSampleOrg({
      counts: { account: 5, contact: 5 },
      latency: { fixedMs: 1000, perThousandRowsMs: 0 },
    });
    const generator = new RowGenerator(org.seed, org.counts);
    const id = generator.id('account', 2);
    const order: string[] = [];
    const page = api(org, 'accounts?$select=name').then(async (r) => {
      order.push('page');
      return (await r.json()) as { value: { accountid: string; name: string }[] };
    });
    const write = api(org, `accounts(${id})`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Renamed while the page waited' }),
    }).then((r) => {
      order.push('write');
      return r.status;
    });
    assert.equal(await write, 204);
    const rows = (await page).value;
    assert.deepEqual(order, ['write', 'page'], 'the write was answered while the page waited');
    assert.equal(rows.find((r) => r.accountid === id)?.name, 'Renamed while the page waited');
  });

  it('lets the Web API client read a whole entity through tight limits, every row once', async () => {
    await using org = await startSampleOrg({
      counts: { account: 5, contact: 2000 },
      // Each page costs at least 100 ms of a 300 ms budget per second: the budget runs out after three pages.
      limits: {
        requests: 30,
        executionSeconds: 0.3,
        concurrent: 1,
        windowSeconds: 1,
        concurrencyRetryAfterSeconds: 0.05,
      },
      latency: { fixedMs: 100 },
    });
    const client = createDataverseClient({
      url: org.url,
      logger: silentLogger,
      retry: { maxAttempts: 12, baseDelayMs: 10, maxDelayMs: 2_000 },
    });
    const ids: string[] = [];
    for await (const page of client.readPages('contact', { pageSize: 500 })) {
      ids.push(...page.rows.map((r) => r.recordId));
    }
    const generator = new RowGenerator(org.seed, org.counts);
    assert.deepEqual(
      ids,
      Array.from({ length: 2000 }, (_, i) => generator.id('contact', i)),
    );
    const { refused, peakInFlight } = org.stats();
    assert.ok(refused.executionTime > 0, `the execution budget ran out at least once: ${JSON.stringify(refused)}`);
    assert.equal(peakInFlight, 1);
  });

  it('serves 5,000,000 contacts without holding them', async () => {
    const heapBefore = process.memoryUsage().heapUsed;
    await using org = await startSampleOrg({ seed: 9, counts: { account: 10, contact: 5_000_000 } });
    const count = await api(org, "RetrieveTotalRecordCount(EntityNames=@p1)?@p1=['contact']");
    assert.deepEqual(
      ((await count.json()) as { EntityRecordCountCollection: { Values: number[] } }).EntityRecordCountCollection
        .Values,
      [5_000_000],
    );
    const lastId = new RowGenerator(org.seed, org.counts).id('contact', 4_999_999);
    const last = await api(org, `contacts(${lastId})?$select=fullname`);
    assert.equal(((await last.json()) as { contactid: string }).contactid, lastId);
    const page = await api(org, 'contacts?$select=contactid', { headers: { Prefer: 'odata.maxpagesize=5000' } });
    assert.equal(((await page.json()) as { value: unknown[] }).value.length, 5000);
    const grownMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
    assert.ok(grownMb < 64, `the heap grew ${grownMb.toFixed(0)} MB`);
  });

  it('refuses limits and latency that are not positive numbers, naming the option', async () => {
    await assert.rejects(startSampleOrg({ limits: { concurrent: -1 } }), /limits\.concurrent must be a number above 0/);
    await assert.rejects(
      startSampleOrg({ latency: { fixedMs: Number.NaN } }),
      /latency\.fixedMs must be a number of milliseconds/,
    );
  });
});
