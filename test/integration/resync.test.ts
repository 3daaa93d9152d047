import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { AppError } from '../../lib/errors.js';
import type { FailureEntry } from '../../lib/storage/failure-log.js';
import type { SyncDeps, SyncSink } from '../../lib/sync/ports.js';
import { resyncFailures } from '../../lib/sync/resync.js';
import { stopOwnAzurite } from '../support/azurite.js';
import { stopOwnServer } from '../support/postgres.js';
import { copyAll, startSyncStack, writeToOrg } from '../support/sync-stack.js';

// Run on its own, a file starts private servers; stopping them lets the process end.
after(async () => {
  await stopOwnServer();
  await stopOwnAzurite();
});

describe('resync of failed records', () => {
  it('re-reads each failed record, applies it as it is now and drops it from the failure log', async () => {
    await using stack = await startSyncStack({
      name: 'resync test',
      entities: ['account'],
      counts: { account: 120, contact: 10 },
    });
    const { org, db, sink, failureLog, profile } = stack;
    // One record the target keeps refusing, as a column too narrow would.
    let refused = '';
    const refusingSink: SyncSink = {
      writeMetadata: (m) => sink.writeMetadata(m),
      async applyBatch(changes, options) {
        const outcomes = await sink.applyBatch(
          changes.filter((c) => c.recordId !== refused),
          options,
        );
        return changes.map((c) =>
          c.recordId === refused
            ? { status: 'failed' as const, error: new AppError('TARGET_PERMANENT', 'value too long for name') }
            : outcomes.shift()!,
        );
      },
    };
    const deps: SyncDeps = { ...stack.deps, sinkFor: async () => refusingSink };
    await copyAll(deps, profile.id, 5);

    const { rows: ids } = await db.pool.query('SELECT id FROM public.account ORDER BY id LIMIT 4');
    const [stale, missing, gone, stillRefused] = ids.map((r) => String(r.id));
    // Failures as the apply path logged them: the target missed these changes.
    await writeToOrg(org, 'PATCH', `accounts(${stale})`, { name: 'Changed after the failure' });
    await db.pool.query('DELETE FROM public.account WHERE id = $1', [missing]);
    await writeToOrg(org, 'DELETE', `accounts(${gone})`);
    refused = stillRefused;
    const time = new Date(Date.now() - 60_000).toISOString();
    const entry = (
      recordId: string,
      changeType: FailureEntry['changeType'] = 'upsert',
      entity = 'account',
    ): FailureEntry => ({
      profileId: profile.id,
      entity,
      recordId,
      changeType,
      time,
      reason: 'the target database refused the write',
      code: 'TARGET_PERMANENT',
    });
    await failureLog.writeFailures(profile.id, [
      entry(stale),
      entry(stale),
      entry(missing),
      entry(gone),
      entry(stillRefused),
      entry('unknown', 'delete'),
      // A table the profile no longer exports is left alone.
      entry(stale, 'upsert', 'contact'),
    ]);

    const result = await resyncFailures(deps, profile.id);
    assert.deepEqual(result, {
      attempted: 6,
      succeeded: 2,
      gone: 1,
      stillFailing: 3,
      resolvedEntries: 4,
    });
    const left = await failureLog.listFailures(profile.id);
    assert.deepEqual(
      left.map((e) => `${e.entity}/${e.recordId}`).sort(),
      [`account/${stillRefused}`, 'account/unknown', `contact/${stale}`].sort(),
    );
    const { rows } = await db.pool.query('SELECT id, name FROM public.account WHERE id = ANY($1)', [
      [stale, missing, gone],
    ]);
    const names = new Map(rows.map((r) => [String(r.id), String(r.name)]));
    assert.equal(names.get(stale), 'Changed after the failure');
    assert.ok(names.has(missing), 'the missing row is back');
    assert.equal(names.has(gone), false, 'the record Dataverse no longer has is deleted in the target');
  });
});
