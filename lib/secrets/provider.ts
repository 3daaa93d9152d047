/** Where connection strings and the payload key come from: Key Vault in Azure, a local map in development. */
export interface SecretProvider {
  /** Resolves a secret's current value; throws AppError SECRET_NOT_FOUND naming the secret when absent. */
  getSecret(name: string): Promise<string>;
}
