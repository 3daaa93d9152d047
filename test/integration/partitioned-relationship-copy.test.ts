import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import type { SampleOrg } from '../../dev/sample-org/index.js';
import type { ChangeEvent } from '../../lib/change/change-event.js';
import type { DataverseClient } from '../../lib/dataverse/webapi/client.js';
import { ReadLanes } from '../../lib/dataverse/webapi/organization-limits.js';
import { parseWebhook } from '../../lib/dataverse/webhook/parse.js';
import { planInitialSync } from '../../lib/sync/initial-sync.js';
import type { DataverseSource, SyncSink } from '../../lib/sync/ports.js';
import { reconcileProfile } from '../../lib/sync/reconcile.js';
import { stopOwnAzurite } from '../support/azurite.js';
import { stopOwnServer } from '../support/postgres.js';
import {
  assertRereadsWithin,
  copyToEnd,
  dyingAfter,
  type SyncStack,
  startSyncStack,
  writeToOrg,
} from '../support/sync-stack.js';

const RELATIONSHIP = 'new_accountcontact';
/** 8,000 contacts give 2,000 generated account–contact pairs (one per fourth contact). */
const CONTACTS = 8000;
const PAIRS = CONTACTS / 4;
const PAGE_SIZE = 100;
/**
 * In Dataverse a relationship and its intersect entity often have different names (systemuserroles_association,
 * systemuserroles); the sample org's share one, so the intersect entity is named here by its entity set, which
 * the client resolves as well. A read addressed by the relationship's name would then show in `tablesRead`.
 */
const INTERSECT = 'new_accountcontactset';

after(async () => {
  await stopOwnServer();
  await stopOwnAzurite();
});

interface RelationshipStack extends SyncStack {
  /** Tables the copy and reconcile named in their range, bounds and tracked id reads. */
  tablesRead: Set<string>;
  /** Runs when a range read has its rows, before the copy gets them (to race the copy's conversion and apply). */
  afterRangeRead: { run?: (rows: ChangeEvent[]) => Promise<void> };
}

/** 2,000 pairs copied 100 a page, partitioned from 500 rows on; the 50 accounts stay on the single read. */
async function startRelationshipStack(): Promise<RelationshipStack> {
  const tablesRead = new Set<string>();
  const afterRangeRead: RelationshipStack['afterRangeRead'] = {};
  const stack = await startSyncStack({
    name: 'partitioned relationship copy test',
    entities: ['account'],
    relationships: [RELATIONSHIP],
    counts: { account: 50, contact: CONTACTS },
    pageSize: PAGE_SIZE,
    partitions: { minRows: 500, initialPartitions: 8, lanes: new ReadLanes(52, 4) },
    source: (client): DataverseSource => ({
      ...client,
      relationshipMetadata: async (name) => ({
        ...(await client.relationshipMetadata(name)),
        intersectEntityName: INTERSECT,
      }),
      idBounds: (table) => {
        tablesRead.add(table);
        return client.idBounds(table);
      },
      readIdRange: async (table, options) => {
        tablesRead.add(table);
        const page = await client.readIdRange(table, options);
        await afterRangeRead.run?.(page.rows);
        return page;
      },
      readTrackedIds: (table, options) => {
        tablesRead.add(table);
        return client.readTrackedIds(table, options);
      },
    }),
  });
  return Object.assign(stack, { tablesRead, afterRangeRead });
}

/** Keyset page reads of the intersect entity (the `$top=1` reads of the bounds left out). */
function rangeReads(stack: SyncStack) {
  return stack.org.rangeReads().log.filter((r) => r.entity === RELATIONSHIP && r.top === null);
}

/** The pairs of the source's intersect table, `accountid:contactid`, sorted. */
async function sourcePairs(client: DataverseClient): Promise<string[]> {
  const pairs: string[] = [];
  for await (const page of client.readPages(RELATIONSHIP, { pageSize: 5000 })) {
    for (const row of page.rows) {
      const a = row.attributes?.accountid;
      const c = row.attributes?.contactid;
      if (a?.type === 'guid' && c?.type === 'guid') pairs.push(`${a.value}:${c.value}`);
    }
  }
  return pairs.sort();
}

/** The pairs of the target's relationship table, as rows (duplicates kept), sorted. */
async function targetPairs(stack: SyncStack): Promise<string[]> {
  const { rows } = await stack.db.pool.query(`SELECT accountid, contactid FROM public.${RELATIONSHIP}`);
  return rows.map((r) => `${r.accountid}:${r.contactid}`).sort();
}

async function relationshipStatus(stack: SyncStack) {
  const status = (await stack.store.entityStatuses(stack.profile.id)).find((s) => s.entity === RELATIONSHIP);
  assert.ok(status, 'the relationship has a status');
  return status;
}

