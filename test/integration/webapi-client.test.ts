import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AccessToken, TokenCredential } from '@azure/identity';
import { RowGenerator } from '../../dev/sample-org/generate.js';
import { type SampleOrg, startSampleOrg } from '../../dev/sample-org/index.js';
import { account as accountSchema, contact as contactSchema } from '../../dev/sample-org/schema.js';
import type { AttributeValue, ChangeEvent } from '../../lib/change/change-event.js';
import { createDataverseClient, type DataverseClientOptions } from '../../lib/dataverse/webapi/client.js';
import { toAssociateEvent } from '../../lib/dataverse/webapi/rows.js';
import { AppError } from '../../lib/errors.js';
import { silentLogger } from '../../lib/log.js';

const FAST_RETRY = { maxAttempts: 6, baseDelayMs: 10, maxDelayMs: 2_000 };

/** A fetch that records what went over the wire: status per request (0 = no answer) and the peak in flight. */
function recordingFetch() {
  const log = { statuses: [] as number[], authorization: [] as (string | null)[], inFlight: 0, peak: 0 };
  const wrapped: typeof fetch = async (input, init) => {
    log.inFlight++;
    log.peak = Math.max(log.peak, log.inFlight);
    log.authorization.push(new Headers(init?.headers).get('authorization'));
    try {
      const res = await fetch(input, init);
      log.statuses.push(res.status);
      return res;
    } catch (err) {
      log.statuses.push(0);
      throw err;
    } finally {
      log.inFlight--;
    }
  };
  return { fetch: wrapped, log };
}

function clientFor(org: SampleOrg, options: Partial<DataverseClientOptions> = {}) {
  return createDataverseClient({ url: org.url, logger: silentLogger, retry: FAST_RETRY, ...options });
}

async function collect(pages: AsyncIterable<{ rows: ChangeEvent[] }>): Promise<ChangeEvent[][]> {
  const out: ChangeEvent[][] = [];
  for await (const page of pages) out.push(page.rows);
  return out;
}

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<AppError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof AppError, `expected an AppError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

/** A write through the sample org's Web API, as any Dataverse client would make it. */
async function write(org: SampleOrg, method: string, path: string, body?: unknown): Promise<Response> {
  const res = await fetch(`${org.url}/api/data/v9.2/${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(res.ok, `${method} ${path} answered ${res.status}: ${await res.clone().text()}`);
  return res;
}

/**
 * Typed values in one canonical form, to compare the generator's rows with what the client read: date-times in
 * full ISO form, decimals without trailing zeros (the Web API prints 12.50 as 12.5), no versionnumber.
 */
function canonical(row: Record<string, AttributeValue> | undefined): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const [name, value] of Object.entries(row ?? {})) {
    if (name === 'versionnumber') continue;
    if (value.type === 'datetime') out[name] = { type: 'datetime', value: new Date(value.value).toISOString() };
    else if (value.type === 'decimal' || value.type === 'money') {
      out[name] = {
        type: value.type,
        value: value.value.includes('.') ? value.value.replace(/\.?0+$/, '') : value.value,
      };
    } else out[name] = value;
  }
  return out;
}

