import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import type { SampleOrg } from '../../dev/sample-org/index.js';
import type { AttributeValue, ChangeEvent } from '../../lib/change/change-event.js';
import type { DataverseClient } from '../../lib/dataverse/webapi/client.js';
import { parseWebhook } from '../../lib/dataverse/webhook/parse.js';
import { AppError } from '../../lib/errors.js';
import type { ControlStore } from '../../lib/profiles/control-store.js';
import { completeEntity, copyStep, failEntity, planInitialSync } from '../../lib/sync/initial-sync.js';
import type { DataverseSource, SyncSink } from '../../lib/sync/ports.js';
import { stopOwnAzurite } from '../support/azurite.js';
import { stopOwnServer, type TestDatabase } from '../support/postgres.js';
import { copyToEnd, FAST_RETRY, type SyncStack, startSyncStack, writeToOrg } from '../support/sync-stack.js';

const PAGE_SIZE = 200;

/** The sync stack, counting the pages the copy reads from the source. */
interface CountingStack extends SyncStack {
  /** Pages the copy has read from the source so far. */
  pagesRead: { count: number };
}

/** `wrap` disturbs the counting source further (to hold or count other reads). */
async function startCountingStack(wrap = (source: DataverseSource) => source): Promise<CountingStack> {
  const pagesRead = { count: 0 };
  const stack = await startSyncStack({
    name: 'initial sync test',
    entities: ['account', 'contact'],
    relationships: ['new_accountcontact'],
    pageSize: PAGE_SIZE,
    source: (client) =>
      wrap({
        ...client,
        readPages: (entity, options) => countPages(client.readPages(entity, options), pagesRead),
      }),
  });
  return Object.assign(stack, { pagesRead });
}

async function* countPages<T>(pages: AsyncIterable<T>, counter: { count: number }): AsyncGenerator<T> {
  for await (const page of pages) {
    counter.count++;
    yield page;
  }
}

/** Every source row, read fresh from the sample org after the fact. */
async function sourceRows(client: DataverseClient, entity: string): Promise<ChangeEvent[]> {
  const rows: ChangeEvent[] = [];
  for await (const page of client.readPages(entity, { pageSize: 5000 })) rows.push(...page.rows);
  return rows;
}

function canonicalDecimal(text: string): string {
  if (!text.includes('.')) return text;
  return text.replace(/0+$/, '').replace(/\.$/, '');
}

function sourceCell(value: AttributeValue): string {
  switch (value.type) {
    case 'null':
      return '∅';
    case 'decimal':
    case 'money':
      return canonicalDecimal(value.value);
    case 'datetime':
      return new Date(value.value).toISOString();
    case 'guid':
      return value.value.toLowerCase();
    case 'lookup':
      return `${value.value.toLowerCase()}@${value.entityType}`;
    case 'multiselect':
      return value.value.join(',');
    case 'partylist':
      return JSON.stringify(value.value);
    default:
      return String(value.value);
  }
}

function targetCell(type: AttributeValue['type'], raw: unknown, entityType: unknown): string {
  if (raw === null || raw === undefined) return '∅';
  switch (type) {
    case 'decimal':
    case 'money':
      return canonicalDecimal(String(raw));
    case 'datetime':
      return (raw as Date).toISOString();
    case 'int':
    case 'optionset':
    case 'float':
      return String(Number(raw));
    case 'lookup':
      return `${String(raw)}@${String(entityType)}`;
    default:
      return String(raw);
  }
}

/**
 * Compares every column of every row of the target table with the source, value by value (types
 * normalized: decimals without trailing zeros, times as ISO). Returns the ids that differ or are missing.
 */
