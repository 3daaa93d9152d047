import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DevHost, loadFunctionApp } from '../../dev/host/index.js';
import type { ChangeEvent } from '../../lib/change/change-event.js';
import type { ExportProfile } from '../../lib/profiles/schema.js';
import { closeRuntime } from '../../lib/runtime.js';
import type { FailureEntry } from '../../lib/storage/failure-log.js';
import { type PipelineStack, startPipelineStack } from '../support/pipeline-stack.js';

const functionsDir = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'functions');
const DAY = 86_400_000;

/**
 * The `cleanup` timer of the real app, fired by the dev host against Azurite and PostgreSQL, with items just
 * inside and just outside each boundary: failure-log retention (30 days), deleted profiles, tombstone age.
 */
describe('the cleanup timer, fired by the dev host', () => {
  let stack: PipelineStack;
  let host: DevHost;
  let profile: ExportProfile;

  before(async () => {
    stack = await startPipelineStack({ settings: { FailureLogRetentionDays: '30' } });
    Object.assign(process.env, stack.settings);
    profile = await stack.createProfile({
      target: { kind: 'postgres', connectionSecret: 'target', tablePrefix: 'ct' },
    });
    const env = { ...stack.settings, CleanupSchedule: '0 0 3 * * *', ReconcileSchedule: '0 0 4 * * *' };
    const files = readdirSync(functionsDir)
      .filter((f) => f.endsWith('.js'))
      .map((f) => join(functionsDir, f));
    host = new DevHost(await loadFunctionApp(files, { env }), {
      functionKey: 'k',
      env,
      serviceBus: false,
      timers: false,
    });
  });

  after(async () => {
    await host?.stop();
    await closeRuntime();
    await stack?.[Symbol.asyncDispose]();
  });

  const entry = (profileId: string, recordId: string, ageMs: number): FailureEntry => ({
    profileId,
    entity: 'account',
    recordId,
    changeType: 'upsert',
    time: new Date(Date.now() - ageMs).toISOString(),
    reason: 'value too long',
    code: 'TARGET_PERMANENT',
  });

  const change = (id: string, operation: 'upsert' | 'delete', version: number): ChangeEvent => ({
    organizationId: stack.organizationId,
    entity: 'account',
    recordId: id,
    operation,
    version: { rowVersion: String(version) },
    operationTime: new Date().toISOString(),
    correlationId: randomUUID(),
    source: 'webhook',
    attributes: operation === 'upsert' ? { name: { type: 'string', value: id } } : undefined,
  });

  it('removes expired failure logs, deleted profiles’ logs and old tombstones, and keeps the rest', async () => {
    const { failureLog } = stack.runtime;
    const gone = randomUUID();
    // Failure-log blobs are named by the hour of their entries, so a few hours of margin keep each side clear.
    await failureLog.writeFailures(profile.id, [entry(profile.id, 'expired', 30 * DAY + 3 * 3_600_000)]);
    await failureLog.writeFailures(profile.id, [entry(profile.id, 'kept', 30 * DAY - 3 * 3_600_000)]);
    await failureLog.writeFailures(gone, [entry(gone, 'orphan', 3_600_000)]);

    const sink = await stack.runtime.sinks.sinkFor(profile);
    const [oldId, newId] = [randomUUID(), randomUUID()];
    await sink.applyBatch([change(oldId, 'upsert', 1), change(newId, 'upsert', 1)]);
    await sink.applyBatch([change(oldId, 'delete', 2), change(newId, 'delete', 2)]);
    await stack.db.pool.query(
      `UPDATE ct_tombstone SET deletedon = now() - interval '31 days', sinkmodifiedon = now() - interval '31 days'
        WHERE recordid = $1`,
      [oldId],
    );
    await stack.db.pool.query(
      `UPDATE ct_tombstone SET deletedon = now() - interval '29 days', sinkmodifiedon = now() - interval '29 days'
        WHERE recordid = $1`,
      [newId],
    );

    await host.fireTimer('cleanup');

    assert.deepEqual(
      (await failureLog.listFailures(profile.id)).map((e) => e.recordId),
      ['kept'],
    );
    assert.deepEqual(await failureLog.listFailures(gone), []);
    const tombstones = await stack.db.pool.query('SELECT recordid::text AS id FROM ct_tombstone ORDER BY 1');
    assert.deepEqual(
      tombstones.rows.map((r) => r.id),
      [newId],
    );
  });
});