describe('Dataverse Web API client against the sample org', () => {
  let big: SampleOrg;
  before(async () => {
    big = await startSampleOrg({ seed: 11, counts: { account: 300, contact: 12_000 } });
  });
  after(() => big.stop());

  it('reads entity metadata from the typed attribute casts', async () => {
    const client = clientFor(big);
    const contact = await client.entityMetadata('contact');
    assert.equal(contact.entitySetName, contactSchema.entitySetName);
    assert.equal(contact.primaryIdAttribute, contactSchema.primaryIdAttribute);
    assert.deepEqual(
      contact.attributes.map((a) => a.logicalName),
      contactSchema.attributes.map((a) => a.logicalName),
    );
    const byName = new Map(contact.attributes.map((a) => [a.logicalName, a]));
    const customer = byName.get('parentcustomerid');
    assert.equal(customer?.valueType, 'lookup');
    assert.equal(customer?.webApiName, '_parentcustomerid_value');
    assert.deepEqual(
      customer?.targets,
      contactSchema.attributes.find((a) => a.logicalName === 'parentcustomerid')?.targets,
    );

    const interests = contactSchema.attributes.find((a) => a.logicalName === 'new_interests')!;
    assert.equal(byName.get('new_interests')?.valueType, 'multiselect');
    assert.deepEqual(contact.optionSets.new_interests, {
      name: interests.optionSet!.name,
      isGlobal: true,
      options: interests.optionSet!.options.map(({ value, label }) => ({ value, label })),
    });
    assert.equal(contact.optionSets.gendercode.isGlobal, false);
    assert.equal(byName.get('birthdate')?.dateTimeFormat, 'DateOnly');

    const account = await client.entityMetadata('account');
    const schemaOf = (name: string) => accountSchema.attributes.find((a) => a.logicalName === name)!;
    const creditlimit = account.attributes.find((a) => a.logicalName === 'creditlimit')!;
    assert.equal(creditlimit.valueType, 'decimal');
    assert.equal(creditlimit.scale, schemaOf('creditlimit').precision);
    assert.equal(account.attributes.find((a) => a.logicalName === 'revenue')?.valueType, 'money');
    assert.equal(account.attributes.find((a) => a.logicalName === 'name')?.maxLength, schemaOf('name').maxLength);
    assert.deepEqual(
      account.stateOptions.map((o) => [o.value, o.label, o.defaultStatus]),
      schemaOf('statecode').optionSet!.options.map((o) => [o.value, o.label, o.defaultStatus]),
    );
    assert.deepEqual(
      account.statusOptions.map((o) => [o.value, o.state]),
      schemaOf('statuscode').optionSet!.options.map((o) => [o.value, o.state]),
    );
    assert.equal(account.optionSets.industrycode.options.length, schemaOf('industrycode').optionSet!.options.length);
  });

  it('reads an N:N relationship and a global option set, and names a missing table', async () => {
    const client = clientFor(big);
    const relationship = await client.relationshipMetadata('new_accountcontact');
    assert.equal(relationship.entity1LogicalName, 'account');
    assert.equal(relationship.entity2IntersectAttribute, 'contactid');
    const interests = await client.globalOptionSet('new_interest');
    assert.ok(interests && interests.options.length > 0);
    assert.equal(await client.globalOptionSet('no_such_set'), undefined);
    const err = await rejectsWithCode(client.entityMetadata('no_such_table'), 'DATAVERSE_REQUEST_FAILED');
    assert.match(err.message, /no_such_table/);
  });

  it('pages through 12,000 contacts in three pages of 5000, every row once', async () => {
    const client = clientFor(big);
    const pages = await collect(client.readPages('contacts', { pageSize: 5000 }));
    assert.deepEqual(
      pages.map((p) => p.length),
      [5000, 5000, 2000],
    );
    const ids = new Set(pages.flat().map((r) => r.recordId));
    assert.equal(ids.size, 12_000);
    for (const row of pages.flat().slice(0, 50)) {
      assert.equal(row.operation, 'upsert');
      assert.equal(row.entity, 'contact');
      assert.equal(row.organizationId, big.organizationId);
      assert.match(row.version.rowVersion ?? '', /^\d+$/);
    }
  });

  it('resumes a copy from a saved nextLink without repeating or skipping a row', async () => {
    const first = clientFor(big);
    let saved: string | undefined;
    const seen: string[] = [];
    for await (const page of first.readPages('contact', { pageSize: 4000 })) {
      seen.push(...page.rows.map((r) => r.recordId));
      saved = page.nextLink;
      break; // the copy is interrupted after its first page
    }
    assert.ok(saved);
    const resumed = clientFor(big); // a fresh client, as after a restart
    const rest = (await collect(resumed.readPages('contact', { pageSize: 4000, startLink: saved }))).flat();
    const all = [...seen, ...rest.map((r) => r.recordId)];
    assert.equal(all.length, 12_000);
    assert.equal(new Set(all).size, 12_000);
  });

  it('types every attribute like the org holds it: lookups by their annotation, decimals digit for digit', async () => {
    const client = clientFor(big);
    const generator = new RowGenerator(big.seed, big.counts);
    const rows = (await collect(client.readPages('account', { pageSize: 100 }))).flat();
    assert.equal(rows.length, big.counts.account);
    for (const row of rows) {
      const index = generator.indexOf('account', row.recordId)!;
      const expected = generator.row('account', index);
      assert.deepEqual(canonical(row.attributes), canonical(expected));
      assert.equal(row.version.rowVersion, (expected.versionnumber as { value: string }).value);
    }
    const longDecimal = rows.find((r) => {
      const v = r.attributes?.creditlimit;
      return v?.type === 'decimal' && v.value.replace(/\D/g, '').replace(/^0+/, '').length > 17;
    });
    assert.ok(longDecimal, 'the sample holds decimals with more digits than a double keeps');

    const contacts = (await collect(client.readPages('contact', { pageSize: 600, select: ['parentcustomerid'] })))[0];
    const kinds = new Set(
      contacts.map((r) => r.attributes?.parentcustomerid).flatMap((v) => (v?.type === 'lookup' ? [v.entityType] : [])),
    );
    assert.deepEqual([...kinds].sort(), ['account', 'contact']);
    assert.deepEqual(Object.keys(contacts[0].attributes ?? {}).sort(), ['contactid', 'modifiedon', 'parentcustomerid']);
  });

  it('turns the rows of an N:N intersect table into associate changes', async () => {
    const client = clientFor(big);
    const generator = new RowGenerator(big.seed, big.counts);
    const relationship = await client.relationshipMetadata('new_accountcontact');
    const pages = await collect(client.readPages(relationship.intersectEntityName, { pageSize: 1000 }));
    const links = pages.flat().map((row) => toAssociateEvent(row, relationship));
    assert.equal(links.length, big.counts.new_accountcontact);
    for (const link of links.slice(0, 100)) {
      const [accountId, contactId] = link.recordId.split(':');
      const row = generator.row('new_accountcontact', generator.indexOf('contact', contactId)! / 4);
      assert.equal(link.operation, 'associate');
      assert.equal(link.entity, 'new_accountcontact');
      assert.deepEqual(link.relationship, {
        name: 'new_accountcontact',
        entity1: { logicalName: 'account', id: accountId },
        entity2: { logicalName: 'contact', id: contactId },
      });
      assert.deepEqual(
        [row.accountid, row.contactid],
        [
          { type: 'guid', value: accountId },
          { type: 'guid', value: contactId },
        ],
      );
    }
  });

  it('retrieves one row, and undefined for a row that does not exist', async () => {
    const client = clientFor(big);
    const generator = new RowGenerator(big.seed, big.counts);
    const id = generator.id('contact', 4321);
    const row = await client.retrieve('contact', id);
    assert.equal(row?.recordId, id);
    assert.equal(row?.source, 'webhook');
    assert.deepEqual(canonical(row?.attributes), canonical(generator.row('contact', 4321)));
    assert.equal(await client.retrieve('contact', '00000000-0000-4000-8000-00000000abcd'), undefined);
  });

  it('estimates row counts with RetrieveTotalRecordCount', async () => {
    const client = clientFor(big);
    assert.equal(await client.estimateCount('contact'), big.counts.contact);
    assert.equal(await client.estimateCount('accounts'), big.counts.account);
  });

  it('counts a table without a snapshot count with $count, and calls one beyond its 5,000 unknown', async () => {
    const client = clientFor(big);
    big.faults.noSnapshotCount('account', 'contact');
    try {
      assert.equal(await client.estimateCount('account'), big.counts.account);
      assert.equal(await client.estimateCount('contact'), undefined, `${big.counts.contact} contacts are not 5,000`);
    } finally {
      big.faults.reset();
    }
  });

  it('caps requests in flight at maxConcurrency', async () => {
    const { fetch, log } = recordingFetch();
    const client = clientFor(big, { fetch, maxConcurrency: 2 });
    await client.entityMetadata('contact');
    big.faults.slowPages(30);
    try {
      const ids = new RowGenerator(big.seed, big.counts);
      await Promise.all(Array.from({ length: 8 }, (_, i) => client.retrieve('contact', ids.id('contact', i * 100))));
      await Promise.all(Array.from({ length: 4 }, () => collect(client.readPages('account', { pageSize: 300 }))));
    } finally {
      big.faults.reset();
    }
    assert.equal(log.peak, 2);
  });

  it('sends a bearer token from the credential and reuses it until it nears expiry', async () => {
    let issued = 0;
    const credential: TokenCredential = {
      getToken: async (scopes): Promise<AccessToken> => {
        issued++;
        assert.deepEqual([scopes].flat(), [`${big.url}/.default`]);
        return { token: `token-${issued}`, expiresOnTimestamp: Date.now() + 3_600_000 };
      },
    };
    const { fetch, log } = recordingFetch();
    const client = clientFor(big, { credential, fetch });
    await client.entityMetadata('account');
    await client.retrieve('account', new RowGenerator(big.seed, big.counts).id('account', 1));
    assert.equal(issued, 1);
    assert.ok(log.authorization.length > 5);
    assert.ok(log.authorization.every((h) => h === 'Bearer token-1'));

    const anonymous = recordingFetch();
    await clientFor(big, { fetch: anonymous.fetch }).estimateCount('account');
    assert.ok(anonymous.log.authorization.every((h) => h === null));
  });
});