async function differences(stack: SyncStack, entity: string): Promise<string[]> {
  const source = await sourceRows(stack.client, entity);
  const { rows } = await stack.db.pool.query(`SELECT * FROM public.${entity}`);
  const target = new Map(rows.map((r) => [String(r.id), r as Record<string, unknown>]));
  const differing: string[] = [];
  for (const change of source) {
    const row = target.get(change.recordId);
    target.delete(change.recordId);
    if (!row) {
      differing.push(`${change.recordId} missing`);
      continue;
    }
    const cells = Object.entries(change.attributes ?? {}).filter(([name]) => name !== 'modifiedon');
    const expected = cells.map(([name, v]) => `${name}=${sourceCell(v)}`);
    const actual = cells.map(([name, v]) => `${name}=${targetCell(v.type, row[name], row[`${name}_entitytype`])}`);
    expected.push(
      `versionnumber=${change.version.rowVersion}`,
      `modifiedon=${new Date(change.version.modifiedOn ?? 0).toISOString()}`,
    );
    actual.push(
      `versionnumber=${String(row.versionnumber)}`,
      `modifiedon=${(row.modifiedon as Date | null)?.toISOString()}`,
    );
    if (expected.join('|') !== actual.join('|')) {
      differing.push(`${change.recordId}: expected ${expected.join('|')} got ${actual.join('|')}`);
    }
  }
  for (const id of target.keys()) differing.push(`${id} not in the source`);
  // A few examples and the count are enough to see what went wrong.
  return differing.length > 3 ? [...differing.slice(0, 3), `… ${differing.length} rows differ`] : differing;
}

/** Account–contact pairs of the N:N relationship, in the source's intersect table and in the target. */
async function sourcePairs(client: DataverseClient): Promise<string[]> {
  const pairs: string[] = [];
  for (const row of await sourceRows(client, 'new_accountcontact')) {
    const a = row.attributes?.accountid;
    const c = row.attributes?.contactid;
    if (a?.type === 'guid' && c?.type === 'guid') pairs.push(`${a.value}:${c.value}`);
  }
  return pairs.sort();
}

async function targetPairs(db: TestDatabase): Promise<string[]> {
  const { rows } = await db.pool.query('SELECT accountid, contactid FROM public.new_accountcontact');
  return rows.map((r) => `${r.accountid}:${r.contactid}`).sort();
}

async function countRows(db: TestDatabase, table: string): Promise<number> {
  const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM public.${table}`);
  return rows[0].n as number;
}

/**
 * Live changes as the webhook path delivers them: the sample org POSTs its RemoteExecutionContext here, it is
 * parsed and applied to the same sink before the org hears 200 (so `org.drain()` means "applied").
 */
async function deliverWebhooksTo(org: SampleOrg, sink: SyncSink): Promise<{ close(): void }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const parsed = parseWebhook(Buffer.concat(chunks).toString('utf8'), {});
      const outcomes = await sink.applyBatch(parsed.changes);
      res.writeHead(outcomes.every((o) => o.status !== 'failed') ? 200 : 500).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  org.setWebhook(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api/webhooks/dataverse`);
  return { close: () => server.close() };
}

/** A sink that fails like a crashed worker on its nth call (1-based), then works again. */
function crashingSink(sink: SyncSink, crashOnCall: number): SyncSink & { calls: number } {
  const wrapped = {
    calls: 0,
    writeMetadata: (m: Parameters<SyncSink['writeMetadata']>[0]) => sink.writeMetadata(m),
    async applyBatch(changes: ChangeEvent[], options?: Parameters<SyncSink['applyBatch']>[1]) {
      wrapped.calls++;
      if (wrapped.calls === crashOnCall) throw new Error('worker crashed while applying the page');
      return sink.applyBatch(changes, options);
    },
  };
  return wrapped;
}

// Run on its own, a file starts private servers; stopping them lets the process end.
after(async () => {
  await stopOwnServer();
  await stopOwnAzurite();
});

