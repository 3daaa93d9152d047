import mssql from 'mssql';
import { AppError } from './errors.js';

/**
 * An ADO.NET-style Azure SQL connection string as the `mssql` driver needs it. The driver itself understands
 * only `Authentication=Active Directory Integrated` and `…Password` and silently signs in with a SQL login for
 * any other spelling, so every spelling Microsoft's connection-string documentation uses is mapped here to
 * tedious's authentication types, and an unknown one is refused. TLS is always on, whatever the string says.
 */

/** How one `Authentication=` value signs in; keys are the value in lower case without spaces. */
interface SignIn {
  type: string;
  /** `User Id` is the client id (of the managed identity, or of the app registration). */
  userIdIsClientId?: boolean;
  needs?: Array<'client id' | 'tenant id' | 'password'>;
}

const SIGN_INS: Record<string, SignIn> = {
  sqlpassword: { type: 'default' },
  // DefaultAzureCredential; `User Id` (or `Client Id`) picks a user-assigned identity.
  activedirectorydefault: { type: 'azure-active-directory-default', userIdIsClientId: true },
  // The driver's own reading of Integrated: DefaultAzureCredential with `Client Id` (what the Bicep deploys).
  activedirectoryintegrated: { type: 'azure-active-directory-default' },
  // ManagedIdentityCredential (tedious treats -msi-vm and -msi-app-service alike); `User Id` = client id.
  activedirectorymanagedidentity: { type: 'azure-active-directory-msi-app-service', userIdIsClientId: true },
  activedirectorymsi: { type: 'azure-active-directory-msi-app-service', userIdIsClientId: true },
  // `User Id` = the app's client id, `Password` = its secret; tedious also needs the tenant.
  activedirectoryserviceprincipal: {
    type: 'azure-active-directory-service-principal-secret',
    userIdIsClientId: true,
    needs: ['password', 'tenant id'],
  },
  // `User Id` and `Password` of an Entra user; tedious needs an app registration's client id to ask with.
  activedirectorypassword: { type: 'azure-active-directory-password', needs: ['password', 'client id'] },
};

/** Spellings Microsoft documents that need a person at a browser or a platform this app does not run on. */
const UNSUPPORTED = new Set([
  'activedirectoryinteractive',
  'activedirectorydevicecodeflow',
  'activedirectoryworkloadidentity',
]);

const SUPPORTED_SPELLINGS =
  'Active Directory Default, Active Directory Managed Identity (or MSI), Active Directory Service Principal, Active Directory Password, Active Directory Integrated, Sql Password';

/**
 * Request timeout when the connection string sets none. The driver's own default (15 s) is shorter than the
 * sink's 30 s DDL lock wait and the control store's 60 s migration lock, and than a large MERGE on a small tier;
 * every `sp_getapplock` timeout stays below this (a test checks it).
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 120_000;

export interface MssqlPolicy {
  /** Accept `TrustServerCertificate=true` (development only: it turns off the server's certificate check). */
  allowTrustServerCertificate?: boolean;
}

export function mssqlConfig(connectionString: string, policy: MssqlPolicy = {}): mssql.config {
  const config = mssql.ConnectionPool.parseConnectionString(connectionString) as mssql.config & Record<string, unknown>;
  const raw = /(?:^|;)\s*authentication\s*=\s*([^;]*)/i.exec(connectionString)?.[1]?.trim();
  if (raw) signIn(config, raw);

  if (config.options?.trustServerCertificate === true && !policy.allowTrustServerCertificate) {
    throw misconfigured(
      'the connection string sets TrustServerCertificate=true, which turns off the check of the server’s TLS certificate. Remove it (Azure SQL’s certificate is trusted), or for a development server set AllowTrustServerCertificate=true in the app settings.',
      'TrustServerCertificate',
    );
  }
  const commandTimeout = Number(/(?:^|;)\s*command\s*timeout\s*=\s*(\d+)/i.exec(connectionString)?.[1]);
  if (config.requestTimeout === undefined || Number.isNaN(config.requestTimeout)) {
    // SqlClient's `Command Timeout` is in seconds; the driver's own `Request Timeout` in milliseconds.
    config.requestTimeout = commandTimeout > 0 ? commandTimeout * 1000 : DEFAULT_REQUEST_TIMEOUT_MS;
  }
  config.options = { ...config.options, encrypt: true };
  return config;
}

function signIn(config: mssql.config & Record<string, unknown>, raw: string): void {
  const key = raw.replace(/\s+/g, '').toLowerCase();
  if (UNSUPPORTED.has(key)) {
    throw misconfigured(
      `Authentication=${raw} needs a person at a browser or a platform this app does not run on. Use one of: ${SUPPORTED_SPELLINGS}.`,
      'Authentication',
    );
  }
  const spec = SIGN_INS[key];
  if (!spec) {
    throw misconfigured(
      `Authentication=${raw} is not a sign-in this app knows, and it will not fall back to a SQL login. Use one of: ${SUPPORTED_SPELLINGS}.`,
      'Authentication',
    );
  }
  // Integrated keeps what the driver chose (it also reads Token / MSI Endpoint keys).
  if (key !== 'activedirectoryintegrated') config.authentication_type = spec.type;
  if (spec.userIdIsClientId && typeof config.user === 'string' && config.user) {
    config.clientId ??= config.user;
    config.user = undefined;
  }
  if (spec.type === 'azure-active-directory-service-principal-secret') {
    config.clientSecret = config.password;
    config.password = undefined;
  }
  const present: Record<string, unknown> = {
    'client id': config.clientId,
    'tenant id': config.tenantId,
    password: config.clientSecret ?? config.password,
  };
  const missing = (spec.needs ?? []).filter((name) => !present[name]);
  if (spec.type === 'azure-active-directory-service-principal-secret' && !config.clientId) missing.unshift('client id');
  if (missing.length) {
    throw misconfigured(
      `Authentication=${raw} needs ${missing.map((m) => (m === 'client id' && spec.userIdIsClientId ? 'User Id (the client id)' : titleCase(m))).join(' and ')} in the connection string.`,
      'Authentication',
    );
  }
}

const titleCase = (name: string) => name.replace(/\b\w/g, (c) => c.toUpperCase());

function misconfigured(message: string, keyword: string): AppError {
  return new AppError('TARGET_MISCONFIGURED', `Azure SQL connection string: ${message}`, {
    details: [{ field: 'target', message, value: keyword }],
  });
}
