import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type SampleOrg, startSampleOrg } from '../../dev/sample-org/index.js';
import { compareSqlGuids } from '../../lib/dataverse/sql-guid-order.js';

async function read(org: SampleOrg, query: string, prefer = 'odata.maxpagesize=5000') {
  const res = await fetch(`${org.url}/api/data/v9.2/accounts?${query}`, { headers: { Prefer: prefer } });
  const body = (await res.json()) as { value?: Array<{ accountid: string }>; '@odata.nextLink'?: string };
  return { status: res.status, ids: (body.value ?? []).map((r) => r.accountid), next: body['@odata.nextLink'] };
}

async function create(org: SampleOrg, name: string): Promise<string> {
  const res = await fetch(`${org.url}/api/data/v9.2/accounts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  assert.equal(res.status, 204);
  return /\(([^)]+)\)/.exec(res.headers.get('OData-EntityId') ?? '')?.[1] ?? '';
}

describe('sample org: reads ordered and filtered by the primary id, as Dataverse answers them', () => {
  it('answers every row once in SQL Server order, created rows in their place, ranges and $top included', async () => {
    await using org = await startSampleOrg({ counts: { account: 300, contact: 0 } });
    const created = [await create(org, 'one'), await create(org, 'two'), await create(org, 'three')];
    const all = await read(org, '$select=accountid&$orderby=accountid asc');
    assert.equal(all.status, 200);
    assert.equal(all.ids.length, 303);
    assert.deepEqual(all.ids, [...all.ids].sort(compareSqlGuids));
    for (const id of created) assert.ok(all.ids.includes(id), id);

    const desc = await read(org, '$select=accountid&$orderby=accountid desc&$top=1');
    assert.deepEqual(desc.ids, [all.ids[302]]);
    assert.equal(desc.next, undefined);
    const first = await read(org, '$select=accountid&$orderby=accountid asc&$top=1');
    assert.deepEqual(first.ids, [all.ids[0]]);

    const [a, b] = [all.ids[99], all.ids[199]];
    const range = await read(
      org,
      `$select=accountid&$filter=accountid gt ${a} and accountid le ${b}&$orderby=accountid asc`,
    );
    assert.deepEqual(range.ids, all.ids.slice(100, 200));
    const closed = await read(org, `$select=accountid&$filter=accountid ge ${a} and accountid lt ${b}`);
    assert.deepEqual(closed.ids, all.ids.slice(99, 199));
    const one = await read(org, `$select=accountid&$filter=accountid eq ${created[1]}`);
    assert.deepEqual(one.ids, [created[1]]);
    // Rows by id (`eq` joined by `or`), in SQL Server order whatever order they are named in.
    const named = [all.ids[250], created[2], all.ids[3]];
    const byId = await read(org, `$select=accountid&$filter=${named.map((id) => `accountid eq ${id}`).join(' or ')}`);
    assert.deepEqual(byId.ids, [...named].sort(compareSqlGuids));
    const mixed = await read(org, `$select=accountid&$filter=accountid eq ${a} or accountid gt ${b}`);
    assert.equal(mixed.status, 400, 'or joins eq terms only');
  });

  it('pages a filtered read with next links that keep the filter', async () => {
    await using org = await startSampleOrg({ counts: { account: 120, contact: 0 } });
    const all = (await read(org, '$select=accountid&$orderby=accountid')).ids;
    const seen: string[] = [];
    let page = await read(
      org,
      `$select=accountid&$filter=accountid gt ${all[9]}&$orderby=accountid asc`,
      'odata.maxpagesize=50',
    );
    seen.push(...page.ids);
    while (page.next) {
      const res = await fetch(page.next, { headers: { Prefer: 'odata.maxpagesize=50' } });
      const body = (await res.json()) as { value: Array<{ accountid: string }>; '@odata.nextLink'?: string };
      page = { status: res.status, ids: body.value.map((r) => r.accountid), next: body['@odata.nextLink'] };
      seen.push(...page.ids);
    }
    assert.deepEqual(seen, all.slice(10));
    assert.equal(org.rangeReads().total, 4);
  });

  it('refuses $filter with change tracking and a filter it does not understand', async () => {
    await using org = await startSampleOrg({ counts: { account: 10, contact: 0 } });
    const tracked = await read(org, '$select=accountid&$orderby=accountid', 'odata.track-changes');
    assert.equal(tracked.status, 400);
    const other = await read(org, "$select=accountid&$filter=name eq 'x'");
    assert.equal(other.status, 400);
    const unfiltered = await read(org, '$select=accountid');
    assert.equal(unfiltered.ids.length, 10);
  });
});
