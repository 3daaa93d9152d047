import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError, type ErrorDetail } from '../../lib/errors.js';
import { validateProfileInput } from '../../lib/profiles/validate.js';

/** The example of docs/architecture.md §3. */
function sample(): Record<string, unknown> {
  return {
    name: 'Sales to SQL',
    organizationId: '6f2d1c3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f',
    source: { url: 'https://contoso.crm.dynamics.com' },
    target: { kind: 'postgres', connectionSecret: 'sales-db', schema: 'public', tablePrefix: '' },
    entities: ['account', 'contact'],
    relationships: ['accountleads'],
    options: {
      writeDeleteLog: true,
      retryCount: 12,
      retryIntervalSeconds: 5,
      initialSync: true,
      registerWebhook: true,
      enableChangeTracking: false,
    },
  };
}

/** Runs the validator and returns the VALIDATION_FAILED it throws. */
function rejection(body: unknown): AppError {
  try {
    validateProfileInput(body);
  } catch (err) {
    assert.ok(err instanceof AppError, 'throws an AppError');
    assert.equal(err.code, 'VALIDATION_FAILED');
    assert.equal(err.status, 400);
    return err;
  }
  assert.fail('the body was accepted');
}

function detailAt(error: AppError, field: string): ErrorDetail {
  const detail = error.details.find((d) => d.field === field);
  assert.ok(detail, `a detail names ${field}; got ${JSON.stringify(error.details)}`);
  return detail;
}

describe('validateProfileInput', () => {
  it('accepts the documented example unchanged', () => {
    const body = sample();
    assert.deepEqual(validateProfileInput(body), sample());
  });

  it('accepts the minimal profile (optional parts left to defaults)', () => {
    const { relationships: _r, options: _o, ...minimal } = sample();
    minimal.target = { kind: 'mssql', connectionSecret: 'x' };
    assert.deepEqual(validateProfileInput(minimal), minimal);
  });

  it('names an unknown option and lists the allowed ones', () => {
    const body = sample();
    body.options = { writeDeleteLog: true, foo: 1 };
    const error = rejection(body);
    const detail = detailAt(error, '/options/foo');
    assert.match(
      detail.message,
      /unknown property `foo` at \/options — allowed: writeDeleteLog, retryCount, retryIntervalSeconds, initialSync/,
    );
    assert.equal(detail.value, 1);
    assert.match(error.message, /\/options\/foo: unknown property `foo`/);
  });

  it('names an unknown top-level property', () => {
    const body = { ...sample(), entity: ['account'] };
    const detail = detailAt(rejection(body), '/entity');
    assert.match(detail.message, /unknown property `entity` at \/ — allowed: name, organizationId, source, target/);
  });

  it('rejects an organization id that is not a GUID, showing the value', () => {
    const body = { ...sample(), organizationId: 'contoso' };
    const detail = detailAt(rejection(body), '/organizationId');
    assert.equal(detail.value, 'contoso');
    assert.match(detail.message, /"contoso" is not allowed — expected a GUID/);
  });

  it('rejects an entity name that is not a logical name, by index', () => {
    const body = { ...sample(), entities: ['account', 'Contact', 'x;drop table y'] };
    const error = rejection(body);
    assert.equal(detailAt(error, '/entities/1').value, 'Contact');
    assert.match(detailAt(error, '/entities/1').message, /\^\[a-z_\]\[a-z0-9_\]\{0,127\}\$/);
    assert.equal(detailAt(error, '/entities/2').value, 'x;drop table y');
  });

  it('rejects a retry count out of range, naming the allowed range', () => {
    const body = sample();
    body.options = { retryCount: 500 };
    const detail = detailAt(rejection(body), '/options/retryCount');
    assert.equal(detail.value, 500);
    assert.match(detail.message, /500 is out of range — allowed: 0 to 100/);
  });

  it('rejects a target kind outside the enum, listing the kinds', () => {
    const body = sample();
    body.target = { kind: 'oracle', connectionSecret: 'db' };
    assert.match(
      detailAt(rejection(body), '/target/kind').message,
      /"oracle" is not allowed — allowed: postgres, mssql/,
    );
  });

  it('names each missing required property', () => {
    const error = rejection({ source: { url: 'https://contoso.crm.dynamics.com' } });
    for (const field of ['/name', '/organizationId', '/target', '/entities']) {
      assert.match(detailAt(error, field).message, /required property/);
    }
  });

  it('reports every problem of a body at once', () => {
    const body = {
      ...sample(),
      organizationId: 'nope',
      entities: [],
      extra: true,
      options: { retryIntervalSeconds: 0 },
    };
    const error = rejection(body);
    assert.deepEqual(error.details.map((d) => d.field).sort(), [
      '/entities',
      '/extra',
      '/options/retryIntervalSeconds',
      '/organizationId',
    ]);
    assert.match(error.message, /4 problems/);
  });

  it('rejects a wrong type and a duplicated entity', () => {
    const body = sample();
    body.options = { writeDeleteLog: 'yes' };
    body.entities = ['account', 'account'];
    const error = rejection(body);
    assert.match(detailAt(error, '/options/writeDeleteLog').message, /"yes" is not allowed — expected a boolean/);
    assert.match(detailAt(error, '/entities/1').message, /listed twice/);
  });

  it('rejects a body that is not an object', () => {
    assert.match(detailAt(rejection([1, 2]), '/').message, /expected an object/);
    assert.match(detailAt(rejection(null), '/').message, /expected an object/);
  });
});
