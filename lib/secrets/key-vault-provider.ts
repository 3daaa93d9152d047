import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { AppError } from '../errors.js';
import type { SecretProvider } from './provider.js';

/** The one call we make on Key Vault; `SecretClient` satisfies it, tests may pass their own. */
export interface SecretReader {
  getSecret(name: string): Promise<{ value?: string }>;
}

export interface KeyVaultSecretProviderOptions {
  /** `https://<vault>.vault.azure.net/` */
  vaultUri: string;
  /** Defaults to `DefaultAzureCredential` (the Function App's managed identity in Azure). */
  credential?: TokenCredential;
  /** How long a value is reused before Key Vault is asked again, so a rotated secret is picked up. */
  ttlMs?: number;
  /** Replaces the `SecretClient` built from `vaultUri` and `credential`. */
  client?: SecretReader;
  now?: () => number;
}

export const DEFAULT_SECRET_TTL_MS = 5 * 60_000;

const KEY_VAULT_SECRET_NAME = /^[0-9a-zA-Z-]{1,127}$/;

/**
 * Secrets from Azure Key Vault, each value cached for `ttlMs`. Concurrent reads of one name share a single
 * request, so a burst of messages after a cold start does not fan out into a burst of Key Vault calls.
 */
export class KeyVaultSecretProvider implements SecretProvider {
  readonly vaultUri: string;
  readonly #client: SecretReader;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #cache = new Map<string, { value: string; expiresAt: number }>();
  readonly #inFlight = new Map<string, Promise<string>>();

  constructor(options: KeyVaultSecretProviderOptions) {
    this.vaultUri = options.vaultUri;
    this.#ttlMs = options.ttlMs ?? DEFAULT_SECRET_TTL_MS;
    this.#now = options.now ?? Date.now;
    this.#client =
      options.client ?? new SecretClient(options.vaultUri, options.credential ?? new DefaultAzureCredential());
  }

  getSecret(name: string): Promise<string> {
    const cached = this.#cache.get(name);
    if (cached && cached.expiresAt > this.#now()) return Promise.resolve(cached.value);
    const pending = this.#inFlight.get(name);
    if (pending) return pending;
    const fetch = this.#fetch(name).finally(() => this.#inFlight.delete(name));
    this.#inFlight.set(name, fetch);
    return fetch;
  }

  /** Drops a cached value, e.g. after a login failed because the secret was rotated. */
  invalidate(name: string): void {
    this.#cache.delete(name);
  }

  async #fetch(name: string): Promise<string> {
    if (!KEY_VAULT_SECRET_NAME.test(name)) {
      throw new AppError(
        'SECRET_NOT_FOUND',
        `'${name}' is not a valid Key Vault secret name (1-127 letters, digits and hyphens). Rename the secret and the setting or profile field that refers to it.`,
        { details: [{ message: 'invalid Key Vault secret name', value: name }] },
      );
    }
    let secret: { value?: string };
    try {
      secret = await this.#client.getSecret(name);
    } catch (err) {
      throw this.#describe(name, err);
    }
    if (secret.value === undefined) {
      throw new AppError('SECRET_NOT_FOUND', `Secret '${name}' in Key Vault ${this.vaultUri} has no value. Set one.`);
    }
    this.#cache.set(name, { value: secret.value, expiresAt: this.#now() + this.#ttlMs });
    return secret.value;
  }

  #describe(name: string, err: unknown): AppError {
    const status = (err as { statusCode?: unknown }).statusCode;
    const reason = err instanceof Error ? err.message : String(err);
    if (status === 404) {
      return new AppError(
        'SECRET_NOT_FOUND',
        `Secret '${name}' does not exist in Key Vault ${this.vaultUri}. Create it (az keyvault secret set --vault-name <vault> --name ${name} --value <value>) or correct the name that refers to it.`,
        { cause: err, details: [{ message: 'secret not found', value: name }] },
      );
    }
    if (status === 401 || status === 403) {
      return new AppError(
        'SECRET_NOT_FOUND',
        `Reading secret '${name}' from Key Vault ${this.vaultUri} was refused (${status}: ${reason}). Grant the app's identity the 'Key Vault Secrets User' role on the vault, and check the secret is enabled.`,
        { cause: err, details: [{ message: 'access denied', value: name }] },
      );
    }
    // Throttling, 5xx and network errors may pass: the caller's retry decides.
    return new AppError(
      'SECRET_NOT_FOUND',
      `Secret '${name}' could not be read from Key Vault ${this.vaultUri}: ${reason}`,
      { cause: err, transient: true },
    );
  }
}
