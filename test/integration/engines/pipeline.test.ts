/**
 * The change pipeline on every engine (test/support/engines.ts): webhooks through ingest, the AMQP stand-in
 * and the apply trigger's loop into the engine's target, with the same storms and the same outage, on
 * PostgreSQL always and on SQL Server with MSSQL_TEST_URL (`npm run test:mssql`). The control store, the
 * claim checks and the failure log stay on the embedded PostgreSQL and Azurite.
 */
import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import pLimit from 'p-limit';
import { ingestWebhook } from '../../../lib/pipeline/ingest.js';
import { stopOwnAzurite } from '../../support/azurite.js';
import { describeEachEngine, type EngineDatabase } from '../../support/engines.js';
import { type PipelineStack, startPipelineStack } from '../../support/pipeline-stack.js';
import { stopOwnServer } from '../../support/postgres.js';
import { type StormEvent, stormWebhookBody, webhookStorm } from '../../support/storms.js';

after(async () => {
  await stopOwnAzurite();
  await stopOwnServer();
});

/** The pipeline with a profile whose target is the engine's database (tables `<prefix>_account`). */
async function stackOn(db: EngineDatabase, tablePrefix: string) {
  const stack = await startPipelineStack({
    secrets: { engine: db.connectionString },
    // A development SQL Server's self-signed certificate (the outage relay reaches it as 127.0.0.1).
    settings: { AllowTrustServerCertificate: 'true' },
  });
  const profile = await stack.createProfile({
    target: { kind: db.kind, connectionSecret: 'engine', schema: db.schema, tablePrefix },
  });
  return { stack, profile };
}

function ingestAll(stack: PipelineStack, events: StormEvent[]) {
  const limit = pLimit(16);
  return Promise.all(
    events.map((e) =>
      limit(() => ingestWebhook(stack.runtime.ingestDeps(), stormWebhookBody(stack.organizationId, e), {})),
    ),
  );
}

/** The truth as the engine suite reads rows: id, name, revenue to the cent, versionnumber. */
function expectedRows(truth: Map<string, StormEvent>) {
  return [...truth.values()]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((e) => ({
      id: e.id,
      name: (e.attributes.name as { value: string }).value,
      revenue: Number((e.attributes.revenue as { value: string }).value).toFixed(2),
      versionnumber: String(e.version),
    }));
}

async function storedRows(db: EngineDatabase, table: string) {
  const rows = await db.select(table, ['Id', 'name', 'revenue', 'versionnumber']);
  // Sorted here: SQL Server orders uniqueidentifiers by its own byte order.
  return rows
    .map((r): Record<string, unknown> => ({ ...r, revenue: Number(r.revenue).toFixed(2) }))
    .sort((a, b) => String(a.id).localeCompare(String(b.id)));
}

/** Polls until `check` holds, failing after a bounded wait (the condition, not the wait, is what is asserted). */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await check()); ) {
    assert.ok(Date.now() < deadline, `${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describeEachEngine('pipeline', (engine) => {
  it('ends a shuffled storm of duplicates, deletes and late stale updates equal to the truth, row for row', async () => {
    await using db = await engine.createDatabase();
    const { stack, profile } = await stackOn(db, 'storm');
    await using _stack = stack;
    const { events, truth } = webhookStorm(300, 7);
    assert.ok(events.length > 1500, `storm has ${events.length} deliveries`);
    const half = Math.floor(events.length / 2);
    // Two waves with a drain between, so stale changes also meet rows written by an earlier batch.
    for (const wave of [events.slice(0, half), events.slice(half)]) {
      const results = await ingestAll(stack, wave);
      assert.ok(results.every((r) => r.status === 202));
      await stack.drain();
    }
    assert.deepEqual(await storedRows(db, 'storm_account'), expectedRows(truth));

    const account = (await stack.runtime.store.entityStatuses(profile.id)).find((s) => s.entity === 'account');
    assert.ok(account);
    assert.equal(account.failed, 0);
    assert.equal(account.applied + account.stale, events.length, JSON.stringify(account));
    assert.ok(account.stale > 0, 'duplicates and late changes are counted as stale');
    assert.deepEqual(await stack.runtime.failureLog.listFailures(profile.id), []);
  });

  it('loses nothing and logs no failure while the target is down, and applies everything once it is back', async () => {
    await using db = await engine.createInterruptibleDatabase();
    const { stack, profile } = await stackOn(db, 'outage');
    await using _stack = stack;
    const { events, truth } = webhookStorm(120, 11);
    const third = Math.floor(events.length / 3);
    await ingestAll(stack, events.slice(0, third));
    await stack.drain();

    await db.takeDown();
    await ingestAll(stack, events.slice(third, 2 * third));
    const draining = stack.drain({ timeoutMs: 180_000 });
    await until(
      'the profile’s status says the target cannot be reached',
      async () => (await stack.runtime.store.targetState(profile.id))?.state === 'unreachable',
    );
    assert.deepEqual(await stack.runtime.failureLog.listFailures(profile.id), [], 'nothing failure-logged while down');
    await db.bringBack();
    await draining;
    await ingestAll(stack, events.slice(2 * third));
    await stack.drain();

    assert.deepEqual(await storedRows(db, 'outage_account'), expectedRows(truth));
    assert.equal(await stack.runtime.store.targetState(profile.id), undefined, 'status clears');
    assert.deepEqual(await stack.runtime.failureLog.listFailures(profile.id), [], 'an outage is nobody’s failure');
  });
});
