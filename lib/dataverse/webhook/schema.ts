import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { FromSchema } from 'json-schema-to-ts';
import { AppError } from '../../errors.js';

/**
 * The parts of Dataverse's RemoteExecutionContext (DataContractJsonSerializer JSON) that we read. Unknown
 * keys are tolerated: Dataverse adds members over time and ParentContext is ignored. The context, the Target
 * and each image are validated separately so an error names the field as the user would look for it
 * (`InputParameters.Target.Attributes[3].key`).
 */
const guid = {
  type: 'string',
  pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
} as const;

/** DataContractJsonSerializer's DateTime: `/Date(ms)/`, optionally with an offset. */
const dcjsDate = { type: 'string', pattern: '^/Date\\(-?[0-9]{1,15}([+-][0-9]{4})?\\)/$' } as const;

const keyValue = {
  type: 'object',
  required: ['key', 'value'],
  properties: { key: { type: 'string' }, value: {} },
} as const;

export const entitySchema = {
  type: 'object',
  required: ['Attributes', 'LogicalName'],
  properties: {
    Attributes: { type: 'array', items: keyValue },
    Id: guid,
    LogicalName: { type: 'string' },
    RowVersion: { type: ['string', 'null'], pattern: '^[0-9]{1,20}$' },
  },
} as const;

export const entityReferenceSchema = {
  type: 'object',
  required: ['Id', 'LogicalName'],
  properties: { Id: guid, LogicalName: { type: 'string' } },
} as const;

export const relationshipSchema = {
  type: 'object',
  required: ['SchemaName'],
  properties: { SchemaName: { type: 'string', minLength: 1 } },
} as const;

export const entityReferenceListSchema = { type: 'array', minItems: 1, items: entityReferenceSchema } as const;

const entityImages = {
  type: ['array', 'null'],
  items: {
    type: 'object',
    required: ['key', 'value'],
    properties: { key: { type: 'string' }, value: { type: 'object' } },
  },
} as const;

export const remoteExecutionContextSchema = {
  type: 'object',
  required: [
    'OrganizationId',
    'CorrelationId',
    'MessageName',
    'PrimaryEntityName',
    'PrimaryEntityId',
    'OperationCreatedOn',
  ],
  properties: {
    OrganizationId: guid,
    CorrelationId: guid,
    MessageName: { type: 'string', minLength: 1 },
    PrimaryEntityName: { type: 'string' },
    PrimaryEntityId: guid,
    OperationCreatedOn: dcjsDate,
    Stage: { type: 'integer' },
    InputParameters: { type: ['array', 'null'], items: keyValue },
    PreEntityImages: entityImages,
    PostEntityImages: entityImages,
  },
} as const;

export type RemoteExecutionContext = FromSchema<typeof remoteExecutionContextSchema>;
export type DataverseEntity = FromSchema<typeof entitySchema>;
export type DataverseEntityReference = FromSchema<typeof entityReferenceSchema>;
export type DataverseRelationship = FromSchema<typeof relationshipSchema>;
export type KeyValue = FromSchema<typeof keyValue>;

const ajv = new Ajv({ allErrors: false, allowUnionTypes: true });

export const validateContext = ajv.compile<RemoteExecutionContext>(remoteExecutionContextSchema);
export const validateEntity = ajv.compile<DataverseEntity>(entitySchema);
export const validateEntityReference = ajv.compile<DataverseEntityReference>(entityReferenceSchema);
export const validateRelationship = ajv.compile<DataverseRelationship>(relationshipSchema);
export const validateEntityReferenceList = ajv.compile<DataverseEntityReference[]>(entityReferenceListSchema);

/** Returns `data` typed, or throws VALIDATION_FAILED naming the failing field under `prefix`. */
export function assertValid<T>(validate: ValidateFunction<T>, data: unknown, prefix: string): T {
  if (validate(data)) return data;
  const error = validate.errors![0];
  const field = fieldOf(error, prefix);
  const message = error.message ?? 'is invalid';
  throw new AppError('VALIDATION_FAILED', `Dataverse webhook: ${field || 'the body'} ${message}.`, {
    details: [{ field: field || 'body', message }],
  });
}

/** `/Attributes/3/key` under `InputParameters.Target` → `InputParameters.Target.Attributes[3].key`. */
function fieldOf(error: ErrorObject, prefix: string): string {
  let field = prefix;
  const segments = error.instancePath ? error.instancePath.slice(1).split('/') : [];
  if (error.keyword === 'required') segments.push(String(error.params.missingProperty));
  for (const raw of segments) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    field += /^\d+$/.test(segment) ? `[${segment}]` : field ? `.${segment}` : segment;
  }
  return field;
}
