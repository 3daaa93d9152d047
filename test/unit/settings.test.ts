import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { loadConfig, SETTINGS } from '../../lib/config.js';

const sample = JSON.parse(readFileSync(new URL('../../../local.settings.sample.json', import.meta.url), 'utf8'));
const minimal = {
  ControlStoreKind: 'postgres',
  ControlStoreConnection: 'postgres://x',
  ServiceBusConnection: 'Endpoint=sb://x',
  PayloadStorageConnection: 'UseDevelopmentStorage=true',
};

describe('settings', () => {
  it('documents every setting the code reads in local.settings.sample.json', () => {
    for (const s of SETTINGS) {
      assert.ok(s.name in sample.Values, `local.settings.sample.json lacks Values.${s.name}`);
      assert.ok(sample.Documentation[s.name], `local.settings.sample.json lacks Documentation.${s.name}`);
    }
  });

  it('documents every setting in the README table', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    for (const s of SETTINGS) assert.ok(readme.includes(`\`${s.name}\``), `README lacks the setting ${s.name}`);
  });

  it('reads the sample file as a valid configuration', () => {
    const config = loadConfig(sample.Values);
    assert.equal(config.controlStore.kind, 'postgres');
    assert.equal(config.claimCheckThresholdBytes, 196608);
    assert.equal(config.failureLogRetentionDays, 30);
  });

  it('fails fast naming every missing required setting', () => {
    assert.throws(
      () => loadConfig({}),
      (err: Error & { code?: string; details?: { field: string }[] }) => {
        assert.equal(err.code, 'CONFIG_INVALID');
        const fields = err.details?.map((d) => d.field);
        assert.deepEqual(fields, [
          'ControlStoreKind',
          'ControlStoreConnection',
          'ServiceBusConnection',
          'PayloadStorageConnection',
        ]);
        assert.match(err.message, /ControlStoreKind is required/);
        return true;
      },
    );
  });

  it('accepts identity-based connection settings instead of connection strings', () => {
    const config = loadConfig({
      ...minimal,
      ServiceBusConnection: undefined,
      PayloadStorageConnection: undefined,
      ServiceBusConnection__fullyQualifiedNamespace: 'ns.servicebus.windows.net',
      PayloadStorageConnection__blobServiceUri: 'https://acct.blob.core.windows.net',
    });
    assert.equal(config.serviceBus.fullyQualifiedNamespace, 'ns.servicebus.windows.net');
    assert.equal(config.payloadStorage.blobServiceUri, 'https://acct.blob.core.windows.net');
  });

  it('rejects malformed values naming the setting and the value', () => {
    assert.throws(
      () => loadConfig({ ...minimal, ClaimCheckThresholdBytes: 'big' }),
      /ClaimCheckThresholdBytes must be an integer ≥ 1024, got "big"/,
    );
    assert.throws(
      () => loadConfig({ ...minimal, ControlStoreKind: 'oracle' }),
      /ControlStoreKind must be one of postgres, mssql, got "oracle"/,
    );
  });
});
