import { AppError } from '../errors.js';
import type { SecretProvider } from '../secrets/provider.js';

const CACHE_MS = 60_000;

/**
 * The management key from its secret, re-read at most once a minute so a rotated key takes effect without a
 * restart. No secret name (the key is turned off) or no such secret: undefined, and only sign-ins open the API.
 */
export function managementKeyFrom(
  secrets: SecretProvider,
  secretName: string | undefined,
): () => Promise<string | undefined> {
  let cached: { value: string | undefined; at: number } | undefined;
  return async () => {
    if (!secretName) return undefined;
    if (cached && Date.now() - cached.at < CACHE_MS) return cached.value;
    let value: string | undefined;
    try {
      value = await secrets.getSecret(secretName);
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'SECRET_NOT_FOUND') throw err;
    }
    cached = { value, at: Date.now() };
    return value;
  };
}

const perRuntime = new WeakMap<object, () => Promise<string | undefined>>();

/** The access options of the app's runtime: one cached key reader per runtime. */
export function accessOptionsOf(runtime: { secrets: SecretProvider; config: { managementKeySecretName?: string } }): {
  managementKey: () => Promise<string | undefined>;
} {
  let managementKey = perRuntime.get(runtime);
  if (!managementKey) {
    managementKey = managementKeyFrom(runtime.secrets, runtime.config.managementKeySecretName);
    perRuntime.set(runtime, managementKey);
  }
  return { managementKey };
}
