import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseWebhook } from '../../lib/dataverse/webhook/parse.js';
import { AppError, type ErrorCode } from '../../lib/errors.js';

function fixture(name: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return readFileSync(join(dir, 'test', 'fixtures', 'webhooks', name), 'utf8');
}

// biome-ignore lint/suspicious/noExplicitAny: tests edit raw payloads freely
type Json = any;

/** A fixture with one edit applied, as text. */
function edited(name: string, edit: (body: Json) => void): string {
  const body = JSON.parse(fixture(name));
  edit(body);
  return JSON.stringify(body);
}

const cases: Array<{ name: string; body: () => string; code: ErrorCode; field: string }> = [
  { name: 'malformed JSON', body: () => '{"OrganizationId": ', code: 'MALFORMED_JSON', field: 'body' },
  { name: 'a trailing comma', body: () => '{"a": 1.5,}', code: 'MALFORMED_JSON', field: 'body' },
  { name: 'a number with a leading zero', body: () => '{"a": 01.5}', code: 'MALFORMED_JSON', field: 'body' },
  { name: 'an array body', body: () => '[]', code: 'VALIDATION_FAILED', field: 'body' },
  {
    name: 'a missing OrganizationId',
    body: () => edited('update-contact-partial.json', (b) => delete b.OrganizationId),
    code: 'VALIDATION_FAILED',
    field: 'OrganizationId',
  },
  {
    name: 'a bad GUID for OrganizationId',
    body: () => edited('update-contact-partial.json', (b) => (b.OrganizationId = 'not-a-guid')),
    code: 'VALIDATION_FAILED',
    field: 'OrganizationId',
  },
  {
    name: 'a bad GUID in the Target id',
    body: () => edited('update-contact-partial.json', (b) => (b.InputParameters[0].value.Id = '6d81597f')),
    code: 'VALIDATION_FAILED',
    field: 'InputParameters.Target.Id',
  },
  {
    name: 'a bad GUID in a lookup',
    body: () => edited('update-contact-partial.json', (b) => (b.InputParameters[0].value.Attributes[3].value.Id = 'x')),
    code: 'VALIDATION_FAILED',
    field: 'InputParameters.Target.Attributes[3].value.Id',
  },
  {
    name: 'an OperationCreatedOn that is not a /Date()/',
    body: () => edited('update-contact-partial.json', (b) => (b.OperationCreatedOn = '2024-01-01T00:00:00Z')),
    code: 'VALIDATION_FAILED',
    field: 'OperationCreatedOn',
  },
  {
    name: 'an attribute without a key',
    body: () => edited('update-contact-partial.json', (b) => delete b.InputParameters[0].value.Attributes[1].key),
    code: 'VALIDATION_FAILED',
    field: 'InputParameters.Target.Attributes[1].key',
  },
  {
    name: 'an attribute key that is SQL',
    body: () =>
      edited(
        'update-contact-partial.json',
        (b) => (b.InputParameters[0].value.Attributes[3].key = 'name; DROP TABLE x'),
      ),
    code: 'ILLEGAL_IDENTIFIER',
    field: 'InputParameters.Target.Attributes[3].key',
  },
  {
    name: 'an attribute key in a post-image with capitals',
    body: () =>
      edited('update-contact-partial.json', (b) => (b.PostEntityImages[0].value.Attributes[0].key = 'FullName')),
    code: 'ILLEGAL_IDENTIFIER',
    field: 'PostEntityImages[0].value.Attributes[0].key',
  },
  {
    name: 'an entity name with capitals',
    body: () =>
      edited('update-contact-partial.json', (b) => {
        b.PrimaryEntityName = 'Contact';
        b.InputParameters[0].value.LogicalName = 'Contact';
      }),
    code: 'ILLEGAL_IDENTIFIER',
    field: 'InputParameters.Target.LogicalName',
  },
  {
    name: 'an entity name with spaces in a stripped payload',
    body: () => edited('update-oversized-stripped.json', (b) => (b.PrimaryEntityName = 'my account')),
    code: 'ILLEGAL_IDENTIFIER',
    field: 'PrimaryEntityName',
  },
  {
    name: 'a Target of another entity than PrimaryEntityName',
    body: () => edited('update-contact-partial.json', (b) => (b.InputParameters[0].value.LogicalName = 'account')),
    code: 'VALIDATION_FAILED',
    field: 'InputParameters.Target.LogicalName',
  },
  {
    name: 'a lookup to an illegal entity name',
    body: () =>
      edited(
        'update-contact-partial.json',
        (b) => (b.InputParameters[0].value.Attributes[3].value.LogicalName = 'sys user'),
      ),
    code: 'ILLEGAL_IDENTIFIER',
    field: 'InputParameters.Target.Attributes[3].value.LogicalName',
  },
  {
    name: 'a Money without a number',
    body: () =>
      edited('update-contact-partial.json', (b) => {
        b.InputParameters[0].value.Attributes[0].value = { __type: 'Money:http://x', Value: 'ten' };
      }),
    code: 'VALIDATION_FAILED',
    field: 'InputParameters.Target.Attributes[0].value.Value',
  },
  {
    name: 'a RowVersion that is not a number',
    body: () => edited('update-contact-partial.json', (b) => (b.InputParameters[0].value.RowVersion = 'abc')),
    code: 'VALIDATION_FAILED',
    field: 'InputParameters.Target.RowVersion',
  },
  {
    name: 'a Delete Target that is not an EntityReference',
    body: () => edited('delete-account.json', (b) => (b.InputParameters[0].value = 'account')),
    code: 'VALIDATION_FAILED',
    field: 'InputParameters.Target',
  },
  {
    name: 'a relationship name with a space',
    body: () => edited('associate-accountleads.json', (b) => (b.InputParameters[1].value.SchemaName = 'account leads')),
    code: 'ILLEGAL_IDENTIFIER',
    field: 'InputParameters.Relationship.SchemaName',
  },
  {
    name: 'an Associate without RelatedEntities',
    body: () => edited('associate-accountleads.json', (b) => b.InputParameters.pop()),
    code: 'VALIDATION_FAILED',
    field: 'InputParameters.RelatedEntities',
  },
  {
    name: 'a related record with a bad GUID',
    body: () => edited('associate-accountleads.json', (b) => (b.InputParameters[2].value[1].Id = '{nope}')),
    code: 'VALIDATION_FAILED',
    field: 'InputParameters.RelatedEntities[1].Id',
  },
  {
    name: 'an empty PrimaryEntityId on a stripped payload',
    body: () =>
      edited('update-oversized-stripped.json', (b) => (b.PrimaryEntityId = '00000000-0000-0000-0000-000000000000')),
    code: 'VALIDATION_FAILED',
    field: 'PrimaryEntityId',
  },
];