/** Reconcile runs until the relationship is reconciled: first the id read on to its delta link, then the delta. */
async function reconcileToEnd(stack: SyncStack): Promise<string[]> {
  const deps = { ...stack.deps, startInitialSync: async () => {}, trackedIdPagesPerRun: 5 };
  const outcomes: string[] = [];
  for (let run = 0; run < 20; run++) {
    const entry = (await reconcileProfile(deps, stack.profile.id)).entities.find((e) => e.entity === RELATIONSHIP);
    assert.ok(entry);
    outcomes.push(entry.outcome);
    if (entry.outcome === 'reconciled') return outcomes;
    assert.ok(entry.outcome === 'baselining' || entry.outcome === 'baselined', JSON.stringify(entry));
  }
  assert.fail(`reconcile did not reach the delta: ${outcomes.join(', ')}`);
}

/**
 * Webhooks as a lossy path delivers them: the sample org POSTs each RemoteExecutionContext here; only the
 * Disassociates are applied (before the org hears 200, so `org.drain()` means "applied"), every other
 * message is lost, so only reconcile's delta can bring it.
 */
async function deliverDisassociatesTo(org: SampleOrg, sink: SyncSink): Promise<{ close(): void }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const parsed = parseWebhook(Buffer.concat(chunks).toString('utf8'), {});
      const outcomes = await sink.applyBatch(parsed.changes.filter((c) => c.operation === 'disassociate'));
      res.writeHead(outcomes.every((o) => o.status !== 'failed') ? 200 : 500).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  org.setWebhook(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api/webhooks/dataverse`);
  return { close: () => server.close() };
}

const pairOf = (change: ChangeEvent) => {
  const { entity1, entity2 } = change.relationship ?? assert.fail('an Associate names its pair');
  return { account: entity1.id, contact: entity2.id, key: `${entity1.id}:${entity2.id}` };
};

describe('partitioned initial sync of a large N:N relationship', () => {
  it('reads the intersect table as id ranges in parallel and ends with every pair exactly once', async () => {
    await using stack = await startRelationshipStack();
    const { org, profile, store } = stack;
    org.faults.slowPages(20);
    await planInitialSync(stack.deps, profile.id);
    const planned = await store.copyPartitions(profile.id, RELATIONSHIP);
    assert.ok(planned.length >= 8, `${planned.length} partitions planned`);
    assert.match(
      (await store.getCheckpoint(profile.id, RELATIONSHIP))?.nextLink ?? '',
      /\$select=new_accountcontactid/,
    );
    assert.deepEqual(await store.copyPartitions(profile.id, 'account'), [], 'the 50 accounts keep the single read');

    const copied = await copyToEnd(stack.deps, profile.id, RELATIONSHIP, 3);

    assert.equal(copied, PAIRS);
    assert.ok(org.rangeReads().maxInFlight >= 3, `at most ${org.rangeReads().maxInFlight} range reads at once`);
    const reads = rangeReads(stack);
    assert.ok(reads.length >= PAIRS / PAGE_SIZE, `${reads.length} range reads`);
    assert.ok(reads.every((r) => /new_accountcontactid gt|new_accountcontactid le/.test(r.filter ?? '')));
    // Every intersect row was read once: no page of the copy was read twice.
    assert.equal(
      reads.reduce((n, r) => n + r.rows, 0),
      PAIRS,
    );
    assert.deepEqual([...stack.tablesRead], [INTERSECT], 'every read names the intersect entity');
    const source = await sourcePairs(stack.client);
    assert.equal(source.length, PAIRS);
    assert.deepEqual(await targetPairs(stack), source);
    const status = await relationshipStatus(stack);
    assert.deepEqual([status.syncState, status.rowsCopied, status.rowsEstimated], ['Completed', PAIRS, PAIRS]);
    const partitions = await store.copyPartitions(profile.id, RELATIONSHIP);
    assert.ok(partitions.every((p) => p.done));
    assert.equal(
      partitions.reduce((n, p) => n + p.rowsCopied, 0),
      PAIRS,
    );

    // Reconcile pages the intersect id read on to its delta link, which selects both sides of the pair.
    const outcomes = await reconcileToEnd(stack);
    assert.equal(outcomes.at(-1), 'reconciled');
    const checkpoint = await store.getCheckpoint(profile.id, RELATIONSHIP);
    assert.equal(checkpoint?.nextLink, null);
    assert.match(checkpoint?.deltaLink ?? '', /new_accountcontactset\?.*\$deltatoken=/);
    assert.match(checkpoint?.deltaLink ?? '', /\$select=[^&]*\baccountid\b/);
    assert.match(checkpoint?.deltaLink ?? '', /\$select=[^&]*\bcontactid\b/);
    assert.deepEqual([...stack.tablesRead], [INTERSECT]);
    assert.deepEqual(await targetPairs(stack), source);
  });

  it('after a crash between pages re-reads at most one page per partition, and the count stays exact', async () => {
    await using stack = await startRelationshipStack();
    const { profile, store } = stack;
    await planInitialSync(stack.deps, profile.id);
    // The worker dies after 8 pages are saved: from then on nothing it does reaches the store.
    const dying = dyingAfter(store, 8);
    await assert.rejects(copyToEnd({ ...stack.deps, store: dying }, profile.id, RELATIONSHIP, 100), /worker killed/);
    const partitions = (await store.copyPartitions(profile.id, RELATIONSHIP)).length;
    const readBefore = rangeReads(stack).length;
    assert.ok((await relationshipStatus(stack)).rowsCopied < PAIRS, 'the crash left the copy part-way');

    await copyToEnd(stack.deps, profile.id, RELATIONSHIP, 100);
    assertRereadsWithin(rangeReads(stack), readBefore, partitions);
    const source = await sourcePairs(stack.client);
    assert.deepEqual(await targetPairs(stack), source, 'every pair once');
    const status = await relationshipStatus(stack);
    assert.deepEqual([status.syncState, status.rowsCopied], ['Completed', PAIRS], 'a page read twice is counted once');
  });

  // Strict: the delta links answer with the id read's columns, so the intersect rows of the delta are read again by id.
  for (const strict of [false, true]) {
    it(`neither loses an Associate nor resurrects a Disassociate made during the copy, once reconcile has run${strict ? " (delta links keep the id read's $select)" : ''}`, async () => {
      await using stack = await startRelationshipStack();
      const { org, profile, sink, client } = stack;
      if (strict) org.faults.deltaKeepsTrackedSelect();
      const webhooks = await deliverDisassociatesTo(org, sink);
      // Generated intersect ids are in SQL order by index: the last ones lie in the last partition, read last.
      const intersectRows: ChangeEvent[] = [];
      for await (const page of client.readPages(RELATIONSHIP, { pageSize: 5000 })) intersectRows.push(...page.rows);
      const guid = (row: ChangeEvent, side: string) => {
        const value = row.attributes?.[side];
        return value?.type === 'guid' ? value.value : assert.fail(`${side} of ${row.recordId}`);
      };
      const pairOfRow = (row: ChangeEvent) => {
        const [account, contact] = [guid(row, 'accountid'), guid(row, 'contactid')];
        return { account, contact, key: `${account}:${contact}` };
      };
      const unread = pairOfRow(intersectRows[PAIRS - 2]);
      // Contact 1 has no generated pair (only every fourth contact has one).
      const contacts: string[] = [];
      for await (const page of client.readPages('contact', { pageSize: 5000, select: ['fullname'] })) {
        contacts.push(...page.rows.map((r) => r.recordId));
        break;
      }
      const associated = { account: guid(intersectRows[0], 'accountid'), contact: contacts[1] };
      // The first page's pairs, once they are in the target.
      let applied: ReturnType<typeof pairOf> | undefined;
      let firstApplied: () => void = () => {};
      const firstPageIn = new Promise<void>((resolve) => {
        firstApplied = resolve;
      });
      const trackingSink: SyncSink = {
        writeMetadata: (m) => sink.writeMetadata(m),
        async applyBatch(changes: ChangeEvent[], options) {
          const outcomes = await sink.applyBatch(changes, options);
          if (!applied && changes.length) {
            applied = pairOf(changes[0]);
            firstApplied();
          }
          return outcomes;
        },
      };
      let reads = 0;
      let readNotApplied: ReturnType<typeof pairOf> | undefined;
      stack.afterRangeRead.run = async (rows) => {
        if (rows.length === 0 || ++reads !== 3) return;
        await firstPageIn;
        // A pair already applied, a pair of the page just read (not yet applied), a pair not read yet: each
        // Disassociate's webhook is applied before this page lands. A new pair's Associate webhook is lost.
        readNotApplied = pairOfRow(rows[0]);
        for (const pair of [applied as ReturnType<typeof pairOf>, readNotApplied, unread]) {
          await writeToOrg(org, 'DELETE', `accounts(${pair.account})/new_accountcontact(${pair.contact})/$ref`);
        }
        await writeToOrg(org, 'POST', `accounts(${associated.account})/new_accountcontact/$ref`, {
          '@odata.id': `${org.url}/api/data/v9.2/contacts(${associated.contact})`,
        });
        await org.drain();
      };
      try {
        await planInitialSync(stack.deps, profile.id);
        await copyToEnd({ ...stack.deps, sinkFor: async () => trackingSink }, profile.id, RELATIONSHIP, 3);
        assert.ok(applied && readNotApplied);
        assert.equal(org.webhookDeliveries().length, 4);
        await reconcileToEnd(stack);
      } finally {
        webhooks.close();
      }

      const source = await sourcePairs(client);
      assert.equal(source.length, PAIRS - 3 + 1);
      const removed = [applied?.key, readNotApplied?.key, unread.key];
      assert.ok(removed.every((pair) => pair && !source.includes(pair)));
      assert.ok(source.includes(`${associated.account}:${associated.contact}`));
      const target = await targetPairs(stack);
      assert.deepEqual(target, source, 'the new pair arrived once, the removed pairs stayed removed');
      // The copy's Associates of the removed pairs are not brought back by a later reconcile either.
      await reconcileProfile({ ...stack.deps, startInitialSync: async () => {} }, profile.id);
      assert.deepEqual(await targetPairs(stack), source);
    });
  }
});
