import { AppError, type ErrorDetail } from '../errors.js';

/**
 * What a profile may point the app at. The app sends its Dataverse bearer token to `source.url` and reads the
 * secret `target.connectionSecret` names, so neither may be any URL or any secret: a profile's author must not
 * be able to send the token to a host of their choosing or have the app try its own keys as a target.
 */
export interface ProfileReach {
  /** Host suffixes a source may use (`.dynamics.com` admits `contoso.crm4.dynamics.com`). */
  dataverseHostSuffixes: readonly string[];
  /** Development only: plain http to a loopback host (the local sample organization). */
  allowLoopback: boolean;
  /** Secret names a target may use: exact names, or `prefix*` patterns; `*` admits any name. */
  targetSecretNames: readonly string[];
  /** The app's own secrets, refused whatever `targetSecretNames` says. */
  reservedSecretNames: readonly string[];
}

/**
 * The Dataverse hosts of every Microsoft cloud, from the Global Discovery Service's table: commercial and
 * GCC (`*.crm*.dynamics.com`), GCC High (`*.crm.microsoftdynamics.us`), DoD (`*.crm.appsplatform.us`) and
 * China, operated by 21Vianet (`*.crm.dynamics.cn`).
 */
export const DATAVERSE_HOST_SUFFIXES = ['.dynamics.com', '.microsoftdynamics.us', '.appsplatform.us', '.dynamics.cn'];

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Why `raw` may not be a source URL, in words a user can act on; undefined when it may. */
export function sourceUrlProblem(raw: string, reach: ProfileReach): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return `${JSON.stringify(raw)} is not a URL — ${allowedSources(reach)}`;
  }
  const host = url.hostname.toLowerCase();
  const loopback = LOOPBACK_HOSTS.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
  if (loopback && reach.allowLoopback && (url.protocol === 'http:' || url.protocol === 'https:')) return undefined;
  if (url.protocol !== 'https:') {
    return `${JSON.stringify(raw)} is not allowed: the app sends its Dataverse token there, so it must use https — ${allowedSources(reach)}`;
  }
  if (url.username || url.password) return `${JSON.stringify(raw)} is not allowed: a source URL carries no user name`;
  if (!reach.dataverseHostSuffixes.some((suffix) => hostEndsWith(host, suffix))) {
    return `${JSON.stringify(raw)} is not allowed: ${host} is not a Dataverse host — ${allowedSources(reach)}`;
  }
  return undefined;
}

/** Why `name` may not be a target's connection secret; undefined when it may. */
export function connectionSecretProblem(name: string, reach: ProfileReach): string | undefined {
  if (reach.reservedSecretNames.some((reserved) => reserved.toLowerCase() === name.toLowerCase())) {
    return `'${name}' is one of the app's own secrets and never a target's connection string — name the secret that holds the target database's connection string`;
  }
  if (!reach.targetSecretNames.some((pattern) => secretNameMatches(name, pattern))) {
    return `'${name}' is not a target secret on this host — allowed: ${reach.targetSecretNames.join(', ') || 'none'} (setting TargetSecretNames)`;
  }
  return undefined;
}

/** Refuses a profile whose source or target secret is out of reach, naming each field (400 VALIDATION_FAILED). */
export function assertWithinReach(
  profile: { source: { url: string }; target: { connectionSecret: string } },
  reach: ProfileReach,
): void {
  const details: ErrorDetail[] = [];
  const url = sourceUrlProblem(profile.source.url, reach);
  if (url) details.push({ field: '/source/url', message: url, value: profile.source.url });
  const secret = connectionSecretProblem(profile.target.connectionSecret, reach);
  if (secret)
    details.push({ field: '/target/connectionSecret', message: secret, value: profile.target.connectionSecret });
  if (details.length === 0) return;
  throw new AppError(
    'VALIDATION_FAILED',
    `The profile is invalid (${details.length} problem${details.length === 1 ? '' : 's'}): ${details.map((d) => `${d.field}: ${d.message}`).join('; ')}`,
    { details },
  );
}

function allowedSources(reach: ProfileReach): string {
  const hosts = reach.dataverseHostSuffixes.map((suffix) => `*${suffix.startsWith('.') ? '' : '.'}${suffix}`);
  return `allowed: https://<org> on ${hosts.join(', ')} (setting DataverseHostAllowList adds hosts)${reach.allowLoopback ? '; http on loopback' : ''}`;
}

/** `contoso.crm.dynamics.com` ends with `.dynamics.com`; `evildynamics.com` does not; a bare suffix is a host. */
function hostEndsWith(host: string, suffix: string): boolean {
  const s = suffix.toLowerCase().replace(/^\*/, '');
  const dotted = s.startsWith('.') ? s : `.${s}`;
  return host.endsWith(dotted) || host === dotted.slice(1);
}

function secretNameMatches(name: string, pattern: string): boolean {
  const p = pattern.toLowerCase();
  const n = name.toLowerCase();
  return p.endsWith('*') ? n.startsWith(p.slice(0, -1)) : n === p;
}
