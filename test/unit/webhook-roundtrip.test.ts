import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  buildRemoteExecutionContext,
  type RemoteExecutionContextInput,
  serializeRemoteExecutionContext,
} from '../../dev/dataverse-payloads.js';
import type { AttributeValue, ChangeEvent } from '../../lib/change/change-event.js';
import { parseWebhook } from '../../lib/dataverse/webhook/parse.js';

/** mulberry32: a small seeded generator, so a failure names a reproducible seed. */
function random(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const pick = <T>(items: readonly T[]): T => items[int(0, items.length - 1)];
  const digits = (n: number) => Array.from({ length: n }, () => int(0, 9)).join('');
  const guid = () => {
    const hex = Array.from({ length: 32 }, () => int(0, 15).toString(16)).join('');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  };
  return { next, int, pick, digits, guid };
}

type Random = ReturnType<typeof random>;

const TEXT = ['Contoso', 'a/b\\c "quoted"', 'Ünïcödé 😀', '\n\t tabs', '', '</script>', '\\/Date(1)\\/ literally'];

/** A value of every kind that survives the trip with its type (see values.ts for the rules). */
function attributeValue(r: Random): AttributeValue {
  switch (r.int(0, 12)) {
    case 0:
      return { type: 'string', value: r.pick(TEXT) + r.digits(r.int(0, 5)) };
    case 1:
      return { type: 'int', value: r.int(-2147483648, 2147483647) };
    case 2:
      return { type: 'bigint', value: `${r.pick(['', '-'])}9${r.digits(r.int(16, 18))}` };
    case 3:
      return {
        type: 'decimal',
        value: `${r.pick(['', '-'])}${r.int(1, 9)}${r.digits(r.int(0, 20))}.${r.digits(r.int(1, 10))}`,
      };
    case 4:
      return { type: 'money', value: `${r.int(0, 999999999)}.${r.digits(4)}` };
    case 5:
      return { type: 'boolean', value: r.next() < 0.5 };
    case 6:
      return { type: 'datetime', value: new Date(r.int(-2_000_000_000_000, 4_000_000_000_000)).toISOString() };
    case 7:
      return { type: 'guid', value: r.guid() };
    case 8:
      return { type: 'lookup', value: r.guid(), entityType: r.pick(['account', 'contact', 'systemuser', 'team']) };
    case 9:
      return { type: 'optionset', value: r.int(0, 100000000) };
    case 10:
      return { type: 'multiselect', value: Array.from({ length: r.int(0, 4) }, () => r.int(1, 1000)) };
    case 11:
      return {
        type: 'partylist',
        value: Array.from({ length: r.int(0, 3) }, () => ({ id: r.guid(), entityType: r.pick(['contact', 'lead']) })),
      };
    default:
      return { type: 'null' };
  }
}

function attributes(r: Random): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (let i = r.int(1, 12); i > 0; i--) out[`new_attr${r.int(0, 40)}`] = attributeValue(r);
  return out;
}

/** The ChangeEvents the input describes, written independently of the parser. */
function expected(input: RemoteExecutionContextInput, operationTime: string): ChangeEvent[] {
  const base = {
    organizationId: input.organizationId,
    operationTime,
    correlationId: input.correlationId!,
    source: 'webhook' as const,
    messageName: input.messageName,
  };
  switch (input.messageName) {
    case 'Create':
    case 'Update': {
      const attrs = { ...input.attributes };
      if (input.modifiedOn) attrs.modifiedon = { type: 'datetime', value: input.modifiedOn };
      return [
        {
          ...base,
          entity: input.entity,
          recordId: input.id,
          operation: 'upsert',
          version: {
            ...(input.versionNumber ? { rowVersion: input.versionNumber } : {}),
            ...(input.modifiedOn ? { modifiedOn: input.modifiedOn } : {}),
          },
          attributes: attrs,
        },
      ];
    }
    case 'Delete':
      return [
        {
          ...base,
          entity: input.entity,
          recordId: input.id,
          operation: 'delete',
          version: { ...(input.versionNumber ? { rowVersion: input.versionNumber } : {}), modifiedOn: operationTime },
        },
      ];
    default: {
      const rel = input.relationship!;
      const name = rel.schemaName.toLowerCase();
      return rel.relatedIds.map((relatedId) => {
        const entity1 = { logicalName: input.entity, id: input.id };
        const entity2 = { logicalName: rel.relatedEntity, id: relatedId };
        return {
          ...base,
          entity: name,
          recordId: `${entity1.id}:${entity2.id}`,
          operation: input.messageName === 'Associate' ? 'associate' : 'disassociate',
          version: { modifiedOn: operationTime },
          relationship: { name, entity1, entity2 },
        };
      });
    }
  }
}

