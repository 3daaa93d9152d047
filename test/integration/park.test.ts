import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import type { ChangeEvent } from '../../lib/change/change-event.js';
import { silentLogger } from '../../lib/log.js';
import { DEFAULT_CLAIM_CHECK_GRACE_MINUTES, runCleanup } from '../../lib/maintenance/cleanup.js';
import { PARKED_RENEWAL_MS, parkWaiting, type WaitingChange } from '../../lib/pipeline/park.js';
import type { ClaimCheckStore as ClaimCheckPort } from '../../lib/pipeline/ports.js';
import { type ChangeMessage, claimCheckMessage, inlineMessage } from '../../lib/queue/envelope.js';
import { LocalSecretProvider } from '../../lib/secrets/local-provider.js';
import { ClaimCheckStore } from '../../lib/storage/claim-check.js';
import { FailureLog } from '../../lib/storage/failure-log.js';
import { PayloadCipher } from '../../lib/storage/payload-crypto.js';
import { createTestStorage, stopOwnAzurite, type TestStorage } from '../support/azurite.js';

after(stopOwnAzurite);

const secrets = new LocalSecretProvider({
  'key-1': randomBytes(32).toString('base64'),
  'key-2': randomBytes(32).toString('base64'),
});
const cipher = new PayloadCipher({ secrets, keySecretName: 'key-1' });
const NOW = new Date('2026-11-20T12:30:00.000Z');
const RENEW_BEFORE = new Date(NOW.getTime() - PARKED_RENEWAL_MS);
const SECRET = 'Contoso confidential';

function change(r: number, entity = 'account'): ChangeEvent {
  return {
    organizationId: '6f2d1c8e-0000-4000-8000-000000000001',
    entity,
    recordId: `00000000-0000-4000-8000-${String(r).padStart(12, '0')}`,
    operation: 'upsert',
    version: { rowVersion: String(1000 + r) },
    operationTime: '2026-11-20T12:00:00.000Z',
    attributes: { name: { type: 'string', value: `${SECRET} ${r}` } },
    correlationId: `corr-${r}`,
    source: 'webhook',
  };
}

function store(storage: TestStorage, options: { at?: Date; cipher?: PayloadCipher } = {}): ClaimCheckStore {
  return new ClaimCheckStore({
    blobs: storage.blobs,
    cipher: options.cipher ?? cipher,
    container: storage.container('claimchecks'),
    now: () => options.at ?? NOW,
  });
}

/** The pipeline's view of a claim-check store, as the runtime builds it. */
function port(claimChecks: ClaimCheckStore): ClaimCheckPort {
  return {
    put: (json, meta) => claimChecks.putClaimCheck(json, meta),
    get: (blobName) => claimChecks.getClaimCheck(blobName),
    delete: async (blobName) => {
      await claimChecks.deleteClaimCheck(blobName);
    },
  };
}

async function names(storage: TestStorage): Promise<string[]> {
  const out: string[] = [];
  for await (const blob of storage.blobs.list(storage.container('claimchecks'))) out.push(blob.name);
  return out.sort();
}

function blobOf(message: ChangeMessage): string {
  assert.equal(message.body.kind, 'claimCheck');
  return message.body.kind === 'claimCheck' ? message.body.blobName : '';
}

const at = new Date(NOW.getTime() + 10_000);

