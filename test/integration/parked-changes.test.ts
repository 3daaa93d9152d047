import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ServiceBusReceiver } from '@azure/service-bus';
import pg from 'pg';
import { buildRemoteExecutionContext, serializeRemoteExecutionContext } from '../../dev/dataverse-payloads.js';
import { startEmbeddedPostgres } from '../../dev/embedded/postgres.js';
import type { AttributeValue } from '../../lib/change/change-event.js';
import { applyMessages } from '../../lib/pipeline/apply-queued-changes.js';
import { ingestWebhook } from '../../lib/pipeline/ingest.js';
import { CHANGES_QUEUE, type ChangeMessage } from '../../lib/queue/envelope.js';
import { type PipelineStack, startPipelineStack } from '../support/pipeline-stack.js';

/** Every field value carries this, so a value at rest is found by searching for it. */
const MARK = 'PARKED-PLAINTEXT';

interface Delivery {
  id: string;
  messageName: 'Create' | 'Update';
  version: number;
  attributes: Record<string, AttributeValue>;
}

function record(r: number): string {
  return `00000000-0000-4000-9000-${r.toString(16).padStart(12, '0')}`;
}

function delivery(r: number, version: number, messageName: Delivery['messageName'] = 'Update'): Delivery {
  return {
    id: record(r),
    messageName,
    version,
    attributes: {
      name: { type: 'string', value: `${MARK} name ${r} v${version}` },
      description: { type: 'string', value: `${MARK} note ${r} v${version}` },
    },
  };
}

function webhookBody(organizationId: string, d: Delivery): string {
  return serializeRemoteExecutionContext(
    buildRemoteExecutionContext({
      organizationId,
      messageName: d.messageName,
      entity: 'account',
      id: d.id,
      attributes: d.attributes,
      versionNumber: String(d.version),
    }),
  );
}

async function ingestAll(stack: PipelineStack, deliveries: Delivery[]): Promise<void> {
  for (const d of deliveries) {
    const result = await ingestWebhook(stack.runtime.ingestDeps(), webhookBody(stack.organizationId, d), {});
    assert.equal(result.status, 202);
  }
}

async function claimCheckNames(stack: PipelineStack): Promise<string[]> {
  const names: string[] = [];
  for await (const page of stack.runtime.claimChecks.listClaimChecks(new Date(Date.now() + 3_600_000))) {
    names.push(...page.map((c) => c.blobName));
  }
  return names.sort();
}

/** Batches small enough that parking one (a blob per waiting change) stays well inside the queue's lock. */
const BATCH = 25;

/** One round of the apply trigger: receive a batch, apply it, complete it. Returns the changes it deferred. */
async function applyRound(stack: PipelineStack, receiver: ServiceBusReceiver): Promise<number> {
  const messages = await receiver.receiveMessages(BATCH, { maxWaitTimeInMs: 200 });
  if (!messages.length) return 0;
  const summary = await applyMessages(
    stack.runtime.applyDeps(),
    messages.map((m) => m.body),
  );
  await Promise.all(messages.map((m) => receiver.completeMessage(m)));
  return summary.deferred;
}

/**
 * Applies rounds until `deferrals` more deferrals were seen and the queue holds exactly `count` unlocked
 * messages. Each delivery waits as one message per profile, so the count is reached only once every delivery
 * from ingest went through apply at least once.
 */
async function untilAllWaiting(
  stack: PipelineStack,
  receiver: ServiceBusReceiver,
  count: number,
  deferrals = count,
): Promise<void> {
  const deadline = Date.now() + 120_000;
  let seen = 0;
  while (Date.now() < deadline) {
    seen += await applyRound(stack, receiver);
    const s = stack.standIn.stats(CHANGES_QUEUE);
    if (seen >= deferrals && s.locked === 0 && s.active + s.scheduled === count) return;
  }
  throw new Error(`changes did not settle into waiting: ${JSON.stringify(stack.standIn.stats(CHANGES_QUEUE))}`);
}

/** Every message on the queue, scheduled ones included (a fresh receiver peeks from the start). */
async function peekAll(stack: PipelineStack): Promise<ChangeMessage[]> {
  const peeker = stack.runtime.serviceBus.createReceiver(CHANGES_QUEUE);
  try {
    return (await peeker.peekMessages(10_000)).map((m) => m.body as ChangeMessage);
  } finally {
    await peeker.close();
  }
}

