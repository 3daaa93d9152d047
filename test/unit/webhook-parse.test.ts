import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseWebhook } from '../../lib/dataverse/webhook/parse.js';

/** Fixtures stay in the source tree; find it from wherever the compiled test runs. */
function fixture(name: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return readFileSync(join(dir, 'test', 'fixtures', 'webhooks', name), 'utf8');
}

const ORG = '6042beb1-a93a-ef11-8e4b-00224802c699';
const ACCOUNT = '0f9a4b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b';

describe('parseWebhook: Create with every typed value', () => {
  const parsed = parseWebhook(fixture('create-account.json'), {});
  const [change] = parsed.changes;

  it('reads the envelope and lower-cases its GUIDs', () => {
    assert.equal(parsed.organizationId, ORG);
    assert.equal(parsed.correlationId, 'e1bcd028-ae87-4ca6-af27-a17ee680dbc9');
    assert.equal(parsed.messageName, 'Create');
    assert.equal(parsed.primaryEntityName, 'account');
    assert.equal(parsed.ignored, undefined);
    assert.equal(parsed.changes.length, 1);
  });

  it('produces one upsert with the operation time and the post-image version', () => {
    assert.equal(change.entity, 'account');
    assert.equal(change.recordId, ACCOUNT);
    assert.equal(change.operation, 'upsert');
    assert.equal(change.source, 'webhook');
    assert.equal(change.messageName, 'Create');
    assert.equal(change.correlationId, 'e1bcd028-ae87-4ca6-af27-a17ee680dbc9');
    assert.equal(change.operationTime, '2023-11-14T22:13:21.000Z');
    assert.deepEqual(change.version, { rowVersion: '12345678901', modifiedOn: '2023-11-14T22:13:20.000Z' });
    assert.equal(change.needsReread, undefined);
  });

  it('converts every typed value exactly', () => {
    const a = change.attributes!;
    assert.deepEqual(a.name, { type: 'string', value: 'Contoso "Europe" / Ltd é' });
    assert.deepEqual(a.accountid, { type: 'guid', value: ACCOUNT });
    assert.deepEqual(a.numberofemployees, { type: 'int', value: 250 });
    assert.deepEqual(a.new_bignumber, { type: 'bigint', value: '9223372036854775807' });
    assert.deepEqual(a.new_precise, { type: 'decimal', value: '12345678901234567890.1234567891' });
    assert.deepEqual(a.new_small, { type: 'decimal', value: '0.1' });
    assert.deepEqual(a.new_exponent, { type: 'decimal', value: '150000000000000000000' });
    assert.deepEqual(a.new_tiny, { type: 'decimal', value: '-0.00000025' });
    assert.deepEqual(a.revenue, { type: 'money', value: '1234567.8900' });
    assert.deepEqual(a.creditlimit, { type: 'money', value: '5000' });
    assert.deepEqual(a.address1_latitude, { type: 'decimal', value: '47.6062' });
    assert.deepEqual(a.donotemail, { type: 'boolean', value: false });
    assert.deepEqual(a.donotphone, { type: 'boolean', value: true });
    assert.deepEqual(a.createdon, { type: 'datetime', value: '2023-11-14T22:13:20.000Z' });
    assert.deepEqual(a.new_founded, { type: 'datetime', value: '1969-12-31T00:00:00.000Z' });
    assert.deepEqual(a.primarycontactid, {
      type: 'lookup',
      value: '6d81597f-0f9f-e711-8122-000d3aa2331c',
      entityType: 'contact',
    });
    assert.deepEqual(a.industrycode, { type: 'optionset', value: 7 });
    assert.deepEqual(a.statecode, { type: 'optionset', value: 0 });
    assert.deepEqual(a.new_regions, { type: 'multiselect', value: [1, 3] });
    assert.deepEqual(a.new_colors, { type: 'multiselect', value: [2] });
    assert.deepEqual(a.new_nochoices, { type: 'multiselect', value: [] });
    assert.deepEqual(a.new_aliased, { type: 'string', value: 'Aliased' });
    assert.deepEqual(a.description, { type: 'null' });
  });

  it('keeps versionnumber out of the attributes and skips what it cannot represent, with a warning', () => {
    const a = change.attributes!;
    assert.equal(a.versionnumber, undefined);
    assert.equal(a.entityimage, undefined);
    assert.equal(a.new_managed, undefined);
    assert.equal(parsed.warnings.length, 2);
    assert.match(parsed.warnings[0], /entityimage/);
    assert.match(parsed.warnings[1], /BooleanManagedProperty/);
  });
});