describe('change tracking through the client', () => {
  it('reads creates, updates and deletes made through the org since the deltaLink', async () => {
    await using org = await startSampleOrg({ seed: 5, counts: { account: 40, contact: 120 } });
    const client = clientFor(org);
    const generator = new RowGenerator(org.seed, org.counts);
    let deltaLink: string | undefined;
    const initial: ChangeEvent[] = [];
    for await (const page of client.readPages('contact', { pageSize: 50, trackChanges: true })) {
      initial.push(...page.rows);
      if (page.nextLink) assert.equal(page.deltaLink, undefined);
      deltaLink = page.deltaLink;
    }
    assert.equal(initial.length, 120);
    assert.ok(deltaLink, 'the last tracked page carries a deltaLink');

    const created = await write(org, 'POST', 'contacts', {
      firstname: 'Zoë',
      lastname: 'Nakamura',
      'parentcustomerid_account@odata.bind': `/accounts(${generator.id('account', 3)})`,
    });
    const createdId = /\(([^)]+)\)$/.exec(created.headers.get('odata-entityid') ?? '')![1];
    const updatedId = generator.id('contact', 7);
    await write(org, 'PATCH', `contacts(${updatedId})`, {
      emailaddress1: 'changed@example.com',
      new_interests: '100000001,100000003',
    });
    const deletedId = generator.id('contact', 9);
    await write(org, 'DELETE', `contacts(${deletedId})`);
    for (let i = 20; i < 26; i++)
      await write(org, 'PATCH', `contacts(${generator.id('contact', i)})`, { lastname: `Batch ${i}` });

    const pages: Array<{ rows: ChangeEvent[]; nextLink?: string; deltaLink?: string }> = [];
    for await (const page of client.readDelta(deltaLink, { pageSize: 4 })) pages.push(page);
    assert.ok(pages.length >= 3, 'nine changes in pages of four');
    assert.ok(pages.slice(0, -1).every((p) => p.nextLink && !p.deltaLink));
    const next = pages.at(-1)?.deltaLink;
    assert.ok(next);
    const changes = pages.flatMap((p) => p.rows);
    assert.equal(changes.length, 9);
    assert.ok(changes.every((c) => c.source === 'reconcile' && c.entity === 'contact'));

    const byId = new Map(changes.map((c) => [c.recordId, c]));
    const createdRow = byId.get(createdId);
    assert.equal(createdRow?.operation, 'upsert');
    assert.deepEqual(createdRow?.attributes?.parentcustomerid, {
      type: 'lookup',
      value: generator.id('account', 3),
      entityType: 'account',
    });
    assert.deepEqual(createdRow?.attributes?.fullname, { type: 'string', value: 'Zoë Nakamura' });
    const updated = byId.get(updatedId)!;
    assert.deepEqual(updated.attributes?.new_interests, { type: 'multiselect', value: [100000001, 100000003] });
    const before = initial.find((r) => r.recordId === updatedId)!;
    assert.ok(BigInt(updated.version.rowVersion!) > BigInt(before.version.rowVersion!));
    const deleted = byId.get(deletedId)!;
    assert.equal(deleted.operation, 'delete');
    assert.equal(deleted.attributes, undefined);
    assert.ok(Date.parse(deleted.version.modifiedOn!) >= Date.parse(updated.version.modifiedOn!) - 1000);

    const quiet = await collect(client.readDelta(next));
    assert.deepEqual(quiet, [[]], 'nothing changed since the new deltaLink');
  });

  it('reports an expired change-tracking token as DELTA_TOKEN_EXPIRED', async () => {
    await using org = await startSampleOrg({ counts: { account: 10, contact: 10 } });
    const client = clientFor(org);
    let deltaLink = '';
    for await (const page of client.readPages('account', { trackChanges: true }))
      deltaLink = page.deltaLink ?? deltaLink;
    org.faults.expireDeltaTokens();
    const err = await rejectsWithCode(collect(client.readDelta(deltaLink)), 'DELTA_TOKEN_EXPIRED');
    assert.match(err.message, /full/i);
    assert.equal(err.transient, false);
  });
});

