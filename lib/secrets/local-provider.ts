import { AppError } from '../errors.js';
import type { SecretProvider } from './provider.js';

/** Development secrets from a plain map (the `LocalSecrets` setting); nothing is fetched or cached. */
export class LocalSecretProvider implements SecretProvider {
  readonly #secrets: ReadonlyMap<string, string>;

  constructor(secrets: Record<string, string>) {
    this.#secrets = new Map(Object.entries(secrets));
  }

  async getSecret(name: string): Promise<string> {
    const value = this.#secrets.get(name);
    if (value !== undefined) return value;
    const known = [...this.#secrets.keys()].sort();
    throw new AppError(
      'SECRET_NOT_FOUND',
      `Secret '${name}' is not among the local secrets (${known.length ? known.map((k) => `'${k}'`).join(', ') : 'none defined'}). ` +
        `Add it to the LocalSecrets setting, or set KeyVaultUri to read secrets from Key Vault.`,
      { details: [{ field: 'LocalSecrets', message: `no secret named '${name}'`, value: name }] },
    );
  }
}