describe('parseWebhook: party lists', () => {
  const parsed = parseWebhook(fixture('create-phonecall-partylist.json'), {});
  const [change] = parsed.changes;

  it('turns an EntityCollection of activity parties into a party list of partyid lookups', () => {
    assert.deepEqual(change.attributes!.from, {
      type: 'partylist',
      value: [{ id: 'd89254ff-9438-ef11-a315-000d3a5a54dc', entityType: 'systemuser' }],
    });
    assert.deepEqual(change.attributes!.to, {
      type: 'partylist',
      value: [{ id: 'a76c0a41-4dec-ea11-a2d1-00155d04e323', entityType: 'contact' }],
    });
    assert.match(parsed.warnings.join('\n'), /Entities\[1\]: skipped a party without a partyid/);
  });

  it("takes the version from the Target's RowVersion when there is no post-image", () => {
    assert.deepEqual(change.version, { rowVersion: '147059704', modifiedOn: '2024-08-26T19:43:14.000Z' });
  });
});

describe('parseWebhook: Update', () => {
  it('merges a partial Target with a partial post-image; the post-image wins on version', () => {
    const parsed = parseWebhook(fixture('update-contact-partial.json'), {});
    assert.equal(parsed.changes.length, 1);
    const [change] = parsed.changes;
    assert.equal(change.operation, 'upsert');
    assert.equal(change.entity, 'contact');
    assert.equal(change.recordId, '6d81597f-0f9f-e711-8122-000d3aa2331c');
    assert.deepEqual(change.version, { rowVersion: '5948261', modifiedOn: '2017-09-26T00:04:07.000Z' });
    assert.deepEqual(Object.keys(change.attributes!).sort(), [
      'contactid',
      'firstname',
      'fullname',
      'modifiedby',
      'modifiedon',
      'modifiedonbehalfby',
    ]);
    assert.deepEqual(change.attributes!.fullname, { type: 'string', value: 'James Glynn (sample)' });
    assert.deepEqual(change.attributes!.modifiedonbehalfby, { type: 'null' });
  });

  it('ignores ParentContext (even one that would not validate) and reads times with an offset as UTC', () => {
    const parsed = parseWebhook(fixture('update-with-parent-context.json'), {});
    const [change] = parsed.changes;
    assert.equal(change.operationTime, '2017-09-26T07:04:08.000Z');
    assert.deepEqual(change.version, { modifiedOn: '2017-09-26T00:04:07.000Z' });
    assert.deepEqual(change.attributes!.birthdate, { type: 'datetime', value: '1980-01-01T00:00:00.000Z' });
    assert.deepEqual(change.attributes!.lastname, { type: 'string', value: 'Glynn' });
  });

  it('marks a stripped payload (size header) for a re-read, from PrimaryEntityName and PrimaryEntityId', () => {
    const parsed = parseWebhook(fixture('update-oversized-stripped.json'), { 'X-MS-Dynamics-Msg-Size-Exceeded': '' });
    assert.deepEqual(parsed.changes, [
      {
        organizationId: ORG,
        entity: 'account',
        recordId: ACCOUNT,
        operation: 'upsert',
        version: {},
        operationTime: '2023-11-14T22:26:40.000Z',
        needsReread: true,
        correlationId: '9f4a2e6c-ac73-4a2a-9c2a-7e3d0f8a5a43',
        source: 'webhook',
        messageName: 'Update',
      },
    ]);
  });

  it('marks a re-read when the size header is set even if a Target is present', () => {
    const [change] = parseWebhook(fixture('update-contact-partial.json'), {
      'x-ms-dynamics-msg-size-exceeded': 'true',
    }).changes;
    assert.equal(change.needsReread, true);
    assert.ok(change.attributes);
  });

  it('marks a re-read when the Target lacks its attributes', () => {
    const body = JSON.parse(fixture('update-with-parent-context.json'));
    body.InputParameters[0].value.Attributes = [];
    const [change] = parseWebhook(JSON.stringify(body), {}).changes;
    assert.equal(change.needsReread, true);
    assert.equal(change.attributes, undefined);
  });

  it('does not treat a size header of "false" as set', () => {
    const [change] = parseWebhook(fixture('update-contact-partial.json'), {
      'x-ms-dynamics-msg-size-exceeded': 'false',
    }).changes;
    assert.equal(change.needsReread, undefined);
  });
});