describe('parseWebhook rejects bad input with a code and the field', () => {
  for (const c of cases) {
    it(`${c.name} → ${c.code} at ${c.field}`, () => {
      assert.throws(
        () => parseWebhook(c.body(), {}),
        (err: unknown) => {
          assert.ok(err instanceof AppError, `expected AppError, got ${err}`);
          assert.equal(err.code, c.code, err.message);
          assert.equal(err.status, 400);
          assert.equal(err.details[0]?.field, c.field, err.message);
          if (c.field !== 'body') assert.ok(err.message.includes(c.field), err.message);
          return true;
        },
      );
    });
  }
});

describe('parseWebhook ignores what it does not export', () => {
  it('ignores other messages with a reason instead of failing', () => {
    const parsed = parseWebhook(
      edited('update-contact-partial.json', (b) => (b.MessageName = 'Retrieve')),
      {},
    );
    assert.deepEqual(parsed.changes, []);
    assert.match(parsed.ignored!, /Retrieve is not exported/);
    assert.equal(parsed.organizationId, '4ef5b371-e89e-e711-8122-000d3aa2331c');
  });

  it('ignores an unsupported message without looking at its parameters', () => {
    const parsed = parseWebhook(
      edited('update-contact-partial.json', (b) => {
        b.MessageName = 'SetState';
        b.InputParameters[0].value.Attributes[0].key = 'Bad Key';
      }),
      {},
    );
    assert.match(parsed.ignored!, /SetState/);
  });

  it('ignores steps registered before the operation (PreOperation)', () => {
    const parsed = parseWebhook(
      edited('update-contact-partial.json', (b) => (b.Stage = 20)),
      {},
    );
    assert.deepEqual(parsed.changes, []);
    assert.match(parsed.ignored!, /PostOperation \(40\)/);
  });
});
