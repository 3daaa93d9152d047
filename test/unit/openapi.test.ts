import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { openApiDocument } from '../../lib/api/openapi.js';
import { profileStatus } from '../../lib/api/profile-status.js';
import { methodsOf, ROUTES } from '../../lib/api/routes.js';
import { AppError } from '../../lib/errors.js';
import type { EntityStatus } from '../../lib/profiles/control-store.js';
import { type ExportProfile, profileInputSchema, withDefaults } from '../../lib/profiles/schema.js';
import { validateProfileInput } from '../../lib/profiles/validate.js';

type Json = Record<string, unknown>;

const doc = openApiDocument() as Json & { paths: Record<string, Json>; components: Json & { schemas: Json } };
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

/** Every route of the route table, as [method, path], and the console's own. */
const ROUTE_LIST: [string, string][] = [
  ...ROUTES.flatMap((r) => methodsOf(r).map((m): [string, string] => [m.toLowerCase(), `/api/${r.route}`])),
  ['get', '/api/audit'],
  ['get', '/api/me'],
  ['get', '/api/organizations/catalog'],
  ['get', '/api/admin/{path}'],
];

function resolve(pointer: string): unknown {
  assert.ok(pointer.startsWith('#/'), `local reference: ${pointer}`);
  let node: unknown = doc;
  for (const raw of pointer.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    assert.ok(node && typeof node === 'object' && key in node, `${pointer} resolves (missing '${key}')`);
    node = (node as Json)[key];
  }
  return node;
}

function collectRefs(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const item of node) collectRefs(item, out);
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') out.push(value);
      else collectRefs(value, out);
    }
  }
  return out;
}

function operations(): { path: string; method: string; op: Json; pathItem: Json }[] {
  return Object.entries(doc.paths).flatMap(([path, pathItem]) =>
    METHODS.filter((m) => m in pathItem).map((method) => ({ path, method, op: pathItem[method] as Json, pathItem })),
  );
}

/** Ajv for the 2020-12 dialect OpenAPI 3.1 uses, with the document's schemas addressable by pointer. */
function schemaValidator() {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  ajv.addSchema({ $id: 'https://dataverse-export.test/openapi.json', components: { schemas: doc.components.schemas } });
  return (name: string, data: unknown) => {
    const validate = ajv.getSchema(`https://dataverse-export.test/openapi.json#/components/schemas/${name}`);
    assert.ok(validate, `schema ${name} compiles`);
    const ok = validate(data);
    return { ok, errors: validate.errors };
  };
}

function storedProfile(): ExportProfile {
  const input = validateProfileInput({
    name: 'Sales to SQL',
    organizationId: '6F2D1C3E-1A2B-4C5D-8E9F-0A1B2C3D4E5F',
    source: { url: 'https://contoso.crm.dynamics.com/' },
    target: { kind: 'postgres', connectionSecret: 'sales-db' },
    entities: ['account', 'contact'],
  });
  return {
    id: '3b1c2d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d',
    ...withDefaults(input),
    state: 'Active',
    createdOn: '2026-11-05T09:00:00.000Z',
    modifiedOn: '2026-11-05T09:10:00.000Z',
  };
}

