import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { AppError } from '../../lib/errors.js';
import { LocalSecretProvider } from '../../lib/secrets/local-provider.js';
import { ENVELOPE_OVERHEAD_BYTES, keyIdOf, PayloadCipher } from '../../lib/storage/payload-crypto.js';

const newKey = () => randomBytes(32).toString('base64');

function cipherWith(secrets: Record<string, string>, previousKeySecretNames?: string[]): PayloadCipher {
  return new PayloadCipher({
    secrets: new LocalSecretProvider(secrets),
    keySecretName: 'payload-key',
    previousKeySecretNames,
  });
}

function isClaimCheckMissing(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof AppError);
    assert.equal(err.code, 'CLAIM_CHECK_MISSING');
    assert.match(err.message, pattern);
    return true;
  };
}

describe('PayloadCipher', () => {
  it('round-trips a payload', async () => {
    const cipher = cipherWith({ 'payload-key': newKey() });
    const text = JSON.stringify({ name: 'Contoso', revenue: 1e6, note: 'ünïcødé ✓' });
    const sealed = await cipher.encrypt(text);
    assert.equal(sealed.length, ENVELOPE_OVERHEAD_BYTES + Buffer.byteLength(text));
    assert.equal((await cipher.decrypt(sealed)).toString(), text);
  });

  it('round-trips an empty payload', async () => {
    const cipher = cipherWith({ 'payload-key': newKey() });
    assert.equal((await cipher.decrypt(await cipher.encrypt(''))).length, 0);
  });

  it('writes a versioned header naming the key, and no plaintext', async () => {
    const key = newKey();
    const sealed = await cipherWith({ 'payload-key': key }).encrypt('secret-marker-123');
    assert.equal(sealed.subarray(0, 4).toString('ascii'), 'DVXE');
    assert.equal(sealed[4], 1);
    assert.deepEqual(sealed.subarray(5, 13), keyIdOf(Buffer.from(key, 'base64')));
    assert.equal(sealed.includes('secret-marker-123'), false);
  });

  it('uses a fresh IV for every payload', async () => {
    const cipher = cipherWith({ 'payload-key': newKey() });
    const ivs = new Set<string>();
    const bodies = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const sealed = await cipher.encrypt('same text');
      ivs.add(sealed.subarray(13, 25).toString('hex'));
      bodies.add(sealed.subarray(ENVELOPE_OVERHEAD_BYTES).toString('hex'));
    }
    assert.equal(ivs.size, 50);
    assert.equal(bodies.size, 50);
  });

  it('detects a flipped bit anywhere in the envelope', async () => {
    const cipher = cipherWith({ 'payload-key': newKey() });
    const sealed = await cipher.encrypt('{"a":1,"b":"two"}');
    // Header version and key id are checked before authentication; every other byte by the GCM tag.
    for (const offset of [13, 20, 25, 40, ENVELOPE_OVERHEAD_BYTES, sealed.length - 1]) {
      const tampered = Buffer.from(sealed);
      tampered[offset] ^= 0x01;
      await assert.rejects(cipher.decrypt(tampered), isClaimCheckMissing(/altered or truncated/), `offset ${offset}`);
    }
    await assert.rejects(cipher.decrypt(sealed.subarray(0, sealed.length - 1)), isClaimCheckMissing(/altered/));
  });

  it('rejects something that is not an envelope', async () => {
    const cipher = cipherWith({ 'payload-key': newKey() });
    await assert.rejects(
      cipher.decrypt(Buffer.from('{"plain":"json"} and some more bytes here..')),
      isClaimCheckMissing(/not an encrypted payload/),
    );
    const sealed = await cipher.encrypt('x');
    sealed[4] = 9;
    await assert.rejects(cipher.decrypt(sealed), isClaimCheckMissing(/version 9/));
  });

  it('refuses a blob sealed with a key it does not hold, naming the key id', async () => {
    const sealed = await cipherWith({ 'payload-key': newKey() }).encrypt('x');
    const keyId = sealed.subarray(5, 13).toString('hex');
    await assert.rejects(
      cipherWith({ 'payload-key': newKey() }).decrypt(sealed),
      isClaimCheckMissing(new RegExp(`key ${keyId}.*previousKeySecretNames`)),
    );
  });

  it('opens a blob sealed before a rotation with the previous key', async () => {
    const oldKey = newKey();
    const sealed = await cipherWith({ 'payload-key': oldKey }).encrypt('before rotation');
    const rotated = cipherWith({ 'payload-key': newKey(), 'payload-key-previous': oldKey }, ['payload-key-previous']);
    assert.equal((await rotated.decrypt(sealed)).toString(), 'before rotation');
    const withoutPrevious = cipherWith({ 'payload-key': newKey() }, ['payload-key-previous']);
    await assert.rejects(withoutPrevious.decrypt(sealed), isClaimCheckMissing(/'payload-key-previous'/));
  });

  it('reads the key from the secret provider each time, so a rotated key seals new payloads', async () => {
    const secrets: Record<string, string> = { 'payload-key': newKey() };
    const cipher = new PayloadCipher({ secrets: { getSecret: async (n) => secrets[n] }, keySecretName: 'payload-key' });
    const first = await cipher.encrypt('a');
    secrets['payload-key'] = newKey();
    const second = await cipher.encrypt('b');
    assert.notDeepEqual(first.subarray(5, 13), second.subarray(5, 13));
  });

  it('explains a key secret that is not a base64 32-byte key', async () => {
    for (const bad of ['too-short', randomBytes(16).toString('base64'), `${newKey()}!`]) {
      await assert.rejects(cipherWith({ 'payload-key': bad }).encrypt('x'), (err: unknown) => {
        assert.ok(err instanceof AppError);
        assert.equal(err.code, 'CONFIG_INVALID');
        assert.match(err.message, /'payload-key'.*openssl rand -base64 32/);
        return true;
      });
    }
  });

  it('passes on SECRET_NOT_FOUND when the current key secret is missing', async () => {
    await assert.rejects(cipherWith({}).encrypt('x'), { code: 'SECRET_NOT_FOUND' });
  });
});
