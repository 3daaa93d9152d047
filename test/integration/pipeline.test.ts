import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pLimit from 'p-limit';
import { buildRemoteExecutionContext, serializeRemoteExecutionContext } from '../../dev/dataverse-payloads.js';
import { startEmbeddedPostgres } from '../../dev/embedded/postgres.js';
import type { AttributeValue } from '../../lib/change/change-event.js';
import { ingestWebhook } from '../../lib/pipeline/ingest.js';
import { connectClient } from '../../lib/postgres-pool.js';
import { CHANGES_QUEUE } from '../../lib/queue/envelope.js';
import { UNATTRIBUTED_PROFILE_ID } from '../../lib/storage/failure-log.js';
import { startPipelineStack } from '../support/pipeline-stack.js';

/** A small deterministic PRNG, so a failing storm can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface StormEvent {
  id: string;
  messageName: 'Create' | 'Update' | 'Delete';
  version: number;
  attributes: Record<string, AttributeValue>;
}

/** Full-image events for `records` ids: a create, updates, and for some a delete (the pre-image's version). */
function storm(records: number, seed: number): { events: StormEvent[]; truth: Map<string, StormEvent> } {
  const rnd = random(seed);
  let version = 10_000;
  const events: StormEvent[] = [];
  const truth = new Map<string, StormEvent>();
  for (let r = 0; r < records; r++) {
    const id = `00000000-0000-4000-8000-${r.toString(16).padStart(12, '0')}`;
    const updates = 1 + Math.floor(rnd() * 8);
    let last: StormEvent | undefined;
    for (let u = 0; u < updates; u++) {
      version += 1 + Math.floor(rnd() * 3);
      last = {
        id,
        messageName: u === 0 ? 'Create' : 'Update',
        version,
        attributes: {
          name: { type: 'string', value: `account ${r} v${version}` },
          revenue: { type: 'money', value: `${r}.${String(version % 100).padStart(2, '0')}` },
          numberofemployees: { type: 'int', value: version % 1000 },
        },
      };
      events.push(last);
    }
    if (rnd() < 0.15 && last) {
      const deletion: StormEvent = { id, messageName: 'Delete', version: last.version, attributes: {} };
      events.push(deletion);
      truth.delete(id);
    } else if (last) {
      truth.set(id, last);
    }
  }
  // Duplicates (Dataverse and Service Bus both redeliver) and a full shuffle (nothing arrives in order).
  const duplicated = [...events, ...events.filter(() => rnd() < 0.2)];
  for (let i = duplicated.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [duplicated[i], duplicated[j]] = [duplicated[j], duplicated[i]];
  }
  return { events: duplicated, truth };
}

function webhookBody(organizationId: string, event: StormEvent): string {
  return serializeRemoteExecutionContext(
    buildRemoteExecutionContext({
      organizationId,
      messageName: event.messageName,
      entity: 'account',
      id: event.id,
      attributes: event.attributes,
      versionNumber: String(event.version),
    }),
  );
}

