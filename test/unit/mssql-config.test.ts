import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_REQUEST_TIMEOUT_MS, mssqlConfig } from '../../lib/mssql-config.js';
import { MIGRATION_LOCK_TIMEOUT_MS, mssqlControlSql } from '../../lib/profiles/sql/mssql.js';
import * as sinkSql from '../../lib/sink/dialects/mssql-sql.js';
import { tombstoneTable } from '../../lib/sink/side-tables.js';

type Parsed = Record<string, unknown> & { options?: { encrypt?: boolean } };
const read = (connectionString: string, allowTrustServerCertificate = false) =>
  mssqlConfig(connectionString, { allowTrustServerCertificate }) as unknown as Parsed;

const server = 'Server=tcp:sql-x.database.windows.net,1433;Database=control';

describe('Azure SQL sign-in spellings', () => {
  const spellings: Array<[string, string]> = [
    ['Active Directory Default', 'azure-active-directory-default'],
    ['ActiveDirectoryDefault', 'azure-active-directory-default'],
    ['active directory default', 'azure-active-directory-default'],
    ['Active Directory Managed Identity', 'azure-active-directory-msi-app-service'],
    ['ActiveDirectoryManagedIdentity', 'azure-active-directory-msi-app-service'],
    ['Active Directory MSI', 'azure-active-directory-msi-app-service'],
    ['ActiveDirectoryMSI', 'azure-active-directory-msi-app-service'],
  ];
  for (const [spelling, type] of spellings) {
    it(`signs in as ${type} for "Authentication=${spelling}", User Id naming the user-assigned identity`, () => {
      const config = read(`${server};Authentication=${spelling};User Id=1111-client;Encrypt=false`);
      assert.equal(config.authentication_type, type);
      assert.equal(config.clientId, '1111-client');
      assert.equal(config.user, undefined, 'no SQL login');
      assert.equal(config.options?.encrypt, true, 'TLS whatever the string says');
      assert.equal(config.server, 'sql-x.database.windows.net');
      assert.equal(config.database, 'control');
    });
  }

  it('signs in as the system-assigned identity without a User Id', () => {
    const config = read(`${server};Authentication=Active Directory Managed Identity`);
    assert.equal(config.authentication_type, 'azure-active-directory-msi-app-service');
    assert.equal(config.clientId, undefined);
  });

  it('signs in as a service principal: User Id is its client id, Password its secret, Tenant Id its tenant', () => {
    for (const spelling of ['Active Directory Service Principal', 'ActiveDirectoryServicePrincipal']) {
      const config = read(`${server};Authentication=${spelling};User Id=app-1;Password=s3cret;Tenant Id=tenant-9`);
      assert.equal(config.authentication_type, 'azure-active-directory-service-principal-secret');
      assert.equal(config.clientId, 'app-1');
      assert.equal(config.clientSecret, 's3cret');
      assert.equal(config.tenantId, 'tenant-9');
      assert.equal(config.user, undefined);
      assert.equal(config.password, undefined);
    }
  });

  it('signs in as an Entra user with Active Directory Password and the app’s Client Id', () => {
    const config = read(
      `${server};Authentication=Active Directory Password;User Id=ann@contoso.com;Password=pw;Client Id=app-2`,
    );
    assert.equal(config.authentication_type, 'azure-active-directory-password');
    assert.equal(config.user, 'ann@contoso.com');
    assert.equal(config.password, 'pw');
    assert.equal(config.clientId, 'app-2');
  });

  it('keeps the driver’s own spelling with a Client Id (what the Bicep deploys)', () => {
    const config = read(`${server};Authentication=Active Directory Integrated;Client Id=2222`);
    assert.equal(config.authentication_type, 'azure-active-directory-default');
    assert.equal(config.clientId, '2222');
  });

  it('leaves a SQL login as it is, with or without Authentication=Sql Password', () => {
    for (const extra of ['', ';Authentication=Sql Password', ';Authentication=SqlPassword']) {
      const config = read(`${server};User Id=app;Password=secret${extra}`);
      assert.equal(config.authentication_type ?? 'default', 'default');
      assert.equal(config.user, 'app');
      assert.equal(config.password, 'secret');
    }
  });

  it('refuses an unknown spelling instead of falling back to a SQL login, listing the ones it knows', () => {
    assert.throws(
      () => read(`${server};Authentication=Active Directory Magic;User Id=x`),
      (err: Error & { code?: string }) =>
        err.code === 'TARGET_MISCONFIGURED' &&
        /Active Directory Magic/.test(err.message) &&
        /will not fall back to a SQL login/.test(err.message) &&
        /Active Directory Managed Identity/.test(err.message),
    );
  });

  it('refuses sign-ins that need a person at a browser', () => {
    assert.throws(() => read(`${server};Authentication=Active Directory Interactive`), /person at a browser/);
    assert.throws(() => read(`${server};Authentication=Active Directory Device Code Flow`), /person at a browser/);
  });

  it('names what a service principal or password sign-in lacks', () => {
    assert.throws(
      () => read(`${server};Authentication=Active Directory Service Principal;User Id=app;Password=s`),
      /needs Tenant Id/,
    );
    assert.throws(
      () => read(`${server};Authentication=Active Directory Service Principal;Tenant Id=t`),
      /User Id \(the client id\)/,
    );
    assert.throws(
      () => read(`${server};Authentication=Active Directory Password;User Id=a;Password=p`),
      /needs Client Id/,
    );
  });
});

describe('Azure SQL TLS and timeouts', () => {
  it('refuses TrustServerCertificate=true unless the development setting allows it', () => {
    const string = `${server};User Id=app;Password=p;TrustServerCertificate=true`;
    assert.throws(
      () => read(string),
      (err: Error & { code?: string }) =>
        err.code === 'TARGET_MISCONFIGURED' && /AllowTrustServerCertificate/.test(err.message),
    );
    assert.equal((read(string, true).options as Record<string, unknown>).trustServerCertificate, true);
    assert.doesNotThrow(() => read(`${server};User Id=app;Password=p;TrustServerCertificate=false`));
  });

  it('waits well beyond the longest statement unless the string says otherwise', () => {
    assert.equal(read(server).requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS);
    assert.equal(read(`${server};Request Timeout=5000`).requestTimeout, 5000, 'the driver’s key, milliseconds');
    assert.equal(read(`${server};Command Timeout=45`).requestTimeout, 45_000, 'SqlClient’s key, seconds');
  });

  it('keeps every sp_getapplock wait well below the request timeout', () => {
    const sides = { tombstone: tombstoneTable('').name, deleteLog: 'DeleteLog' };
    const texts = [
      sinkSql.createSchemaSql('dbo'),
      sinkSql.createTableSql('dbo', tombstoneTable('')),
      sinkSql.addColumnsSql('dbo', 'account', [{ name: 'name', type: { kind: 'text' } }]),
      sinkSql.purgeTombstonesSql('dbo', sides),
      mssqlControlSql('dvexport').migrationLock().text,
    ];
    const waits = texts.flatMap((t) => [...t.matchAll(/@LockTimeout\s*=\s*(@?\w+)/g)].map((m) => m[1]));
    assert.ok(waits.length >= 3, 'the DDL and the migration take application locks');
    for (const wait of waits) {
      const ms = wait.startsWith('@') ? MIGRATION_LOCK_TIMEOUT_MS : Number(wait);
      assert.ok(
        ms * 2 <= DEFAULT_REQUEST_TIMEOUT_MS,
        `lock wait ${ms} ms against a ${DEFAULT_REQUEST_TIMEOUT_MS} ms request`,
      );
    }
  });
});