describe('changes that wait for their target rest encrypted in Blob Storage', { timeout: 240_000 }, () => {
  it('parks waiting changes as ciphertext once, schedules only references, and leaves no blob after', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dvx-park-'));
    let target = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), fresh: true });
    const port = target.port;
    let receiver: ServiceBusReceiver | undefined;
    try {
      await using stack = await startPipelineStack({ secrets: { parked: target.url } });
      // Two profiles on one target: each waits for it, and a claim check routed to both is needed by both.
      const profiles = [
        await stack.createProfile({ target: { kind: 'postgres', connectionSecret: 'parked', tablePrefix: 'parka' } }),
        await stack.createProfile({ target: { kind: 'postgres', connectionSecret: 'parked', tablePrefix: 'parkb' } }),
      ];
      const records = 24;
      const before = Array.from({ length: records }, (_, r) => delivery(r, 100, 'Create'));
      await ingestAll(stack, before);
      await stack.drain();

      await target.stop();
      const during = Array.from({ length: records }, (_, r) => [delivery(r, 200 + r), delivery(r, 300 + r)]).flat();
      const big = delivery(0, 1_000);
      big.attributes.description = { type: 'string', value: `${MARK} `.repeat(20_000) };
      during.push(big);
      await ingestAll(stack, during);
      const ingested = Date.now();
      const ingestedBlobs = await claimCheckNames(stack);
      assert.equal(ingestedBlobs.length, 1, 'the oversized change travels as a claim check from ingest');

      receiver = stack.runtime.serviceBus.createReceiver(CHANGES_QUEUE);
      // Each delivery reaches two profiles, so it waits as two messages.
      const waitingCount = 2 * during.length;
      await untilAllWaiting(stack, receiver, waitingCount);

      const waiting = await peekAll(stack);
      assert.equal(waiting.length, waitingCount);
      for (const message of waiting) {
        assert.equal(message.body.kind, 'claimCheck', 'a waiting change is a reference');
        assert.ok(!JSON.stringify(message).includes(MARK), 'no field value in a scheduled message');
      }
      const referenced = waiting.map((m) => (m.body.kind === 'claimCheck' ? m.body.blobName : '')).sort();
      assert.equal(new Set(referenced).size, waitingCount, 'each waiting message owns its blob');
      const parked = await claimCheckNames(stack);
      assert.deepEqual(parked, referenced, 'every blob belongs to a waiting message');
      assert.ok(parked.includes(ingestedBlobs[0]), 'the claim check from ingest keeps its blob');
      for (const name of parked) {
        const raw = await stack.runtime.blobs.download(stack.runtime.claimChecks.container, name);
        assert.ok(raw);
        assert.equal(raw.data.subarray(0, 4).toString('latin1'), 'DVXE', 'an encrypted envelope');
        assert.ok(!raw.data.toString('latin1').includes(MARK), `blob ${name} is ciphertext`);
      }
      const opened = JSON.parse(await stack.runtime.claimChecks.getClaimCheck(parked[0]));
      assert.match(JSON.stringify(opened.attributes), new RegExp(MARK), 'the blob holds the change itself');

      // More retries of the same changes park nothing new.
      await untilAllWaiting(stack, receiver, waitingCount);
      assert.deepEqual(await claimCheckNames(stack), parked, 'parked once, however many retries follow');
      for (const message of await peekAll(stack)) assert.ok(!JSON.stringify(message).includes(MARK));

      target = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), port });
      const waitedMs = Date.now() - ingested;
      await receiver.close();
      receiver = undefined;
      await stack.drain({ timeoutMs: 90_000, batchSize: BATCH });

      const client = new pg.Client({ connectionString: target.url });
      await client.connect();
      try {
        for (const prefix of ['parka', 'parkb']) {
          const rows = await client.query(`SELECT id::text, versionnumber::text FROM ${prefix}_account ORDER BY id`);
          assert.deepEqual(
            rows.rows,
            Array.from({ length: records }, (_, r) => ({
              id: record(r),
              versionnumber: String(r === 0 ? 1_000 : 300 + r),
            })),
          );
        }
        const bigRow = await client.query('SELECT description FROM parka_account WHERE id = $1', [big.id]);
        assert.equal(bigRow.rows[0].description, (big.attributes.description as { value: string }).value);
      } finally {
        await client.end();
      }
      assert.deepEqual(await claimCheckNames(stack), [], 'no blob is left once every change applied');
      for (const profile of profiles) {
        assert.deepEqual(await stack.runtime.failureLog.listFailures(profile.id), [], 'an outage is nobody’s failure');
        const account = (await stack.runtime.store.entityStatuses(profile.id)).find((s) => s.entity === 'account');
        assert.ok(account);
        assert.equal(account.received, before.length + during.length, 'each change is received once');
        assert.equal(account.applied + account.stale, before.length + during.length);
        assert.equal(account.failed, 0);
        assert.ok((account.lastLagMs ?? 0) >= waitedMs, 'lag runs from the operation, through the wait');
      }
    } finally {
      await receiver?.close().catch(() => undefined);
      await target.stop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
