import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AppConfig, loadConfig } from '../../lib/config.js';
import { AppError } from '../../lib/errors.js';
import { assertWithinReach, connectionSecretProblem, sourceUrlProblem } from '../../lib/profiles/profile-reach.js';

const minimal = {
  ControlStoreKind: 'postgres',
  ControlStoreConnection: 'postgres://x',
  ServiceBusConnection: 'Endpoint=sb://x',
  PayloadStorageConnection: 'UseDevelopmentStorage=true',
};
const reachOf = (settings: Record<string, string> = {}): AppConfig['profileReach'] =>
  loadConfig({ ...minimal, ...settings }).profileReach;

describe('what a profile may reach: source.url', () => {
  const reach = reachOf();

  it('accepts https on the Dataverse hosts of every Microsoft cloud', () => {
    for (const url of [
      'https://contoso.crm.dynamics.com',
      'https://contoso.crm4.dynamics.com',
      'https://contoso.crm9.dynamics.com',
      'https://CONTOSO.CRM11.DYNAMICS.COM/',
      'https://contoso.crm.microsoftdynamics.us',
      'https://contoso.crm.appsplatform.us',
      'https://contoso.crm.dynamics.cn',
    ]) {
      assert.equal(sourceUrlProblem(url, reach), undefined, url);
    }
  });

  it('refuses the metadata endpoint, plain http and hosts that are not Dataverse, saying what is allowed', () => {
    for (const [url, why] of [
      ['http://169.254.169.254', /must use https/],
      ['http://evil.example.com', /must use https/],
      ['https://evil.example.com', /evil\.example\.com is not a Dataverse host/],
      ['https://169.254.169.254', /is not a Dataverse host/],
      ['https://evildynamics.com', /is not a Dataverse host/],
      ['https://contoso.crm.dynamics.com.evil.example', /is not a Dataverse host/],
      ['http://contoso.crm.dynamics.com', /must use https/],
      ['https://user:pass@contoso.crm.dynamics.com', /carries no user name/],
    ] as const) {
      const problem = sourceUrlProblem(url, reach);
      assert.match(problem ?? '', why, url);
      assert.ok(problem?.includes(JSON.stringify(url)), `names the value: ${problem}`);
    }
    assert.match(
      sourceUrlProblem('https://evil.example.com', reach) ?? '',
      /allowed: https:\/\/<org> on \*\.dynamics\.com/,
    );
  });

  it('accepts loopback http only when AllowLoopbackDataverse is true', () => {
    for (const url of ['http://127.0.0.1:5123', 'http://localhost:5123', 'http://[::1]:5123']) {
      assert.match(sourceUrlProblem(url, reach) ?? '', /must use https/, url);
      assert.equal(sourceUrlProblem(url, reachOf({ AllowLoopbackDataverse: 'true' })), undefined, url);
    }
    // Loopback admits loopback only: the setting opens no other http host.
    assert.match(
      sourceUrlProblem('http://evil.example.com', reachOf({ AllowLoopbackDataverse: 'true' })) ?? '',
      /must use https/,
    );
  });

  it('adds the hosts of DataverseHostAllowList, still over https', () => {
    const listed = reachOf({ DataverseHostAllowList: '.proxy.contoso.example, dv.fabrikam.example' });
    assert.equal(sourceUrlProblem('https://org.proxy.contoso.example', listed), undefined);
    assert.equal(sourceUrlProblem('https://dv.fabrikam.example', listed), undefined);
    assert.match(sourceUrlProblem('http://org.proxy.contoso.example', listed) ?? '', /must use https/);
    assert.match(sourceUrlProblem('https://fabrikam.example', listed) ?? '', /not a Dataverse host/);
  });

  it('refuses a malformed AllowLoopbackDataverse at start-up', () => {
    assert.throws(
      () => reachOf({ AllowLoopbackDataverse: 'yes' }),
      /AllowLoopbackDataverse must be one of true, false/,
    );
  });
});

describe('what a profile may reach: target.connectionSecret', () => {
  it("refuses the app's own secrets by name, whatever TargetSecretNames admits", () => {
    const reach = reachOf({ PayloadPreviousKeySecretNames: 'payload-key-2025', TargetSecretNames: '*' });
    for (const name of [
      'payload-encryption-key',
      'PAYLOAD-ENCRYPTION-KEY',
      'payload-key-2025',
      'management-api-key',
      'dataverse-webhook-key',
    ]) {
      assert.match(connectionSecretProblem(name, reach) ?? '', /one of the app's own secrets/, name);
    }
    const renamed = reachOf({ PayloadKeySecretName: 'claim-check-key', ManagementKeyAccepted: 'false' });
    assert.match(connectionSecretProblem('claim-check-key', renamed) ?? '', /app's own secrets/);
    assert.match(connectionSecretProblem('management-api-key', renamed) ?? '', /app's own secrets/);
  });

  it('admits any other name by default, and only the listed names or prefixes when TargetSecretNames is set', () => {
    assert.equal(connectionSecretProblem('local-postgres', reachOf()), undefined);
    assert.equal(connectionSecretProblem('sales-db', reachOf()), undefined);
    const listed = reachOf({ TargetSecretNames: 'target-*, local-postgres' });
    assert.equal(connectionSecretProblem('target-sales', listed), undefined);
    assert.equal(connectionSecretProblem('local-postgres', listed), undefined);
    assert.match(
      connectionSecretProblem('sales-db', listed) ?? '',
      /not a target secret on this host — allowed: target-\*, local-postgres/,
    );
  });

  it('answers 400 VALIDATION_FAILED naming each field and value', () => {
    const profile = {
      source: { url: 'http://evil.example.com' },
      target: { connectionSecret: 'payload-encryption-key' },
    };
    assert.throws(
      () => assertWithinReach(profile, reachOf()),
      (err: unknown) => {
        assert.ok(err instanceof AppError);
        assert.equal(err.code, 'VALIDATION_FAILED');
        assert.equal(err.status, 400);
        assert.deepEqual(
          err.details.map((d) => [d.field, d.value]),
          [
            ['/source/url', 'http://evil.example.com'],
            ['/target/connectionSecret', 'payload-encryption-key'],
          ],
        );
        assert.match(err.message, /\/source\/url: "http:\/\/evil\.example\.com" is not allowed/);
        return true;
      },
    );
  });
});
