import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { SecretClient } from '@azure/keyvault-secrets';
import { AppError } from '../../lib/errors.js';
import { KeyVaultSecretProvider } from '../../lib/secrets/key-vault-provider.js';

/**
 * A stand-in for the Key Vault REST API (`GET /secrets/{name}?api-version=…`), including the 401 challenge
 * that `SecretClient` answers with a bearer token, so the real client runs against it over plain HTTP.
 */
class FakeKeyVault {
  readonly secrets = new Map<string, string>();
  readonly requests: { name: string; authorization?: string }[] = [];
  failNext?: number;
  delayMs = 0;
  #server?: Server;
  url = '';

  async start(): Promise<void> {
    this.#server = createServer((req, res) => void this.#handle(req, res));
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.#server!.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: import('node:http').ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const match = /^\/secrets\/([^/]+)\/?$/.exec(url.pathname);
    if (!req.headers.authorization) {
      res.writeHead(401, {
        'www-authenticate': `Bearer authorization="https://login.microsoftonline.com/tenant-id", resource="https://vault.azure.net"`,
        'content-type': 'application/json',
      });
      res.end(
        JSON.stringify({ error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer token.' } }),
      );
      return;
    }
    if (req.method !== 'GET' || !match || !url.searchParams.get('api-version')) {
      res.writeHead(400).end();
      return;
    }
    const name = decodeURIComponent(match[1]);
    this.requests.push({ name, authorization: req.headers.authorization });
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failNext) {
      const status = this.failNext;
      this.failNext = undefined;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'InternalServerError', message: 'Vault is having a bad day' } }));
      return;
    }
    const value = this.secrets.get(name);
    if (value === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          error: {
            code: 'SecretNotFound',
            message: `A secret with (name/id) ${name} was not found in this key vault.`,
          },
        }),
      );
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        value,
        id: `${this.url}/secrets/${name}/0123456789abcdef`,
        attributes: { enabled: true, created: 1700000000, updated: 1700000000, recoveryLevel: 'Recoverable' },
      }),
    );
  }
}

const credential = {
  getToken: async () => ({ token: 'fake-token', expiresOnTimestamp: Date.now() + 3_600_000 }),
};

describe('KeyVaultSecretProvider against a local Key Vault stand-in', () => {
  const vault = new FakeKeyVault();
  let clock = 0;

  function provider(ttlMs?: number): KeyVaultSecretProvider {
    // Plain HTTP, and a challenge naming vault.azure.net (which 127.0.0.1 is not under): allowed here only.
    const client = new SecretClient(vault.url, credential, {
      disableChallengeResourceVerification: true,
      allowInsecureConnection: true,
      retryOptions: { maxRetries: 0 },
    });
    return new KeyVaultSecretProvider({ vaultUri: vault.url, client, ttlMs, now: () => clock });
  }

  before(() => vault.start());
  after(() => vault.stop());
  beforeEach(() => {
    vault.secrets.clear();
    vault.requests.length = 0;
    vault.delayMs = 0;
    clock = 1_000;
  });

  it('reads a secret with the real SecretClient over the Key Vault REST API', async () => {
    vault.secrets.set('sales-db', 'Server=tcp:x');
    assert.equal(await provider().getSecret('sales-db'), 'Server=tcp:x');
    assert.equal(vault.requests.at(-1)?.authorization, 'Bearer fake-token');
  });

  it('reuses a value until it expires, then picks up the rotated one', async () => {
    const secrets = provider(60_000);
    vault.secrets.set('sales-db', 'v1');
    assert.equal(await secrets.getSecret('sales-db'), 'v1');
    vault.secrets.set('sales-db', 'v2');
    clock += 59_999;
    assert.equal(await secrets.getSecret('sales-db'), 'v1');
    assert.equal(vault.requests.length, 1);
    clock += 1;
    assert.equal(await secrets.getSecret('sales-db'), 'v2');
    assert.equal(vault.requests.length, 2);
  });

  it('defaults to a five-minute expiry', async () => {
    const secrets = provider();
    vault.secrets.set('k', 'v1');
    await secrets.getSecret('k');
    vault.secrets.set('k', 'v2');
    clock += 5 * 60_000 - 1;
    assert.equal(await secrets.getSecret('k'), 'v1');
    clock += 1;
    assert.equal(await secrets.getSecret('k'), 'v2');
  });

  it('shares one fetch among concurrent reads of one name', async () => {
    const secrets = provider();
    vault.secrets.set('k', 'v');
    vault.delayMs = 50;
    const values = await Promise.all(Array.from({ length: 20 }, () => secrets.getSecret('k')));
    assert.deepEqual(new Set(values), new Set(['v']));
    assert.equal(vault.requests.filter((r) => r.name === 'k').length, 1);
  });

  it('fetches again after invalidate', async () => {
    const secrets = provider();
    vault.secrets.set('k', 'v1');
    await secrets.getSecret('k');
    vault.secrets.set('k', 'v2');
    secrets.invalidate('k');
    assert.equal(await secrets.getSecret('k'), 'v2');
  });

  it('turns a 404 into SECRET_NOT_FOUND naming the secret, the vault and what to do', async () => {
    await assert.rejects(provider().getSecret('missing-db'), (err: unknown) => {
      assert.ok(err instanceof AppError);
      assert.equal(err.code, 'SECRET_NOT_FOUND');
      assert.equal(err.transient, false);
      assert.match(err.message, /'missing-db'/);
      assert.ok(err.message.includes(vault.url));
      assert.match(err.message, /az keyvault secret set/);
      assert.equal((err.cause as { statusCode?: number }).statusCode, 404);
      return true;
    });
  });

  it('keeps the cause of other failures and marks them transient, without caching them', async () => {
    const secrets = provider();
    vault.secrets.set('k', 'v');
    vault.failNext = 500;
    await assert.rejects(secrets.getSecret('k'), (err: unknown) => {
      assert.ok(err instanceof AppError);
      assert.equal(err.transient, true);
      assert.equal((err.cause as { statusCode?: number }).statusCode, 500);
      assert.match(err.message, /bad day/);
      return true;
    });
    assert.equal(await secrets.getSecret('k'), 'v');
  });

  it('rejects a name Key Vault cannot hold before calling it', async () => {
    await assert.rejects(provider().getSecret('sales_db'), /not a valid Key Vault secret name/);
    assert.equal(vault.requests.length, 0);
  });
});