describe('parking changes that must wait (Azurite)', () => {
  it('parks inline changes as encrypted claim checks and keeps the rest of each message', async () => {
    await using storage = await createTestStorage();
    const claimChecks = store(storage);
    const waiting: WaitingChange[] = [0, 1, 2].map((r) => ({ message: inlineMessage(change(r), ['p1'], r), at }));

    const result = await parkWaiting(port(claimChecks), waiting, new Map(), { renewBefore: RENEW_BEFORE });

    assert.equal(result.parked.length, 3);
    assert.deepEqual(await names(storage), [...result.parked].sort());
    for (const [i, entry] of result.waiting.entries()) {
      const { body, ...header } = entry.message;
      const { body: _inline, ...original } = waiting[i].message;
      assert.deepEqual(header, original, 'only the body changes');
      assert.equal(entry.at, at);
      assert.ok(!JSON.stringify(entry.message).includes(SECRET), 'no field value in the message');
      const raw = await storage.blobs.download(claimChecks.container, blobOf(entry.message));
      assert.ok(raw && !raw.data.toString('latin1').includes(SECRET), 'the blob is ciphertext');
      assert.deepEqual(JSON.parse(await claimChecks.getClaimCheck(blobOf(entry.message))), change(i));
    }
  });

  it('keeps the blob of a claim check, and gives a second message waiting on the same blob its own copy', async () => {
    await using storage = await createTestStorage();
    const claimChecks = store(storage);
    const c = change(7);
    const ref = await claimChecks.putClaimCheck(JSON.stringify(c), c);
    const shared = claimCheckMessage(c, ['p1', 'p2'], ref.blobName, ref.bytes);
    const waiting: WaitingChange[] = [
      { message: { ...shared, profileIds: ['p1'] }, at },
      { message: { ...shared, profileIds: ['p2'] }, at },
    ];

    const result = await parkWaiting(port(claimChecks), waiting, new Map([[ref.blobName, c]]), {
      renewBefore: RENEW_BEFORE,
    });

    assert.equal(blobOf(result.waiting[0].message), ref.blobName, 'the first keeps the blob');
    const copy = blobOf(result.waiting[1].message);
    assert.notEqual(copy, ref.blobName);
    assert.deepEqual(result.parked, [copy]);
    assert.deepEqual(JSON.parse(await claimChecks.getClaimCheck(copy)), c);
    assert.deepEqual(await names(storage), [ref.blobName, copy].sort());
  });

  it('parks afresh a change that has waited longer than the renewal age', async () => {
    await using storage = await createTestStorage();
    const c = change(3);
    const old = await store(storage, { at: new Date(RENEW_BEFORE.getTime() - 3_600_000) }).putClaimCheck(
      JSON.stringify(c),
      c,
    );
    const young = await store(storage, { at: NOW }).putClaimCheck(JSON.stringify(change(4)), c);
    const waiting: WaitingChange[] = [
      { message: claimCheckMessage(c, ['p1'], old.blobName, old.bytes), at },
      { message: claimCheckMessage(change(4), ['p1'], young.blobName, young.bytes), at },
    ];

    const result = await parkWaiting(
      port(store(storage)),
      waiting,
      new Map([
        [old.blobName, c],
        [young.blobName, change(4)],
      ]),
      { renewBefore: RENEW_BEFORE },
    );

    const renewed = blobOf(result.waiting[0].message);
    assert.notEqual(renewed, old.blobName);
    assert.equal(blobOf(result.waiting[1].message), young.blobName, 'a young blob is kept');
    assert.deepEqual(result.parked, [renewed]);
    assert.deepEqual(JSON.parse(await store(storage).getClaimCheck(renewed)), c);
  });

  it('opens a parked change after the payload key is rotated', async () => {
    await using storage = await createTestStorage();
    const [entry] = (
      await parkWaiting(port(store(storage)), [{ message: inlineMessage(change(5), ['p1']), at }], new Map(), {
        renewBefore: RENEW_BEFORE,
      })
    ).waiting;
    const rotated = new PayloadCipher({ secrets, keySecretName: 'key-2', previousKeySecretNames: ['key-1'] });
    const after = store(storage, { cipher: rotated });
    assert.deepEqual(JSON.parse(await after.getClaimCheck(blobOf(entry.message))), change(5));
  });

  it('removes what it parked and throws when one upload fails', async () => {
    await using storage = await createTestStorage();
    const real = port(store(storage));
    // Blob Storage refusing one of the uploads (an outage beginning mid-batch).
    const failing: ClaimCheckPort = {
      ...real,
      put: async (json, meta) => {
        if (meta.entity === 'contact') throw new Error('storage went away');
        return real.put(json, meta);
      },
    };
    const waiting: WaitingChange[] = [
      ...[0, 1, 2, 3].map((r) => ({ message: inlineMessage(change(r), ['p1']), at })),
      { message: inlineMessage(change(9, 'contact'), ['p1']), at },
    ];
    await assert.rejects(
      parkWaiting(failing, waiting, new Map(), { renewBefore: RENEW_BEFORE, concurrency: 2 }),
      /storage went away/,
    );
    assert.deepEqual(await names(storage), [], 'nothing is left behind');
  });

  it('is covered by the cleanup timer: an orphaned parked blob past the grace is removed, a younger one kept', async () => {
    await using storage = await createTestStorage();
    const graceMs = DEFAULT_CLAIM_CHECK_GRACE_MINUTES * 60_000;
    const parkAt = async (when: Date) =>
      (
        await parkWaiting(
          port(store(storage, { at: when })),
          [{ message: inlineMessage(change(1), ['p1']), at }],
          new Map(),
          {
            renewBefore: RENEW_BEFORE,
          },
        )
      ).parked[0];
    const orphan = await parkAt(new Date(NOW.getTime() - graceMs - 3_600_000));
    const live = await parkAt(new Date(NOW.getTime() - 3_600_000));

    const report = await runCleanup({
      claimChecks: store(storage),
      blobs: storage.blobs,
      failureLog: new FailureLog({ blobs: storage.blobs, container: storage.container('failurelog') }),
      knownProfileIds: async () => new Set(),
      now: () => NOW,
      failureRetentionDays: 30,
      logger: silentLogger,
    });

    assert.equal(report.claimChecksDeleted, 1);
    assert.deepEqual(await names(storage), [live]);
    assert.notEqual(orphan, live);
  });
});
