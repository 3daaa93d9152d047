import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { RowGenerator } from '../../dev/sample-org/generate.js';
import { type SampleOrg, startSampleOrg } from '../../dev/sample-org/index.js';
import { parseWebhook } from '../../lib/dataverse/webhook/parse.js';

interface Received {
  url: URL;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A tiny webhook endpoint that records every POST and answers the given statuses in turn (then 200). */
async function startCapture(statuses: number[] = []) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        url: new URL(req.url ?? '/', 'http://localhost'),
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      res.writeHead(statuses.shift() ?? 200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const stop = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/webhooks/dataverse`,
    received,
    [Symbol.asyncDispose]: stop,
  };
}

function api(org: SampleOrg, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${org.url}/api/data/v9.2/${path}`, init);
}

async function getJson(org: SampleOrg, path: string, prefer?: string) {
  const res = await api(org, path, prefer ? { headers: { Prefer: prefer } } : {});
  assert.equal(res.status, 200, `GET ${path}: ${res.status}`);
  return (await res.json()) as Record<string, unknown> & { value: Array<Record<string, unknown>> };
}

async function send(org: SampleOrg, method: string, path: string, body?: unknown): Promise<Response> {
  const res = await api(org, path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${await res.clone().text()}`);
  return res;
}

function headersOf(received: Received): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(received.headers).map(([k, v]) => [k, Array.isArray(v) ? v[0] : v]));
}

/** All rows of an entity set, following nextLinks (the page size header goes with each request). */
async function allRows(org: SampleOrg, path: string, pageSize: number) {
  const rows: Array<Record<string, unknown>> = [];
  let link: string | undefined = `${org.url}/api/data/v9.2/${path}`;
  let pages = 0;
  while (link) {
    const res: Response = await fetch(link, { headers: { Prefer: `odata.maxpagesize=${pageSize}` } });
    const body = (await res.json()) as { value: Array<Record<string, unknown>>; '@odata.nextLink'?: string };
    rows.push(...body.value);
    link = body['@odata.nextLink'];
    pages++;
  }
  return { rows, pages };
}

describe('sample organization', () => {
  it('generates the same rows for the same seed and other rows for another seed', async () => {
    const counts = { account: 60, contact: 90 };
    await using a = await startSampleOrg({ seed: 7, counts });
    await using b = await startSampleOrg({ seed: 7, counts });
    await using c = await startSampleOrg({ seed: 8, counts });
    for (const set of ['accounts', 'contacts', 'new_accountcontactset']) {
      const [ra, rb, rc] = await Promise.all([a, b, c].map((org) => allRows(org, set, 25)));
      assert.ok(ra.rows.length > 0);
      assert.deepEqual(ra.rows, rb.rows, `${set}: same seed, same rows`);
      assert.notDeepEqual(ra.rows, rc.rows, `${set}: another seed, other rows`);
    }
    assert.deepEqual(a.counts, { account: 60, contact: 90, new_accountcontact: 23 });
  });

  it('serves millions of rows without generating them up front', async () => {
    const started = Date.now();
    await using org = await startSampleOrg({ seed: 3, counts: { account: 1_000_000, contact: 3_000_000 } });
    assert.ok(Date.now() - started < 2_000, 'starting does not generate the rows');
    const count = await getJson(org, "RetrieveTotalRecordCount(EntityNames=@p1)?@p1=['contact','account']");
    assert.deepEqual(count.EntityRecordCountCollection, {
      Count: 2,
      IsReadOnly: false,
      Keys: ['contact', 'account'],
      Values: [3_000_000, 1_000_000],
    });
    const lastId = new RowGenerator(org.seed, org.counts).id('contact', 2_999_999);
    const last = await getJson(org, `contacts(${lastId})?$select=fullname`);
    assert.equal(last.contactid, lastId);
    const page = await getJson(org, 'contacts?$select=contactid', 'odata.maxpagesize=5000');
    assert.equal(page.value.length, 5000);
    assert.match(String(page['@odata.nextLink']), /\$skiptoken=/);
  });

  it('pages by odata.maxpagesize with skiptoken nextLinks, and ends a tracked read with a deltaLink', async () => {
    await using org = await startSampleOrg({ counts: { account: 20, contact: 4 } });
    const first = await api(org, 'accounts?$select=name', { headers: { Prefer: 'odata.maxpagesize=7' } });
    assert.equal(first.headers.get('preference-applied'), 'odata.maxpagesize=7');
    const { rows, pages } = await allRows(org, 'accounts?$select=name', 7);
    assert.equal(pages, 3);
    assert.equal(new Set(rows.map((r) => r.accountid)).size, 20);
    assert.deepEqual(Object.keys(rows[0]).sort(), ['@odata.etag', 'accountid', 'name']);

    let link: string | undefined = `${org.url}/api/data/v9.2/accounts?$select=name`;
    let last: Record<string, unknown> = {};
    while (link) {
      const res: Response = await fetch(link, { headers: { Prefer: 'odata.maxpagesize=7, odata.track-changes' } });
      assert.match(res.headers.get('preference-applied') ?? '', /odata\.track-changes/);
      last = (await res.json()) as Record<string, unknown>;
      link = last['@odata.nextLink'] as string | undefined;
      if (link) assert.equal(last['@odata.deltaLink'], undefined);
    }
    assert.match(String(last['@odata.deltaLink']), /\$deltatoken=\d+!/);
  });

  it('answers a deltaLink with changed rows and $deletedEntity entries, and expires tokens on demand', async () => {
    await using org = await startSampleOrg({ seed: 9, counts: { account: 10, contact: 10 } });
    const ids = new RowGenerator(org.seed, org.counts);
    const tracked = await getJson(org, 'accounts?$select=name,revenue', 'odata.track-changes');
    const deltaLink = String(tracked['@odata.deltaLink']);
    const versionBefore = BigInt(org.currentVersion());

    await send(org, 'PATCH', `accounts(${ids.id('account', 2)})`, { name: 'Renamed', revenue: 1234.5 });
    await send(org, 'DELETE', `accounts(${ids.id('account', 4)})`);
    const delta = (await (await fetch(deltaLink)).json()) as {
      value: Array<Record<string, unknown>>;
      '@odata.deltaLink': string;
    };
    assert.equal(delta.value.length, 2);
    const [updated, deleted] = delta.value;
    assert.equal(updated.accountid, ids.id('account', 2));
    assert.equal(updated.name, 'Renamed');
    assert.equal(updated.revenue, 1234.5);
    assert.equal(updated['@odata.etag'], `W/"${versionBefore + 1n}"`);
    assert.match(String(deleted['@odata.context']), /\/\$deletedEntity$/);
    assert.equal(deleted.id, ids.id('account', 4));
    assert.equal(BigInt(org.currentVersion()), versionBefore + 2n);

    const counted = await getJson(org, "RetrieveTotalRecordCount(EntityNames=['account'])");
    assert.deepEqual((counted.EntityRecordCountCollection as { Values: number[] }).Values, [9]);

    org.faults.expireDeltaTokens();
    const expired = await fetch(delta['@odata.deltaLink']);
    assert.equal(expired.status, 400);
    assert.equal(((await expired.json()) as { error: { code: string } }).error.code, '0x80044352');
  });

  it('fires a webhook for each write that parseWebhook accepts, keyed by ?code=', async () => {
    await using capture = await startCapture();
    await using org = await startSampleOrg({
      seed: 4,
      counts: { account: 10, contact: 10 },
      webhookUrl: capture.url,
      webhookKey: 'function-key-1',
    });
    const ids = new RowGenerator(org.seed, org.counts);
    const created = await send(org, 'POST', 'contacts', {
      firstname: 'Ada',
      lastname: 'Lovelace',
      'parentcustomerid_account@odata.bind': `/accounts(${ids.id('account', 1)})`,
    });
    const contactId = /\(([^)]+)\)$/.exec(created.headers.get('odata-entityid') ?? '')![1];
    await send(org, 'PATCH', `contacts(${contactId})`, { emailaddress1: 'ada@example.com' });
    await send(org, 'POST', `accounts(${ids.id('account', 2)})/new_accountcontact/$ref`, {
      '@odata.id': `${org.url}/api/data/v9.2/contacts(${contactId})`,
    });
    await send(org, 'DELETE', `contacts(${contactId})`);
    await org.drain();

    assert.equal(capture.received.length, 4);
    assert.ok(capture.received.every((r) => r.url.searchParams.get('code') === 'function-key-1'));
    const parsed = capture.received.map((r) => parseWebhook(r.body, headersOf(r)));
    assert.deepEqual(
      parsed.map((p) => [p.messageName, p.changes[0].operation]),
      [
        ['Create', 'upsert'],
        ['Update', 'upsert'],
        ['Associate', 'associate'],
        ['Delete', 'delete'],
      ],
    );
    assert.ok(parsed.every((p) => p.organizationId === org.organizationId && p.changes.length === 1));
    const [create, update, associate, remove] = parsed.map((p) => p.changes[0]);
    assert.equal(create.recordId, contactId);
    assert.deepEqual(create.attributes?.parentcustomerid, {
      type: 'lookup',
      value: ids.id('account', 1),
      entityType: 'account',
    });
    assert.ok(BigInt(update.version.rowVersion!) > BigInt(create.version.rowVersion!));
    assert.deepEqual(update.attributes?.emailaddress1, { type: 'string', value: 'ada@example.com' });
    assert.equal(associate.relationship?.name, 'new_accountcontact');
    assert.equal(remove.recordId, contactId);
    assert.deepEqual(
      org.webhookDeliveries().map((d) => [d.messageName, d.status, d.attempts]),
      [
        ['Create', 200, 1],
        ['Update', 200, 1],
        ['Associate', 200, 1],
        ['Delete', 200, 1],
      ],
    );
  });

  it('deletes an attribute over POST /_sample/metadata: gone from metadata, rows and webhooks until reset', async () => {
    await using capture = await startCapture();
    await using org = await startSampleOrg({ seed: 4, counts: { account: 3, contact: 1 }, webhookUrl: capture.url });
    const id = new RowGenerator(org.seed, org.counts).id('account', 1);
    const attributeNames = async () =>
      (
        (await getJson(org, "EntityDefinitions(LogicalName='account')/Attributes")).value as Array<{
          LogicalName: string;
        }>
      ).map((a) => a.LogicalName);
    assert.ok((await attributeNames()).includes('accountnumber'));
    const post = (body: unknown) =>
      fetch(`${org.url}/_sample/metadata`, { method: 'POST', body: JSON.stringify(body) });
    assert.equal((await post({ change: 'deleteAttribute', entity: 'account', attribute: 'nosuchfield' })).status, 400);
    assert.equal(
      (await post({ change: 'deleteAttribute', entity: 'account', attribute: 'accountnumber' })).status,
      204,
    );
    try {
      assert.ok(!(await attributeNames()).includes('accountnumber'));
      const row = (await getJson(org, `accounts(${id})`)) as Record<string, unknown>;
      assert.ok(!('accountnumber' in row) && 'name' in row, 'rows served no longer carry it');
      await send(org, 'PATCH', `accounts(${id})`, { name: 'renamed' });
      await org.drain();
      const [update] = capture.received.map((r) => parseWebhook(r.body, headersOf(r)).changes[0]);
      assert.equal(update.attributes?.name?.type, 'string');
      assert.ok(!('accountnumber' in (update.attributes ?? {})), 'nor do webhooks');
    } finally {
      org.metadata.reset();
    }
    assert.ok((await attributeNames()).includes('accountnumber'), 'reset() restores it');
  });

  it('adds an attribute over POST /_sample/metadata: in metadata, null in rows until written, gone on reset', async () => {
    await using org = await startSampleOrg({ seed: 4, counts: { account: 3, contact: 1 } });
    const id = new RowGenerator(org.seed, org.counts).id('account', 1);
    const post = (body: unknown) =>
      fetch(`${org.url}/_sample/metadata`, { method: 'POST', body: JSON.stringify(body) });
    const refused = await post({ change: 'addAttribute', entity: 'account', attribute: 'new_flag', kind: 'lookup' });
    assert.equal(refused.status, 400);
    assert.match(await refused.text(), /kind must be one of string, memo, integer/);
    assert.equal(
      (await post({ change: 'addAttribute', entity: 'account', attribute: 'name', kind: 'string' })).status,
      400,
    );
    const added = await post({
      change: 'addAttribute',
      entity: 'account',
      attribute: 'new_tier',
      kind: 'string',
      maxLength: 20,
    });
    assert.equal(added.status, 204);
    try {
      const strings = await getJson(
        org,
        "EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM.StringAttributeMetadata?$select=LogicalName,MaxLength",
      );
      assert.equal(strings.value.find((a) => a.LogicalName === 'new_tier')?.MaxLength, 20);
      assert.equal(
        ((await getJson(org, `accounts(${id})?$select=new_tier`)) as Record<string, unknown>).new_tier,
        null,
      );
      await send(org, 'PATCH', `accounts(${id})`, { new_tier: 'Gold' });
      assert.equal(
        ((await getJson(org, `accounts(${id})?$select=new_tier`)) as Record<string, unknown>).new_tier,
        'Gold',
      );
    } finally {
      org.metadata.reset();
    }
    const gone = await fetch(`${org.url}/api/data/v9.2/accounts(${id})?$select=new_tier`);
    assert.equal(gone.status, 400, 'reset() removes it: a $select naming it is refused');
  });

  it('sends only the changed columns when configured without a post-image, and retries a failing endpoint', async () => {
    await using capture = await startCapture([503]);
    await using org = await startSampleOrg({
      seed: 4,
      counts: { account: 10, contact: 10 },
      webhookUrl: capture.url,
      webhookImages: 'changed',
    });
    const id = new RowGenerator(org.seed, org.counts).id('account', 3);
    await send(org, 'PATCH', `accounts(${id})`, { numberofemployees: 42 });
    await org.drain();
    assert.equal(capture.received.length, 2, 'one failed delivery and its retry');
    assert.equal(capture.received[0].body, capture.received[1].body);
    const change = parseWebhook(capture.received[1].body, headersOf(capture.received[1])).changes[0];
    assert.deepEqual(Object.keys(change.attributes ?? {}).sort(), ['modifiedon', 'numberofemployees']);
    assert.deepEqual(org.webhookDeliveries()[0], {
      messageName: 'Update',
      entity: 'account',
      id,
      status: 200,
      attempts: 2,
    });
  });

  it('fires only registered, enabled steps, to their endpoint with their key and exactly the image they ask', async () => {
    await using capture = await startCapture();
    await using org = await startSampleOrg({ seed: 4, counts: { account: 10, contact: 10 } });
    const id = new RowGenerator(org.seed, org.counts).id('account', 2);
    await send(org, 'PATCH', `accounts(${id})`, { numberofemployees: 1 });
    await org.drain();
    assert.equal(capture.received.length, 0, 'no step, no webhook');

    const created = async (set: string, body: unknown) =>
      /\(([0-9a-f-]{36})\)$/.exec((await send(org, 'POST', set, body)).headers.get('odata-entityid') ?? '')![1];
    const endpoint = await created('serviceendpoints', {
      name: 'test',
      contract: 8,
      authtype: 4,
      url: capture.url,
      authvalue: 'k-1',
    });
    const update = (await getJson(org, "sdkmessages?$filter=name eq 'Update'")).value[0].sdkmessageid as string;
    const filter = (
      await getJson(
        org,
        `sdkmessagefilters?$filter=${encodeURIComponent(`primaryobjecttypecode eq 'account' and _sdkmessageid_value eq ${update}`)}`,
      )
    ).value[0].sdkmessagefilterid as string;
    const step = await created('sdkmessageprocessingsteps', {
      name: 'Update of account',
      stage: 40,
      mode: 1,
      'eventhandler_serviceendpoint@odata.bind': `/serviceendpoints(${endpoint})`,
      'sdkmessageid@odata.bind': `/sdkmessages(${update})`,
      'sdkmessagefilterid@odata.bind': `/sdkmessagefilters(${filter})`,
    });
    await created('sdkmessageprocessingstepimages', {
      name: 'PostImage',
      entityalias: 'PostImage',
      imagetype: 1,
      messagepropertyname: 'Target',
      attributes: 'name,accountnumber,modifiedon,versionnumber',
      'sdkmessageprocessingstepid@odata.bind': `/sdkmessageprocessingsteps(${step})`,
    });
    await send(org, 'PATCH', `accounts(${id})`, { numberofemployees: 2 });
    await send(org, 'POST', 'contacts', { lastname: 'Not registered' });
    await org.drain();
    assert.equal(capture.received.length, 1, 'the contact write has no step');
    assert.equal(capture.received[0].url.searchParams.get('code'), 'k-1');
    const change = parseWebhook(capture.received[0].body, headersOf(capture.received[0])).changes[0];
    assert.deepEqual(Object.keys(change.attributes ?? {}).sort(), ['accountnumber', 'modifiedon', 'name']);
    assert.ok(change.version.rowVersion, 'versionnumber was asked for: the change is ordered by it');

    await send(org, 'PATCH', `sdkmessageprocessingsteps(${step})`, { statecode: 1, statuscode: 2 });
    await send(org, 'PATCH', `accounts(${id})`, { numberofemployees: 3 });
    await org.drain();
    assert.equal(capture.received.length, 1, 'a disabled step fires nothing');
    const refused = await api(org, `serviceendpoints(${endpoint})`, { method: 'DELETE' });
    assert.equal(refused.status, 400, 'an endpoint still used by a step cannot be deleted');
  });

  it('answers 429 with Retry-After, then 5xx, then lost connections, and slow pages on demand', async () => {
    await using org = await startSampleOrg({ counts: { account: 5, contact: 5 } });
    org.faults.throttleNext(2, 0.25);
    for (let i = 0; i < 2; i++) {
      const res = await api(org, 'accounts');
      assert.equal(res.status, 429);
      assert.equal(res.headers.get('retry-after'), '0.25');
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, '0x80072322');
    }
    org.faults.failNext(1, 502);
    assert.equal((await api(org, 'accounts')).status, 502);
    org.faults.resetNext(1);
    await assert.rejects(api(org, 'accounts'), /fetch failed/);
    assert.equal((await api(org, 'accounts')).status, 200);

    org.faults.slowPages(150);
    const started = Date.now();
    assert.equal((await api(org, 'accounts')).status, 200);
    assert.ok(Date.now() - started >= 140);
    org.faults.throttleNext(5);
    org.faults.reset();
    assert.equal((await api(org, 'accounts')).status, 200);
    const { throttled, failed, reset, refused } = org.stats();
    assert.deepEqual(
      { throttled, failed, reset, refused },
      { throttled: 2, failed: 1, reset: 1, refused: { requests: 0, executionTime: 0, concurrency: 0 } },
    );
  });
});