describe('initial sync', () => {
  it('copies every row of every entity with exact counts and column values equal to the source', async () => {
    await using stack = await startCountingStack();
    const { deps, profile, org } = stack;
    const entities = await planInitialSync(deps, profile.id);
    assert.deepEqual(entities, ['account', 'contact', 'new_accountcontact']);
    const planned = await stack.store.entityStatuses(profile.id);
    assert.deepEqual(
      planned.map((s) => [s.entity, s.syncState, s.rowsEstimated, s.rowsCopied]),
      [
        ['account', 'InProgress', org.counts.account, 0],
        ['contact', 'InProgress', org.counts.contact, 0],
        ['new_accountcontact', 'InProgress', org.counts.new_accountcontact, 0],
      ],
    );

    for (const entity of entities) await copyToEnd(deps, profile.id, entity);

    assert.equal(await countRows(stack.db, 'account'), org.counts.account);
    assert.equal(await countRows(stack.db, 'contact'), org.counts.contact);
    assert.deepEqual(await differences(stack, 'account'), []);
    assert.deepEqual(await differences(stack, 'contact'), []);
    assert.deepEqual(await targetPairs(stack.db), await sourcePairs(stack.client));
    const done = await stack.store.entityStatuses(profile.id);
    assert.deepEqual(
      done.map((s) => [s.entity, s.syncState, s.rowsCopied]),
      [
        ['account', 'Completed', org.counts.account],
        ['contact', 'Completed', org.counts.contact],
        ['new_accountcontact', 'Completed', org.counts.new_accountcontact],
      ],
    );
    const checkpoint = await stack.store.getCheckpoint(profile.id, 'contact');
    assert.equal(checkpoint?.nextLink, null);
    assert.match(checkpoint?.deltaLink ?? '', /\$deltatoken=/);
    assert.equal(checkpoint?.pagesDone, Math.ceil(org.counts.contact / PAGE_SIZE));
    const { rows: metadata } = await stack.db.pool.query(
      `SELECT (SELECT count(*)::int FROM public.attributemetadata WHERE entityname = 'account') AS attributes,
              (SELECT count(*)::int FROM public.optionsetmetadata WHERE entityname = 'account') AS options,
              (SELECT count(*)::int FROM public.statemetadata WHERE entityname = 'contact') AS states`,
    );
    assert.ok(
      metadata[0].attributes > 10 && metadata[0].options > 0 && metadata[0].states > 0,
      JSON.stringify(metadata),
    );
    // A second plan finds nothing left to copy; a full one starts over.
    assert.deepEqual(await planInitialSync(deps, profile.id), []);
    assert.deepEqual(await planInitialSync(deps, profile.id, { full: true }), [
      'account',
      'contact',
      'new_accountcontact',
    ]);
    assert.equal(await stack.store.getCheckpoint(profile.id, 'account'), undefined);
  });

  it('prepares the entities of a plan at once, not one after another', { timeout: 60_000 }, async (t) => {
    // Each count waits until all three have been asked for: a plan preparing one entity at a time would wait
    // until the test times out (which lets the counts go, so the stack still closes).
    let asked = 0;
    let everyOneAsked: () => void = () => {};
    const all = new Promise<void>((resolve) => {
      everyOneAsked = resolve;
    });
    t.signal.addEventListener('abort', () => everyOneAsked());
    await using stack = await startCountingStack((source) => ({
      ...source,
      estimateCount: async (table) => {
        if (++asked === 3) everyOneAsked();
        await all;
        return source.estimateCount(table);
      },
    }));
    const { deps, profile, org, store } = stack;
    assert.deepEqual(await planInitialSync(deps, profile.id), ['account', 'contact', 'new_accountcontact']);
    assert.equal(asked, 3);
    const planned = await store.entityStatuses(profile.id);
    assert.deepEqual(
      planned.map((s) => [s.entity, s.syncState, s.rowsEstimated]),
      [
        ['account', 'InProgress', org.counts.account],
        ['contact', 'InProgress', org.counts.contact],
        ['new_accountcontact', 'InProgress', org.counts.new_accountcontact],
      ],
    );
  });

  it('resumes after a crash while applying a page, re-reading only that page', async () => {
    await using stack = await startCountingStack();
    const { profile, org } = stack;
    const pages = Math.ceil(org.counts.contact / PAGE_SIZE);
    const crashing = crashingSink(stack.sink, 4);
    await planInitialSync(stack.deps, profile.id);
    await assert.rejects(
      copyToEnd({ ...stack.deps, sinkFor: async () => crashing }, profile.id, 'contact', 100),
      /worker crashed/,
    );
    assert.equal(stack.pagesRead.count, 4);
    assert.equal((await stack.store.getCheckpoint(profile.id, 'contact'))?.pagesDone, 3);

    await copyToEnd(stack.deps, profile.id, 'contact', 100);
    assert.equal(stack.pagesRead.count, pages + 1, 'exactly the page in flight was read twice');
    assert.equal(await countRows(stack.db, 'contact'), org.counts.contact);
    assert.deepEqual(await differences(stack, 'contact'), []);
    const [, contact] = await stack.store.entityStatuses(profile.id);
    assert.equal(contact.rowsCopied, org.counts.contact);
  });

  it('resumes after a crash between applying a page and saving its checkpoint, re-reading one page', async () => {
    await using stack = await startCountingStack();
    const { profile, org } = stack;
    const pages = Math.ceil(org.counts.contact / PAGE_SIZE);
    let saves = 0;
    const crashingStore = {
      ...stack.store,
      saveCopyProgress: async (checkpoint: Parameters<ControlStore['saveCopyProgress']>[0], rows: number) => {
        if (++saves === 3) throw new Error('worker crashed before the checkpoint was saved');
        return stack.store.saveCopyProgress(checkpoint, rows);
      },
    };
    await planInitialSync(stack.deps, profile.id);
    await assert.rejects(
      copyToEnd({ ...stack.deps, store: crashingStore }, profile.id, 'contact', 100),
      /before the checkpoint/,
    );
    await copyToEnd(stack.deps, profile.id, 'contact', 100);
    assert.equal(stack.pagesRead.count, pages + 1);
    assert.equal(await countRows(stack.db, 'contact'), org.counts.contact);
    assert.deepEqual(await differences(stack, 'contact'), []);
    // The page read twice is counted once: its count moved with its checkpoint.
    const [, contact] = await stack.store.entityStatuses(profile.id);
    assert.equal(contact.rowsCopied, org.counts.contact);
  });

  it('ends correct when live changes race the copy: no deleted row comes back, no stale row wins', async () => {
    await using stack = await startCountingStack();
    const { profile, org, sink } = stack;
    const webhooks = await deliverWebhooksTo(org, sink);
    const order = (await sourceRows(stack.client, 'contact')).map((c) => c.recordId);
    const laterDeleted = order[order.length - 10];
    const laterUpdated = order[order.length - 20];
    const write = (method: string, path: string, body?: unknown) => writeToOrg(org, method, path, body);

    let call = 0;
    let raced: { deleted: string; updated: string } | undefined;
    const racingSink: SyncSink = {
      writeMetadata: (m) => sink.writeMetadata(m),
      async applyBatch(changes, options) {
        if (++call === 2) {
          // The page was read before these writes; their webhooks land before the page is applied.
          raced = { deleted: changes[0].recordId, updated: changes[1].recordId };
          await write('DELETE', `contacts(${raced.deleted})`);
          await write('PATCH', `contacts(${raced.updated})`, { firstname: 'Racing' });
          await write('DELETE', `contacts(${laterDeleted})`);
          await write('PATCH', `contacts(${laterUpdated})`, { lastname: 'Later' });
          await write('POST', 'contacts', { firstname: 'Born', lastname: 'During Copy' });
          await org.drain();
        }
        return sink.applyBatch(changes, options);
      },
    };
    try {
      await planInitialSync(stack.deps, profile.id);
      await copyToEnd({ ...stack.deps, sinkFor: async () => racingSink }, profile.id, 'contact');
      await org.drain();
    } finally {
      webhooks.close();
    }
    assert.ok(raced);
    assert.equal(org.webhookDeliveries().length, 5);
    assert.equal(await countRows(stack.db, 'contact'), org.counts.contact - 2 + 1);
    assert.deepEqual(await differences(stack, 'contact'), []);
    const { rows } = await stack.db.pool.query('SELECT count(*)::int AS n FROM public.contact WHERE id = ANY($1)', [
      [raced.deleted, laterDeleted],
    ]);
    assert.equal(rows[0].n, 0, 'the deleted rows stay deleted');
    const { rows: updated } = await stack.db.pool.query('SELECT firstname FROM public.contact WHERE id = $1', [
      raced.updated,
    ]);
    assert.equal(updated[0].firstname, 'Racing');
  });

  it('keeps a pair disassociated while the relationship is copied removed, and copies the rest', async () => {
    await using stack = await startCountingStack();
    const { profile, org, sink } = stack;
    const webhooks = await deliverWebhooksTo(org, sink);
    let call = 0;
    let removed = '';
    const racingSink: SyncSink = {
      writeMetadata: (m) => sink.writeMetadata(m),
      async applyBatch(changes, options) {
        if (++call === 1) {
          // The page holds this pair; it is disassociated (and the webhook applied) before the page lands.
          const pair = changes[0].relationship!;
          removed = `${pair.entity1.id}:${pair.entity2.id}`;
          await writeToOrg(org, 'DELETE', `accounts(${pair.entity1.id})/new_accountcontact(${pair.entity2.id})/$ref`);
          await org.drain();
        }
        return sink.applyBatch(changes, options);
      },
    };
    try {
      await planInitialSync(stack.deps, profile.id);
      await copyToEnd({ ...stack.deps, sinkFor: async () => racingSink }, profile.id, 'new_accountcontact');
    } finally {
      webhooks.close();
    }
    const source = await sourcePairs(stack.client);
    assert.equal(source.length, org.counts.new_accountcontact - 1);
    assert.ok(removed && !source.includes(removed));
    assert.deepEqual(await targetPairs(stack.db), source);
  });

  it('rides out a storm of 429s and completes with the exact result', async () => {
    await using stack = await startCountingStack();
    const { profile, org, sink } = stack;
    let call = 0;
    const stormySink: SyncSink = {
      writeMetadata: (m) => sink.writeMetadata(m),
      async applyBatch(changes, options) {
        // More consecutive 429s than one request's retry budget: the activity fails and is retried.
        if (++call === 2) org.faults.throttleNext(FAST_RETRY.maxAttempts + 4, 0.05);
        return sink.applyBatch(changes, options);
      },
    };
    const deps = { ...stack.deps, sinkFor: async () => stormySink };
    await planInitialSync(deps, profile.id);
    const throttled: AppError[] = [];
    for (let attempt = 0; ; attempt++) {
      try {
        await copyToEnd(deps, profile.id, 'account', 100);
        break;
      } catch (err) {
        // What Durable's retry policy does with a failed activity: call it again.
        if (!(err instanceof AppError) || !err.transient || attempt > 5) throw err;
        throttled.push(err);
      }
    }
    assert.deepEqual(
      throttled.map((e) => e.code),
      ['DATAVERSE_THROTTLED'],
    );
    assert.equal(await countRows(stack.db, 'account'), org.counts.account);
    assert.deepEqual(await differences(stack, 'account'), []);
    assert.equal(stack.pagesRead.count, Math.ceil(org.counts.account / PAGE_SIZE));
  });

  it('marks an entity whose table cannot fit Failed with the columns named, logs none of its rows, copies the rest', async () => {
    await using stack = await startSyncStack({
      name: 'table limit',
      entities: ['account', 'contact'],
      counts: { account: 30, contact: 40 },
    });
    // An existing contact table a few columns short of PostgreSQL's 1,600: contact's attributes cannot be added.
    const fillers = Array.from({ length: 1_590 }, (_, i) => `f${i + 1} integer`);
    await stack.db.pool.query(`CREATE TABLE contact (id uuid PRIMARY KEY, ${fillers.join(', ')})`);
    const { id } = stack.profile;
    // What the lane orchestration does with each entity: copy steps to the end, or fail it with the step's reason.
    for (const entity of await planInitialSync(stack.deps, id)) {
      for (;;) {
        const result = await copyStep(stack.deps, { profileId: id, entity, maxPages: 2 });
        if (result.error !== undefined) {
          await failEntity(stack.deps, id, entity, result.error);
          break;
        }
        if (result.done) {
          await completeEntity(stack.deps, id, entity);
          break;
        }
      }
    }
    const statuses = new Map((await stack.store.entityStatuses(id)).map((s) => [s.entity, s]));
    assert.equal(statuses.get('account')?.syncState, 'Completed');
    assert.equal(await countRows(stack.db, 'account'), 30);
    assert.equal(statuses.get('contact')?.syncState, 'Failed');
    assert.match(
      statuses.get('contact')?.lastError ?? '',
      /^TABLE_LIMIT_EXCEEDED: table contact would have \d+ columns, more than PostgreSQL's 1600; columns not created: .*fullname.*remove the entity from the profile/,
    );
    assert.deepEqual(
      await stack.failureLog.listFailures(id),
      [],
      'no row of an entity that cannot fit is failure-logged',
    );
  });
});