describe('buildRemoteExecutionContext → serialize → parseWebhook', () => {
  it('gives back the same ChangeEvents for 2,000 generated records', () => {
    for (let seed = 1; seed <= 2000; seed++) {
      const r = random(seed);
      const messageName = r.pick(['Create', 'Update', 'Delete', 'Associate', 'Disassociate'] as const);
      const operationTime = new Date(r.int(1_500_000_000_000, 2_000_000_000_000));
      const input: RemoteExecutionContextInput = {
        organizationId: r.guid(),
        messageName,
        entity: r.pick(['account', 'contact', 'new_project']),
        id: r.guid(),
        operationTime,
        correlationId: r.guid(),
        depth: r.int(1, 3),
      };
      if (messageName === 'Associate' || messageName === 'Disassociate') {
        // Entity names chosen so the stable order (by logical name) is the Target first.
        input.entity = 'account';
        input.relationship = {
          schemaName: r.pick(['AccountLeads', 'new_account_lead']),
          relatedEntity: 'lead',
          relatedIds: Array.from({ length: r.int(1, 3) }, () => r.guid()),
        };
      } else {
        if (messageName !== 'Delete' || r.next() < 0.5) input.attributes = attributes(r);
        if (r.next() < 0.8) input.versionNumber = String(BigInt(r.int(1, 2 ** 31)) * BigInt(r.int(1, 2 ** 31)));
        if (messageName !== 'Delete' && r.next() < 0.7)
          input.modifiedOn = new Date(operationTime.getTime() - 1000).toISOString();
        if (messageName !== 'Delete') input.includePostImage = r.next() < 0.7;
      }
      const text = serializeRemoteExecutionContext(buildRemoteExecutionContext(input));
      const parsed = parseWebhook(text, {});
      assert.deepEqual(parsed.warnings, [], `seed ${seed}`);
      assert.deepEqual(parsed.changes, expected(input, operationTime.toISOString()), `seed ${seed}`);
    }
  });

  it('writes what DataContractJsonSerializer writes: escaped slashes, offset op time, typed values', () => {
    const text = serializeRemoteExecutionContext(
      buildRemoteExecutionContext({
        organizationId: '6042beb1-a93a-ef11-8e4b-00224802c699',
        messageName: 'Update',
        entity: 'account',
        id: '0f9a4b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b',
        attributes: {
          revenue: { type: 'money', value: '12345678901234567890.1234567891' },
          primarycontactid: { type: 'lookup', value: '6d81597f-0f9f-e711-8122-000d3aa2331c', entityType: 'contact' },
        },
        versionNumber: '9223372036854775807',
        modifiedOn: '2023-11-14T22:13:20.000Z',
        operationTime: new Date(1700000001000),
        correlationId: 'e1bcd028-ae87-4ca6-af27-a17ee680dbc9',
      }),
    );
    assert.ok(text.startsWith('{"BusinessUnitId":"'));
    assert.ok(text.includes('"OperationCreatedOn":"\\/Date(1700000001000+0000)\\/"'));
    assert.ok(text.includes('{"key":"modifiedon","value":"\\/Date(1700000000000)\\/"}'));
    assert.ok(
      text.includes(
        '"__type":"Money:http:\\/\\/schemas.microsoft.com\\/xrm\\/2011\\/Contracts","Value":12345678901234567890.1234567891}',
      ),
    );
    assert.ok(
      text.includes('"__type":"Entity:http:\\/\\/schemas.microsoft.com\\/xrm\\/2011\\/Contracts","Attributes":['),
    );
    assert.ok(text.includes('{"key":"versionnumber","value":9223372036854775807}'));
    assert.ok(text.includes('"Stage":40'));
    assert.ok(text.includes('"Mode":1'));
    assert.ok(!text.includes(' '), 'compact, like DataContractJsonSerializer');
  });
});
