import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { AppError } from '../errors.js';
import type { SecretProvider } from '../secrets/provider.js';

/**
 * Envelope encryption of claim-check payloads: AES-256-GCM under a 32-byte data key held as a base64 secret.
 *
 * Layout (all sizes in bytes):
 *   magic "DVXE" (4) | version 1 (1) | key id (8) | IV (12) | auth tag (16) | ciphertext
 * The key id is the first 8 bytes of SHA-256 over the key, so a blob names the key that sealed it without
 * revealing it; after a rotation the previous key, kept under another secret name, still opens old blobs.
 * The first 13 bytes are authenticated as additional data, so the header cannot be altered either.
 */
const MAGIC = Buffer.from('DVXE', 'ascii');
const VERSION = 1;
const KEY_ID_BYTES = 8;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const AAD_BYTES = MAGIC.length + 1 + KEY_ID_BYTES;
export const ENVELOPE_OVERHEAD_BYTES = AAD_BYTES + IV_BYTES + TAG_BYTES;

export interface PayloadCipherOptions {
  secrets: SecretProvider;
  /** Secret holding the current key (setting `PayloadKeySecretName`). */
  keySecretName: string;
  /** Secrets holding earlier keys, tried when a blob was sealed before the last rotation. */
  previousKeySecretNames?: string[];
}

interface DataKey {
  id: Buffer;
  key: Buffer;
  secretName: string;
}

export class PayloadCipher {
  readonly #options: PayloadCipherOptions;

  constructor(options: PayloadCipherOptions) {
    this.#options = options;
  }

  async encrypt(plaintext: Buffer | string): Promise<Buffer> {
    const { id, key } = await this.#loadKey(this.#options.keySecretName);
    const header = Buffer.concat([MAGIC, Buffer.from([VERSION]), id]);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(header);
    const body = Buffer.concat([
      cipher.update(typeof plaintext === 'string' ? Buffer.from(plaintext) : plaintext),
      cipher.final(),
    ]);
    return Buffer.concat([header, iv, cipher.getAuthTag(), body]);
  }

  async decrypt(envelope: Buffer): Promise<Buffer> {
    if (envelope.length < ENVELOPE_OVERHEAD_BYTES || !envelope.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw new AppError('CLAIM_CHECK_MISSING', 'The claim check is not an encrypted payload (unknown format).');
    }
    const version = envelope[MAGIC.length];
    if (version !== VERSION) {
      throw new AppError(
        'CLAIM_CHECK_MISSING',
        `The claim check uses envelope version ${version}; this build reads version ${VERSION}. Deploy a build that knows it.`,
      );
    }
    const header = envelope.subarray(0, AAD_BYTES);
    const keyId = header.subarray(MAGIC.length + 1);
    const iv = envelope.subarray(AAD_BYTES, AAD_BYTES + IV_BYTES);
    const tag = envelope.subarray(AAD_BYTES + IV_BYTES, ENVELOPE_OVERHEAD_BYTES);
    const body = envelope.subarray(ENVELOPE_OVERHEAD_BYTES);
    const dataKey = await this.#findKey(keyId);
    try {
      const decipher = createDecipheriv('aes-256-gcm', dataKey.key, iv);
      decipher.setAAD(header);
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(body), decipher.final()]);
    } catch (err) {
      throw new AppError(
        'CLAIM_CHECK_MISSING',
        `The claim check failed authentication with the key from secret '${dataKey.secretName}': it was altered or truncated in storage.`,
        { cause: err },
      );
    }
  }

  async #findKey(keyId: Buffer): Promise<DataKey> {
    const names = [this.#options.keySecretName, ...(this.#options.previousKeySecretNames ?? [])];
    for (const name of names) {
      const candidate = await this.#loadKey(name).catch((err: unknown) => {
        // A retired key that was since removed is not an error here; the message below explains.
        if (name !== names[0] && err instanceof AppError && err.code === 'SECRET_NOT_FOUND' && !err.transient) return;
        throw err;
      });
      if (candidate?.id.equals(keyId)) return candidate;
    }
    throw new AppError(
      'CLAIM_CHECK_MISSING',
      `The claim check was encrypted with key ${keyId.toString('hex')}, which is none of the keys in secret(s) ${names
        .map((n) => `'${n}'`)
        .join(
          ', ',
        )}. If the payload key was rotated, keep the previous value as a secret and list it in previousKeySecretNames.`,
      { details: [{ message: 'unknown key id', value: keyId.toString('hex') }] },
    );
  }

  async #loadKey(secretName: string): Promise<DataKey> {
    const value = (await this.#options.secrets.getSecret(secretName)).trim();
    const key = Buffer.from(value, 'base64');
    if (key.length !== 32 || key.toString('base64') !== value) {
      throw new AppError(
        'CONFIG_INVALID',
        `Secret '${secretName}' must hold a 32-byte AES key in base64 (44 characters); it decodes to ${key.length} bytes. Generate one with: openssl rand -base64 32`,
        { details: [{ field: secretName, message: 'not a base64 32-byte key' }] },
      );
    }
    return { id: keyIdOf(key), key, secretName };
  }
}

/** First 8 bytes of SHA-256 over the key: identifies a key without disclosing it. */
export function keyIdOf(key: Buffer): Buffer {
  return createHash('sha256').update(key).digest().subarray(0, KEY_ID_BYTES);
}