describe('parseWebhook: Delete', () => {
  it("carries the operation time as modifiedOn and the pre-image's versionnumber", () => {
    const parsed = parseWebhook(fixture('delete-account.json'), {});
    assert.deepEqual(parsed.changes, [
      {
        organizationId: ORG,
        entity: 'account',
        recordId: ACCOUNT,
        operation: 'delete',
        version: { rowVersion: '12345679999', modifiedOn: '2023-11-14T22:21:40.000Z' },
        operationTime: '2023-11-14T22:21:40.000Z',
        correlationId: '0c6a1f7e-2b7d-4a41-9a57-0e2f6f1b7c11',
        source: 'webhook',
        messageName: 'Delete',
      },
    ]);
  });

  it('carries only the operation time without a pre-image', () => {
    const body = JSON.parse(fixture('delete-account.json'));
    body.PreEntityImages = [];
    const [change] = parseWebhook(JSON.stringify(body), {}).changes;
    assert.deepEqual(change.version, { modifiedOn: '2023-11-14T22:21:40.000Z' });
  });
});

describe('parseWebhook: Associate and Disassociate', () => {
  it('produces one relationship change per related record, keyed <entity1id>:<entity2id>', () => {
    const parsed = parseWebhook(fixture('associate-accountleads.json'), {});
    assert.equal(parsed.changes.length, 2);
    const [first, second] = parsed.changes;
    assert.deepEqual(first, {
      organizationId: ORG,
      entity: 'accountleads_association',
      recordId: `${ACCOUNT}:11111111-2222-4333-8444-555555555555`,
      operation: 'associate',
      version: { modifiedOn: '2023-11-14T22:23:20.000Z' },
      operationTime: '2023-11-14T22:23:20.000Z',
      relationship: {
        name: 'accountleads_association',
        entity1: { logicalName: 'account', id: ACCOUNT },
        entity2: { logicalName: 'lead', id: '11111111-2222-4333-8444-555555555555' },
      },
      correlationId: '7d2f0c4a-8a51-4e0e-9a0e-5c1b8d6f3e21',
      source: 'webhook',
      messageName: 'Associate',
    });
    assert.equal(second.recordId, `${ACCOUNT}:aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee`);
  });

  it('gives the same key when the association is undone from the other side', () => {
    const [change] = parseWebhook(fixture('disassociate-accountleads.json'), {}).changes;
    assert.equal(change.operation, 'disassociate');
    assert.equal(change.recordId, `${ACCOUNT}:11111111-2222-4333-8444-555555555555`);
    assert.equal(change.relationship!.entity1.logicalName, 'account');
  });

  it('orders the pair as the relationship metadata says when told', () => {
    const [change] = parseWebhook(
      fixture('associate-accountleads.json'),
      {},
      {
        relationshipEntities: (name) => (name === 'accountleads_association' ? ['lead', 'account'] : undefined),
      },
    ).changes;
    assert.equal(change.recordId, `11111111-2222-4333-8444-555555555555:${ACCOUNT}`);
    assert.equal(change.relationship!.entity1.logicalName, 'lead');
  });

  it('ignores, with a reason, an association whose parameters were stripped', () => {
    const body = JSON.parse(fixture('associate-accountleads.json'));
    delete body.InputParameters;
    const parsed = parseWebhook(JSON.stringify(body), { 'x-ms-dynamics-msg-size-exceeded': '' });
    assert.deepEqual(parsed.changes, []);
    assert.match(parsed.ignored!, /256 KB/);
  });
});
