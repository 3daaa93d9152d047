import type { TokenCredential } from '@azure/identity';
import { KeyVaultSecretProvider } from './key-vault-provider.js';
import { LocalSecretProvider } from './local-provider.js';
import type { SecretProvider } from './provider.js';

/** Key Vault when `keyVaultUri` is set (Azure), otherwise the local map (development). */
export function createSecretProvider(
  config: { keyVaultUri?: string; localSecrets: Record<string, string> },
  credential?: TokenCredential,
): SecretProvider {
  const vaultUri = config.keyVaultUri?.trim();
  if (vaultUri) return new KeyVaultSecretProvider({ vaultUri, credential });
  return new LocalSecretProvider(config.localSecrets);
}
