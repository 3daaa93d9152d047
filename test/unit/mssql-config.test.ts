import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mssqlConfig } from '../../lib/mssql-config.js';

type Parsed = Record<string, unknown> & { options?: { encrypt?: boolean } };
const read = (connectionString: string) => mssqlConfig(connectionString) as unknown as Parsed;

const server = 'Server=tcp:sql-x.database.windows.net,1433;Database=control';

describe('Azure SQL connection strings', () => {
  for (const spelling of ['Active Directory Default', 'Active Directory Managed Identity', 'Active Directory MSI']) {
    it(`signs in with Entra ID for "Authentication=${spelling}"`, () => {
      const config = read(`${server};Authentication=${spelling};User Id=1111-client;Encrypt=false`);
      assert.equal(config.authentication_type, 'azure-active-directory-default');
      assert.equal(config.clientId, '1111-client', 'User Id names the user-assigned identity');
      assert.equal(config.user, undefined);
      assert.equal(config.options?.encrypt, true, 'TLS whatever the string says');
      assert.equal(config.server, 'sql-x.database.windows.net');
      assert.equal(config.database, 'control');
    });
  }

  it('keeps the driver’s own spelling with a Client Id (what the Bicep deploys)', () => {
    const config = read(`${server};Authentication=Active Directory Integrated;Client Id=2222`);
    assert.equal(config.authentication_type, 'azure-active-directory-default');
    assert.equal(config.clientId, '2222');
  });

  it('leaves a SQL login as it is', () => {
    const config = read(`${server};User Id=app;Password=secret`);
    assert.equal(config.authentication_type ?? 'default', 'default');
    assert.equal(config.user, 'app');
    assert.equal(config.password, 'secret');
  });
});
