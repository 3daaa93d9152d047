import mssql from 'mssql';

/**
 * An ADO.NET-style Azure SQL connection string as the `mssql` driver needs it. The driver understands only
 * `Authentication=Active Directory Integrated` as "use Entra ID"; the spellings Azure documents for managed
 * identities (`Active Directory Default`, `Active Directory Managed Identity`, `Active Directory MSI`) would
 * silently fall back to SQL logins, so they are mapped here. TLS is always on, whatever the string says.
 */
const ENTRA_DEFAULT = new Set([
  'active directory default',
  'active directory managed identity',
  'active directory msi',
  'active directory integrated',
]);

export function mssqlConfig(connectionString: string): mssql.config {
  const config = mssql.ConnectionPool.parseConnectionString(connectionString) as mssql.config & Record<string, unknown>;
  const authentication = /(?:^|;)\s*authentication\s*=\s*([^;]*)/i.exec(connectionString)?.[1]?.trim().toLowerCase();
  if (authentication && ENTRA_DEFAULT.has(authentication) && config.authentication_type === 'default') {
    config.authentication_type = 'azure-active-directory-default';
  }
  // A user-assigned identity is named by its client id (`Client Id=` or, as Azure writes it, `User Id=`).
  const clientId =
    config['client id'] ?? (authentication && ENTRA_DEFAULT.has(authentication) ? config.user : undefined);
  if (typeof clientId === 'string' && clientId) {
    config.clientId = clientId;
    if (config.user === clientId) config.user = undefined;
  }
  config.options = { ...config.options, encrypt: true };
  return config;
}