describe('throttling and failures', () => {
  it('rides out a 429 storm, waiting the Retry-After each time', async () => {
    await using org = await startSampleOrg({ counts: { account: 30, contact: 30 } });
    const { fetch, log } = recordingFetch();
    const client = clientFor(org, { fetch });
    await collect(client.readPages('account')); // metadata and organization id are cached from here on
    const retryAfterSeconds = 0.15;
    org.faults.throttleNext(4, retryAfterSeconds);
    const started = Date.now();
    const rows = (await collect(client.readPages('account'))).flat();
    const elapsed = Date.now() - started;
    assert.equal(rows.length, 30);
    assert.equal(org.stats().throttled, 4);
    assert.deepEqual(log.statuses.slice(-5), [429, 429, 429, 429, 200]);
    assert.ok(elapsed >= 4 * retryAfterSeconds * 1000 - 20, `waited ${elapsed} ms for four Retry-After of 150 ms`);
  });

  it('gives up with DATAVERSE_THROTTLED when the storm outlasts the attempts', async () => {
    await using org = await startSampleOrg({ counts: { account: 5, contact: 5 } });
    const client = clientFor(org, { retry: { ...FAST_RETRY, maxAttempts: 3 } });
    await client.entityMetadata('account');
    org.faults.throttleNext(10, 0.01);
    const err = await rejectsWithCode(client.estimateCount('account'), 'DATAVERSE_THROTTLED');
    assert.equal(err.transient, true);
    assert.match(err.message, /0x80072322/);
    assert.equal(org.stats().throttled, 3);
  });

  it('retries 5xx answers and lost connections with backoff', async () => {
    await using org = await startSampleOrg({ counts: { account: 20, contact: 20 } });
    const { fetch, log } = recordingFetch();
    const client = clientFor(org, { fetch });
    await collect(client.readPages('contact')); // metadata and organization id are cached from here on
    org.faults.failNext(2, 503);
    assert.equal((await collect(client.readPages('contact'))).flat().length, 20);
    assert.deepEqual(log.statuses.slice(-3), [503, 503, 200]);

    org.faults.resetNext(2);
    assert.equal((await collect(client.readPages('contact'))).flat().length, 20);
    assert.deepEqual(log.statuses.slice(-3), [0, 0, 200]);
    assert.equal(org.stats().reset, 2);
  });

  it('fails with DATAVERSE_UNAVAILABLE, carrying Dataverse’s message, when 5xx persists', async () => {
    await using org = await startSampleOrg({ counts: { account: 5, contact: 5 } });
    const client = clientFor(org, { retry: { ...FAST_RETRY, maxAttempts: 3 } });
    await client.entityMetadata('account');
    org.faults.failNext(5, 500);
    const err = await rejectsWithCode(client.estimateCount('account'), 'DATAVERSE_UNAVAILABLE');
    assert.match(err.message, /An unexpected error occurred\. \(code 0x80040216\)/);
    assert.equal(org.stats().failed, 3);
  });

  it('does not retry a request Dataverse rejects, and names Dataverse’s code', async () => {
    await using org = await startSampleOrg({ counts: { account: 5, contact: 5 } });
    const { fetch, log } = recordingFetch();
    const client = clientFor(org, { fetch });
    const err = await rejectsWithCode(client.relationshipMetadata('no_such_relationship'), 'DATAVERSE_REQUEST_FAILED');
    assert.match(err.message, /no_such_relationship/);
    assert.deepEqual(log.statuses, [404]);
    await rejectsWithCode(client.retrieve('account', 'not-a-guid'), 'VALIDATION_FAILED');
  });
});
