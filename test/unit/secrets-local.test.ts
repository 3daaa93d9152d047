import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '../../lib/errors.js';
import { createSecretProvider } from '../../lib/secrets/create-secret-provider.js';
import { KeyVaultSecretProvider } from '../../lib/secrets/key-vault-provider.js';
import { LocalSecretProvider } from '../../lib/secrets/local-provider.js';

describe('LocalSecretProvider', () => {
  it('returns the value of a known secret', async () => {
    const secrets = new LocalSecretProvider({ 'local-postgres': 'postgres://x' });
    assert.equal(await secrets.getSecret('local-postgres'), 'postgres://x');
  });

  it('rejects an unknown name with SECRET_NOT_FOUND listing the names it knows', async () => {
    const secrets = new LocalSecretProvider({ b: '1', a: '2' });
    await assert.rejects(secrets.getSecret('sales-db'), (err: unknown) => {
      assert.ok(err instanceof AppError);
      assert.equal(err.code, 'SECRET_NOT_FOUND');
      assert.match(err.message, /'sales-db'/);
      assert.match(err.message, /'a', 'b'/);
      assert.match(err.message, /LocalSecrets/);
      return true;
    });
  });

  it('says so when no local secrets are defined', async () => {
    await assert.rejects(new LocalSecretProvider({}).getSecret('x'), /none defined/);
  });
});

describe('createSecretProvider', () => {
  it('uses the local map when no Key Vault is configured', () => {
    assert.ok(createSecretProvider({ keyVaultUri: '  ', localSecrets: {} }) instanceof LocalSecretProvider);
    assert.ok(createSecretProvider({ localSecrets: {} }) instanceof LocalSecretProvider);
  });

  it('uses Key Vault when a vault URI is set', () => {
    const credential = { getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 3_600_000 }) };
    const provider = createSecretProvider(
      { keyVaultUri: 'https://contoso.vault.azure.net/', localSecrets: { a: 'b' } },
      credential,
    );
    assert.ok(provider instanceof KeyVaultSecretProvider);
    assert.equal(provider.vaultUri, 'https://contoso.vault.azure.net/');
  });
});
