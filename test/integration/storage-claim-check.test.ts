import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { AppError } from '../../lib/errors.js';
import { LocalSecretProvider } from '../../lib/secrets/local-provider.js';
import { ClaimCheckStore } from '../../lib/storage/claim-check.js';
import { PayloadCipher } from '../../lib/storage/payload-crypto.js';
import { createTestStorage, stopOwnAzurite, type TestStorage } from '../support/azurite.js';

after(stopOwnAzurite);

const secrets = new LocalSecretProvider({ 'payload-key': randomBytes(32).toString('base64') });
const cipher = new PayloadCipher({ secrets, keySecretName: 'payload-key' });
const meta = { organizationId: '6f2d1c8e-0000-4000-8000-000000000001', entity: 'account' };

function claimChecks(storage: TestStorage, now?: () => Date): ClaimCheckStore {
  return new ClaimCheckStore({ blobs: storage.blobs, cipher, container: storage.container('claimchecks'), now });
}

/** A JSON document of about `bytes` bytes, with `marker` in a value. */
function bigChange(bytes: number, marker: string): string {
  const attributes: Record<string, string> = { description: marker };
  for (let i = 0, size = 0; size < bytes; i++) {
    attributes[`attr_${i}`] = `value-${i}-${'x'.repeat(200)}`;
    size += 220;
  }
  return JSON.stringify({ entity: 'account', recordId: 'a1', attributes });
}

describe('claim checks in Azurite', () => {
  it('round-trips a 1 MB change', async () => {
    await using storage = await createTestStorage();
    const store = claimChecks(storage);
    const json = bigChange(1024 * 1024, 'Contoso Ltd');
    const ref = await store.putClaimCheck(json, meta);
    assert.match(ref.blobName, /^\d{4}\/\d{2}\/\d{2}\/\d{2}\/[0-9a-f-]{36}$/);
    assert.ok(ref.bytes > 1024 * 1024);
    assert.equal(await store.getClaimCheck(ref.blobName), json);
  });

  it('names the blob by its UTC hour and records time, organization and entity, never the payload', async () => {
    await using storage = await createTestStorage();
    const store = claimChecks(storage, () => new Date('2026-11-05T14:30:12.345Z'));
    const ref = await store.putClaimCheck('{"name":"SECRET-MARKER-7f3a"}', meta);
    assert.ok(ref.blobName.startsWith('2026/11/05/14/'));
    const props = await storage.service
      .getContainerClient(storage.container('claimchecks'))
      .getBlobClient(ref.blobName)
      .getProperties();
    assert.deepEqual(props.metadata, {
      createdon: '2026-11-05T14:30:12.345Z',
      organizationid: meta.organizationId,
      entity: 'account',
    });
  });

  it('stores no plaintext: the raw blob does not contain a marker from the payload', async () => {
    await using storage = await createTestStorage();
    const store = claimChecks(storage);
    const marker = 'PLAINTEXT-MARKER-c0ffee-4242';
    const json = bigChange(300 * 1024, marker);
    const ref = await store.putClaimCheck(json, meta);
    const raw = await storage.service
      .getContainerClient(storage.container('claimchecks'))
      .getBlobClient(ref.blobName)
      .downloadToBuffer();
    assert.equal(raw.includes(marker), false);
    assert.equal(raw.includes('"attributes"'), false);
    assert.equal(raw.subarray(0, 4).toString(), 'DVXE');
  });

  it('deletes idempotently', async () => {
    await using storage = await createTestStorage();
    const store = claimChecks(storage);
    const ref = await store.putClaimCheck('{}', meta);
    assert.equal(await store.deleteClaimCheck(ref.blobName), true);
    assert.equal(await store.deleteClaimCheck(ref.blobName), false);
  });

  it('answers CLAIM_CHECK_MISSING for a blob that is gone', async () => {
    await using storage = await createTestStorage();
    const store = claimChecks(storage);
    const ref = await store.putClaimCheck('{}', meta);
    await store.deleteClaimCheck(ref.blobName);
    await assert.rejects(store.getClaimCheck(ref.blobName), (err: unknown) => {
      assert.ok(err instanceof AppError);
      assert.equal(err.code, 'CLAIM_CHECK_MISSING');
      assert.ok(err.message.includes(ref.blobName));
      return true;
    });
    await assert.rejects(store.getClaimCheck('../etc/passwd'), { code: 'CLAIM_CHECK_MISSING' });
  });

  it('answers CLAIM_CHECK_MISSING for a blob sealed with another key', async () => {
    await using storage = await createTestStorage();
    const ref = await claimChecks(storage).putClaimCheck('{}', meta);
    const otherKey = new PayloadCipher({
      secrets: new LocalSecretProvider({ k: randomBytes(32).toString('base64') }),
      keySecretName: 'k',
    });
    const store = new ClaimCheckStore({
      blobs: storage.blobs,
      cipher: otherKey,
      container: storage.container('claimchecks'),
    });
    await assert.rejects(store.getClaimCheck(ref.blobName), { code: 'CLAIM_CHECK_MISSING' });
  });

  it('lists claim checks older than a time, hour by hour, in pages', async () => {
    await using storage = await createTestStorage();
    let clock = new Date('2026-11-05T10:10:00Z');
    const store = claimChecks(storage, () => clock);
    const made: { name: string; at: string }[] = [];
    for (const at of [
      '2026-11-04T23:59:00Z',
      '2026-11-05T10:10:00Z',
      '2026-11-05T10:20:00Z',
      '2026-11-05T11:05:00Z',
      '2026-11-05T11:40:00Z',
      '2026-11-05T12:00:00Z',
    ]) {
      clock = new Date(at);
      made.push({ name: (await store.putClaimCheck('{}', meta)).blobName, at });
    }
    const pages: string[][] = [];
    for await (const page of store.listClaimChecks(new Date('2026-11-05T11:40:00Z'), 2)) {
      pages.push(page.map((c) => c.blobName));
      for (const c of page) assert.equal(c.entity, 'account');
    }
    // Within an hour, names (uuids) are in no particular time order.
    assert.deepEqual(
      pages.map((p) => p.length),
      [2, 2],
    );
    assert.equal(pages[0][0], made[0].name);
    assert.deepEqual(
      pages.flat().sort(),
      made
        .slice(0, 4)
        .map((m) => m.name)
        .sort(),
    );

    const cleaned: string[] = [];
    for await (const page of store.listClaimChecks(new Date('2026-11-05T10:15:00Z'))) {
      for (const c of page) {
        await store.deleteClaimCheck(c.blobName);
        cleaned.push(c.createdOn.toISOString());
      }
    }
    assert.deepEqual(cleaned.sort(), ['2026-11-04T23:59:00.000Z', '2026-11-05T10:10:00.000Z']);
    assert.equal(await store.getClaimCheck(made[2].name), '{}');
  });

  it('creates its container on first use', async () => {
    await using storage = await createTestStorage();
    const pages: unknown[] = [];
    for await (const page of claimChecks(storage).listClaimChecks(new Date())) pages.push(page);
    assert.deepEqual(pages, []);
    assert.equal(await storage.service.getContainerClient(storage.container('claimchecks')).exists(), true);
  });
});
