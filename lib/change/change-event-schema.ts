/**
 * The JSON Schema of a serialised ChangeEvent, so a change read back from storage (a claim-check blob) is
 * checked like a webhook before it reaches the sink, instead of being cast.
 */
import { Ajv } from 'ajv';
import { AppError } from '../errors.js';
import type { ChangeEvent } from './change-event.js';

const str = { type: 'string' } as const;
const num = { type: 'number' } as const;
const value = (type: string, valueSchema: object, extra: Record<string, object> = {}) => ({
  type: 'object',
  required: ['type', 'value', ...Object.keys(extra)],
  properties: { type: { const: type }, value: valueSchema, ...extra },
});

const attributeValue = {
  oneOf: [
    ...['string', 'bigint', 'decimal', 'money', 'datetime', 'guid'].map((t) => value(t, str)),
    ...['int', 'float', 'optionset'].map((t) => value(t, num)),
    value('boolean', { type: 'boolean' }),
    value('lookup', str, { entityType: str }),
    value('multiselect', { type: 'array', items: num }),
    value('partylist', {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'entityType'],
        additionalProperties: false,
        properties: { id: str, entityType: str },
      },
    }),
    { type: 'object', required: ['type'], additionalProperties: false, properties: { type: { const: 'null' } } },
  ],
};

const reference = {
  type: 'object',
  required: ['logicalName', 'id'],
  additionalProperties: false,
  properties: { logicalName: str, id: str },
};

export const changeEventSchema = {
  type: 'object',
  required: [
    'organizationId',
    'entity',
    'recordId',
    'operation',
    'version',
    'operationTime',
    'correlationId',
    'source',
  ],
  properties: {
    organizationId: str,
    entity: { type: 'string', minLength: 1 },
    recordId: { type: 'string', minLength: 1 },
    operation: { enum: ['upsert', 'delete', 'associate', 'disassociate'] },
    version: {
      type: 'object',
      additionalProperties: false,
      properties: { rowVersion: { type: 'string', pattern: '^\\d+$' }, modifiedOn: str },
    },
    operationTime: str,
    attributes: { type: 'object', additionalProperties: attributeValue },
    needsReread: { type: 'boolean' },
    relationship: {
      type: 'object',
      required: ['name', 'entity1', 'entity2'],
      additionalProperties: false,
      properties: { name: str, entity1: reference, entity2: reference },
    },
    correlationId: str,
    source: { enum: ['webhook', 'initialSync', 'reconcile', 'resync'] },
    messageName: str,
  },
} as const;

const validate = new Ajv({ allErrors: false }).compile<ChangeEvent>(changeEventSchema);

/** Parses and validates a stored change; a body that is not one is a permanent VALIDATION_FAILED naming why. */
export function readStoredChange(json: string, where: string): ChangeEvent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    throw new AppError('VALIDATION_FAILED', `${where} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (validate(parsed)) return parsed;
  const problem = validate.errors?.[0];
  const at = problem?.instancePath || '/';
  throw new AppError(
    'VALIDATION_FAILED',
    `${where} does not hold a change: ${at} ${problem?.message ?? 'is invalid'}`,
    {
      details: [{ field: at, message: problem?.message ?? 'invalid' }],
    },
  );
}