describe('the change pipeline on real parts (PostgreSQL, Azurite, AMQP stand-in)', { timeout: 180_000 }, () => {
  it('ends a shuffled storm of duplicates, deletes and late stale updates equal to the truth, row for row', async () => {
    await using stack = await startPipelineStack();
    const profile = await stack.createProfile({
      target: { kind: 'postgres', connectionSecret: 'target', tablePrefix: 'storm' },
    });
    const { events, truth } = storm(300, 7);
    assert.ok(events.length > 1500, `storm has ${events.length} deliveries`);
    const limit = pLimit(16);
    const half = Math.floor(events.length / 2);
    // Two waves with a drain between, so stale changes also meet rows written by an earlier batch.
    for (const wave of [events.slice(0, half), events.slice(half)]) {
      const results = await Promise.all(
        wave.map((e) =>
          limit(() => ingestWebhook(stack.runtime.ingestDeps(), webhookBody(stack.organizationId, e), {})),
        ),
      );
      assert.ok(results.every((r) => r.status === 202));
      await stack.drain();
    }

    const rows = await stack.db.pool.query<{ id: string; name: string; revenue: string; versionnumber: string }>(
      'SELECT id::text, name, revenue::text, versionnumber::text FROM storm_account ORDER BY id',
    );
    const expected = [...truth.values()]
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((e) => ({
        id: e.id,
        name: (e.attributes.name as { value: string }).value,
        revenue: (e.attributes.revenue as { value: string }).value,
        versionnumber: String(e.version),
      }));
    assert.equal(rows.rows.length, expected.length);
    assert.deepEqual(
      rows.rows.map((r) => ({ ...r, revenue: Number(r.revenue).toFixed(2) })),
      expected.map((r) => ({ ...r, revenue: Number(r.revenue).toFixed(2) })),
    );

    const status = await stack.runtime.store.entityStatuses(profile.id);
    const account = status.find((s) => s.entity === 'account');
    assert.ok(account);
    assert.equal(account.failed, 0);
    assert.equal(account.applied + account.stale, events.length, JSON.stringify(account));
    assert.ok(account.stale > 0, 'duplicates and late changes are counted as stale');
    assert.deepEqual(await stack.runtime.failureLog.listFailures(profile.id), []);
  });

  it('keeps an oversized change intact through an encrypted claim check and deletes the blob after', async () => {
    await using stack = await startPipelineStack();
    await stack.createProfile({ target: { kind: 'postgres', connectionSecret: 'target', tablePrefix: 'big' } });
    const marker = 'PLAINTEXT-MARKER-';
    const description = marker.repeat(Math.ceil(300_000 / marker.length));
    const id = '11111111-2222-4333-8444-555555555555';
    const body = webhookBody(stack.organizationId, {
      id,
      messageName: 'Create',
      version: 5,
      attributes: {
        name: { type: 'string', value: 'Big one' },
        description: { type: 'string', value: description },
      },
    });
    const result = await ingestWebhook(stack.runtime.ingestDeps(), body, {});
    assert.equal(result.status, 202);

    const stored: string[] = [];
    for await (const page of stack.runtime.claimChecks.listClaimChecks(new Date(Date.now() + 3_600_000))) {
      stored.push(...page.map((c) => c.blobName));
    }
    assert.equal(stored.length, 1, 'the change went to a claim check');
    const raw = await stack.runtime.blobs.download(stack.runtime.claimChecks.container, stored[0]);
    assert.ok(raw);
    assert.ok(!raw.data.toString('latin1').includes(marker), 'no plaintext at rest');
    assert.ok(!raw.data.toString('latin1').includes('Big one'));

    await stack.drain();
    const row = await stack.db.pool.query('SELECT name, description FROM big_account WHERE id = $1', [id]);
    assert.equal(row.rows[0].name, 'Big one');
    assert.equal(row.rows[0].description, description);
    const left: string[] = [];
    for await (const page of stack.runtime.claimChecks.listClaimChecks(new Date(Date.now() + 3_600_000))) {
      left.push(...page.map((c) => c.blobName));
    }
    assert.deepEqual(left, [], 'the blob is deleted once applied');
  });

  it('writes a poison change to the failure log once and completes it instead of looping', async () => {
    await using stack = await startPipelineStack();
    const profile = await stack.createProfile({
      target: { kind: 'postgres', connectionSecret: 'target', tablePrefix: 'poison' },
    });
    const good = (id: string, version: number, revenue: AttributeValue): StormEvent => ({
      id,
      messageName: 'Update',
      version,
      attributes: { name: { type: 'string', value: `r${version}` }, revenue },
    });
    const a = 'aaaaaaaa-0000-4000-8000-000000000001';
    const b = 'bbbbbbbb-0000-4000-8000-000000000002';
    await ingestWebhook(
      stack.runtime.ingestDeps(),
      webhookBody(stack.organizationId, good(a, 1, { type: 'money', value: '10.50' })),
      {},
    );
    await stack.drain();
    // Same column, now a value PostgreSQL cannot store in it: a type clash, which no retry can fix.
    await ingestWebhook(
      stack.runtime.ingestDeps(),
      webhookBody(stack.organizationId, good(a, 2, { type: 'string', value: 'not a number' })),
      {},
    );
    await ingestWebhook(
      stack.runtime.ingestDeps(),
      webhookBody(stack.organizationId, good(b, 3, { type: 'money', value: '7.25' })),
      {},
    );
    // And a message that is not an envelope at all.
    const sender = stack.runtime.serviceBus.createSender(CHANGES_QUEUE);
    await sender.sendMessages({ body: { profileIds: [profile.id], entity: 'account', recordId: 'garbled' } });
    await sender.close();

    const drained = await stack.drain({ timeoutMs: 30_000 });
    assert.equal(drained.abandoned, 0, 'no batch loops back');
    const failures = await stack.runtime.failureLog.listFailures(profile.id);
    assert.deepEqual(failures.map((f) => f.recordId).sort(), [a, 'garbled'].sort());
    const clash = failures.find((f) => f.recordId === a);
    assert.equal(clash?.code, 'TARGET_PERMANENT');
    assert.equal(clash?.entity, 'account');
    const rows = await stack.db.pool.query('SELECT id::text, name FROM poison_account ORDER BY id');
    assert.deepEqual(rows.rows, [
      { id: a, name: 'r1' },
      { id: b, name: 'r3' },
    ]);
    const status = await stack.runtime.store.entityStatuses(profile.id);
    assert.ok((status.find((s) => s.entity === 'account')?.failed ?? 0) >= 1);
    assert.equal(stack.standIn.stats(CHANGES_QUEUE).deadLetter, 0);
  });

  it('applies the good changes of a batch on first delivery when garbled messages without profileIds share it', async () => {
    await using stack = await startPipelineStack();
    const profile = await stack.createProfile({
      target: { kind: 'postgres', connectionSecret: 'target', tablePrefix: 'mixed' },
    });
    const ids = Array.from({ length: 20 }, (_, i) => `cccccccc-0000-4000-8000-${String(i + 1).padStart(12, '0')}`);
    const ingest = (id: string, n: number) =>
      ingestWebhook(
        stack.runtime.ingestDeps(),
        webhookBody(stack.organizationId, {
          id,
          messageName: 'Create',
          version: n,
          attributes: { name: { type: 'string', value: `good ${n}` } },
        }),
        {},
      );
    for (const [n, id] of ids.slice(0, 10).entries()) await ingest(id, n + 1);
    // Another producer's messages, in the middle of the good ones: no profileIds, no envelope.
    const sender = stack.runtime.serviceBus.createSender(CHANGES_QUEUE);
    await sender.sendMessages([{ body: { hello: 'not a change' } }, { body: 'plain text' }]);
    await sender.close();
    for (const [n, id] of ids.slice(10).entries()) await ingest(id, n + 11);

    const drained = await stack.drain({ timeoutMs: 30_000 });
    assert.equal(drained.abandoned, 0, 'no batch is abandoned, so nothing is redelivered');
    const rows = await stack.db.pool.query('SELECT id::text FROM mixed_account ORDER BY id');
    assert.deepEqual(
      rows.rows.map((r) => r.id),
      ids,
    );
    assert.deepEqual(await stack.runtime.failureLog.listFailures(profile.id), []);
    const unattributed = await stack.runtime.failureLog.listFailures(UNATTRIBUTED_PROFILE_ID);
    assert.equal(unattributed.length, 2, 'each garbled message is logged once');
    for (const entry of unattributed) {
      assert.equal(entry.code, 'VALIDATION_FAILED');
      assert.equal(entry.changeType, 'unknown');
      assert.match(entry.reason, /unreadable queue message/);
    }
    assert.equal(stack.standIn.stats(CHANGES_QUEUE).deadLetter, 0);
  });

  it('loses nothing and logs no failure while the target database is down for ~10 s', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dvx-outage-'));
    let target = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), fresh: true });
    const port = target.port;
    try {
      await using stack = await startPipelineStack({ secrets: { outage: target.url } });
      const profile = await stack.createProfile({
        target: { kind: 'postgres', connectionSecret: 'outage', tablePrefix: 'outage' },
      });
      const { events, truth } = storm(120, 11);
      const limit = pLimit(16);
      const ingestAll = (list: StormEvent[]) =>
        Promise.all(
          list.map((e) =>
            limit(() => ingestWebhook(stack.runtime.ingestDeps(), webhookBody(stack.organizationId, e), {})),
          ),
        );
      const third = Math.floor(events.length / 3);
      await ingestAll(events.slice(0, third));
      await stack.drain();

      await target.stop();
      const down = Date.now();
      await ingestAll(events.slice(third, 2 * third));
      const draining = stack.drain({ timeoutMs: 90_000 });
      await new Promise((r) => setTimeout(r, Math.max(0, 10_000 - (Date.now() - down))));
      target = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), port });
      await draining;
      await ingestAll(events.slice(2 * third));
      await stack.drain();

      const client = await connectClient({ connectionString: target.url });
      try {
        const rows = await client.query('SELECT id::text, versionnumber::text FROM outage_account ORDER BY id');
        assert.deepEqual(
          rows.rows,
          [...truth.values()]
            .sort((a, b) => a.id.localeCompare(b.id))
            .map((e) => ({ id: e.id, versionnumber: String(e.version) })),
        );
      } finally {
        await client.end();
      }
      assert.deepEqual(await stack.runtime.failureLog.listFailures(profile.id), [], 'an outage is nobody’s failure');
    } finally {
      await target.stop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