describe('openApiDocument', () => {
  it('is an OpenAPI 3.1 document that survives JSON serialisation', () => {
    assert.equal(doc.openapi, '3.1.0');
    const info = doc.info as Json;
    assert.equal(typeof info.title, 'string');
    assert.equal(typeof info.version, 'string');
    assert.deepEqual(JSON.parse(JSON.stringify(doc)), doc);
  });

  it('describes every route, each operation with an id and responses', () => {
    for (const [method, path] of ROUTE_LIST) {
      assert.ok(doc.paths[path]?.[method], `${method.toUpperCase()} ${path} is described`);
    }
    const ops = operations();
    assert.equal(ops.length, ROUTE_LIST.length, 'no undocumented extras');
    const ids = ops.map(({ op }) => op.operationId);
    assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
    for (const { path, method, op } of ops) {
      assert.equal(typeof op.operationId, 'string', `${method} ${path} has an operationId`);
      const codes = Object.keys(op.responses as Json);
      assert.ok(codes.length > 0 && codes.every((c) => /^[1-5]\d\d$/.test(c)), `${method} ${path}: ${codes}`);
    }
  });

  it('declares every path template parameter as a required path parameter', () => {
    for (const { path, method, op, pathItem } of operations()) {
      const declared = [...((pathItem.parameters as Json[]) ?? []), ...((op.parameters as Json[]) ?? [])]
        .map((p) => (typeof p.$ref === 'string' ? (resolve(p.$ref) as Json) : p))
        .filter((p) => p.in === 'path');
      const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      assert.deepEqual(declared.map((p) => p.name).sort(), templated.sort(), `${method} ${path}`);
      for (const p of declared) assert.equal(p.required, true);
    }
  });

  it('resolves every $ref', () => {
    const refs = collectRefs(doc);
    assert.ok(refs.length > 20);
    for (const ref of refs) assert.ok(resolve(ref) !== undefined, ref);
  });

  it('guards every route but health and the console with a signed-in principal, x-functions-key or ?code=', () => {
    const schemes = doc.components.securitySchemes as Json;
    assert.deepEqual(schemes.functionKey, { type: 'apiKey', in: 'header', name: 'x-functions-key' });
    assert.deepEqual(schemes.functionKeyQuery, { type: 'apiKey', in: 'query', name: 'code' });
    assert.equal((schemes.appServicePrincipal as Json).name, 'x-ms-client-principal');
    assert.deepEqual(doc.security, [{ appServicePrincipal: [] }, { functionKey: [] }, { functionKeyQuery: [] }]);
    for (const { path, op } of operations()) {
      if (path === '/api/health' || path === '/api/admin/{path}') assert.deepEqual(op.security, []);
      else assert.equal(op.security, undefined, `${path} inherits the keyed default`);
    }
  });

  it('publishes the validator schema itself as ProfileInput', () => {
    const { $id: _id, ...withoutId } = profileInputSchema;
    assert.deepEqual(doc.components.schemas.ProfileInput, withoutId);
    const body = (doc.paths['/api/profiles'].post as Json).requestBody as Json;
    assert.deepEqual(body, {
      required: true,
      content: { 'application/json': { schema: { $ref: '#/components/schemas/ProfileInput' } } },
    });
  });

  it('accepts what ajv accepts and rejects what it rejects', () => {
    const check = schemaValidator();
    const accepted = {
      name: 'Sales to SQL',
      organizationId: '6f2d1c3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f',
      source: { url: 'https://contoso.crm.dynamics.com' },
      target: { kind: 'mssql', connectionSecret: 'sales-db', schema: 'dbo', tablePrefix: 'crm' },
      entities: ['account', 'contact'],
      relationships: ['accountleads'],
      options: { writeDeleteLog: false, retryCount: 3, retryIntervalSeconds: 10, initialSync: false },
    };
    validateProfileInput(accepted);
    assert.deepEqual(check('ProfileInput', accepted), { ok: true, errors: null });
    const rejected = { ...accepted, options: { retryCount: 101 } };
    assert.throws(() => validateProfileInput(rejected), { code: 'VALIDATION_FAILED' });
    assert.equal(check('ProfileInput', rejected).ok, false);
  });

  it('describes the shapes the API returns', () => {
    const check = schemaValidator();
    const profile = storedProfile();
    assert.deepEqual(check('ExportProfile', profile), { ok: true, errors: null });
    assert.equal(check('ExportProfile', { ...profile, state: 'Paused' }).ok, false);
    const activation = { ...profile, initialSync: { instanceId: 'abc', full: false, entities: ['account'] } };
    assert.deepEqual(check('ActivationResult', activation), { ok: true, errors: null });

    const copying: EntityStatus = {
      entity: 'account',
      syncState: 'InProgress',
      rowsCopied: 5000,
      rowsEstimated: 20000,
      syncStartedAt: '2026-11-05T09:00:00.000Z',
      syncCompletedAt: null,
      lastError: null,
      received: 10,
      applied: 8,
      stale: 1,
      failed: 1,
      lastAppliedAt: '2026-11-05T09:00:30.000Z',
      lastLagMs: 420,
      meanLagMs: 380.5,
    };
    const waiting: EntityStatus = { ...copying, entity: 'contact', syncState: 'Queued', rowsCopied: 0 };
    const status = profileStatus(profile, [copying, waiting], new Date('2026-11-05T09:01:00.000Z'));
    assert.deepEqual(check('ProfileStatus', JSON.parse(JSON.stringify(status))), { ok: true, errors: null });

    const error = new AppError('VALIDATION_FAILED', 'bad', { details: [{ field: '/name', message: 'x', value: 1 }] });
    assert.deepEqual(check('Error', error.toJSON()), { ok: true, errors: null });
    const failure = {
      profileId: profile.id,
      entity: 'account',
      recordId: '0b7c4f2e-0000-0000-0000-000000000001',
      changeType: 'upsert',
      time: '2026-11-05T09:05:00.000Z',
      reason: 'value too long',
      code: 'TARGET_PERMANENT',
      attempts: 12,
    };
    assert.deepEqual(check('Failure', failure), { ok: true, errors: null });
  });
});
