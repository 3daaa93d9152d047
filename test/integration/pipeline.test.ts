import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { AttributeValue } from '../../lib/change/change-event.js';
import { ingestWebhook } from '../../lib/pipeline/ingest.js';
import { CHANGES_QUEUE } from '../../lib/queue/envelope.js';
import { UNATTRIBUTED_PROFILE_ID } from '../../lib/storage/failure-log.js';
import { stopOwnAzurite } from '../support/azurite.js';
import { startPipelineStack } from '../support/pipeline-stack.js';
import { stopOwnServer } from '../support/postgres.js';
import { type StormEvent, stormWebhookBody } from '../support/storms.js';

// Run on its own, the file starts private servers; stopping them lets the process end.
after(async () => {
  await stopOwnAzurite();
  await stopOwnServer();
});

describe('the change pipeline on real parts (PostgreSQL, Azurite, AMQP stand-in)', { timeout: 180_000 }, () => {
  it('keeps an oversized change intact through an encrypted claim check and deletes the blob after', async () => {
    await using stack = await startPipelineStack();
    await stack.createProfile({ target: { kind: 'postgres', connectionSecret: 'target', tablePrefix: 'big' } });
    const marker = 'PLAINTEXT-MARKER-';
    const description = marker.repeat(Math.ceil(300_000 / marker.length));
    const id = '11111111-2222-4333-8444-555555555555';
    const body = stormWebhookBody(stack.organizationId, {
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
      stormWebhookBody(stack.organizationId, good(a, 1, { type: 'money', value: '10.50' })),
      {},
    );
    await stack.drain();
    // Same column, now a value PostgreSQL cannot store in it: a type clash, which no retry can fix.
    await ingestWebhook(
      stack.runtime.ingestDeps(),
      stormWebhookBody(stack.organizationId, good(a, 2, { type: 'string', value: 'not a number' })),
      {},
    );
    await ingestWebhook(
      stack.runtime.ingestDeps(),
      stormWebhookBody(stack.organizationId, good(b, 3, { type: 'money', value: '7.25' })),
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
        stormWebhookBody(stack.organizationId, {
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
});
