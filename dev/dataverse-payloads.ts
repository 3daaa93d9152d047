import { createHash, randomUUID } from 'node:crypto';
import type { AttributeValue } from '../lib/change/change-event.js';

/**
 * The RemoteExecutionContext that Dataverse POSTs to a webhook, as DataContractJsonSerializer writes it, so
 * the sample organization and the tests send exactly what production sends: members in alphabetical order,
 * `__type` hints on complex values in `object` slots (none on collections), key/value arrays for
 * parameter collections, `\/Date(ms)\/` times, and Decimal/Int64 written as bare literals with every digit.
 */
export interface RemoteExecutionContextInput {
  organizationId: string;
  messageName: 'Create' | 'Update' | 'Delete' | 'Associate' | 'Disassociate';
  entity: string;
  id: string;
  /** Create/Update: the Target's columns (and the post-image's). Delete: the pre-image's columns. */
  attributes?: Record<string, AttributeValue>;
  /** Default true for Create/Update: a post-image carrying the attributes and `versionnumber`. */
  includePostImage?: boolean;
  /** The row's versionnumber after the operation (Create/Update) or before it (Delete, in the pre-image). */
  versionNumber?: string;
  /** ISO time written as the `modifiedon` attribute unless `attributes` already has one. */
  modifiedOn?: string;
  operationTime?: Date;
  correlationId?: string;
  relationship?: { schemaName: string; relatedEntity: string; relatedIds: string[] };
  userId?: string;
  depth?: number;
  /** The registered step that fired (OwningExtension.Id); derived from the message and entity by default. */
  stepId?: string;
}

const CONTRACTS = 'http://schemas.microsoft.com/xrm/2011/Contracts';
const EMPTY_GUID = '00000000-0000-0000-0000-000000000000';

/** A number written verbatim, so Decimal and Int64 values keep every digit. */
class NumberLiteral {
  constructor(readonly text: string) {}
  toJSON(): number {
    return Number(this.text);
  }
}

type KeyValue = { key: string; value: unknown };

export function buildRemoteExecutionContext(input: RemoteExecutionContextInput): object {
  const operationTime = input.operationTime ?? new Date();
  const correlationId = input.correlationId ?? randomUUID();
  const userId = input.userId ?? derivedGuid(input.organizationId, 'systemuser');
  const isUpsert = input.messageName === 'Create' || input.messageName === 'Update';
  const includePostImage = input.includePostImage ?? isUpsert;

  const columns: KeyValue[] = Object.entries(input.attributes ?? {}).map(([key, value]) => ({
    key,
    value: toDcjsValue(value),
  }));
  if (input.modifiedOn !== undefined && !input.attributes?.modifiedon) {
    columns.push({ key: 'modifiedon', value: dcjsDate(Date.parse(input.modifiedOn)) });
  }
  const versionColumn: KeyValue[] =
    input.versionNumber === undefined ? [] : [{ key: 'versionnumber', value: new NumberLiteral(input.versionNumber) }];

  let inputParameters: KeyValue[];
  let outputParameters: KeyValue[] = [];
  let preImages: KeyValue[] = [];
  let postImages: KeyValue[] = [];
  switch (input.messageName) {
    case 'Create':
    case 'Update': {
      const targetRowVersion = includePostImage ? null : (input.versionNumber ?? null);
      inputParameters = [{ key: 'Target', value: entity(input.entity, input.id, columns, targetRowVersion, true) }];
      if (includePostImage) {
        postImages = [
          { key: 'PostImage', value: entity(input.entity, input.id, [...columns, ...versionColumn], null) },
        ];
      }
      if (input.messageName === 'Create') outputParameters = [{ key: 'id', value: input.id }];
      break;
    }
    case 'Delete':
      inputParameters = [{ key: 'Target', value: entityReference(input.entity, input.id, true) }];
      if (columns.length || versionColumn.length) {
        preImages = [{ key: 'PreImage', value: entity(input.entity, input.id, [...columns, ...versionColumn], null) }];
      }
      break;
    default: {
      const relationship = input.relationship;
      if (!relationship) throw new Error(`${input.messageName} needs a relationship`);
      inputParameters = [
        { key: 'Target', value: entityReference(input.entity, input.id, true) },
        {
          key: 'Relationship',
          value: { __type: `Relationship:${CONTRACTS}`, PrimaryEntityRole: null, SchemaName: relationship.schemaName },
        },
        {
          key: 'RelatedEntities',
          value: relationship.relatedIds.map((id) => entityReference(relationship.relatedEntity, id, false)),
        },
      ];
    }
  }

  return {
    BusinessUnitId: derivedGuid(input.organizationId, 'businessunit'),
    CorrelationId: correlationId,
    Depth: input.depth ?? 1,
    InitiatingUserAgent: '',
    InitiatingUserAzureActiveDirectoryObjectId: EMPTY_GUID,
    InitiatingUserId: userId,
    InputParameters: inputParameters,
    IsExecutingOffline: false,
    IsInTransaction: false,
    IsOfflinePlayback: false,
    IsolationMode: 1,
    MessageName: input.messageName,
    Mode: 1,
    OperationCreatedOn: dcjsDate(operationTime.getTime(), '+0000'),
    OperationId: randomUUID(),
    OrganizationId: input.organizationId,
    OrganizationName: `unq${input.organizationId.replace(/-/g, '')}`.slice(0, 32),
    OutputParameters: outputParameters,
    OwningExtension: {
      Id: input.stepId ?? derivedGuid(input.organizationId, `step:${input.messageName}:${input.entity}`),
      KeyAttributes: [],
      LogicalName: 'sdkmessageprocessingstep',
      Name: null,
      RowVersion: null,
    },
    ParentContext: null,
    PostEntityImages: postImages,
    PreEntityImages: preImages,
    PrimaryEntityId: input.id,
    PrimaryEntityName: input.entity,
    RequestId: null,
    SecondaryEntityName: 'none',
    SharedVariables: [
      { key: 'IsAutoTransact', value: true },
      { key: 'AcceptLang', value: '' },
    ],
    Stage: 40,
    UserAzureActiveDirectoryObjectId: EMPTY_GUID,
    UserId: userId,
  };
}

/** The exact text Dataverse sends: compact, with every `/` escaped as `\/` (as DataContractJsonSerializer does). */
export function serializeRemoteExecutionContext(context: object): string {
  return write(context);
}

function write(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof NumberLiteral) return value.text;
  if (Array.isArray(value)) return `[${value.map(write).join(',')}]`;
  switch (typeof value) {
    case 'string': {
      const json = JSON.stringify(value);
      return json.includes('/') ? json.replace(/\//g, '\\/') : json;
    }
    case 'number':
      if (!Number.isFinite(value)) throw new Error(`cannot serialize ${value}`);
      return String(value);
    case 'boolean':
      return String(value);
    case 'object': {
      const members: string[] = [];
      for (const [key, member] of Object.entries(value as Record<string, unknown>)) {
        if (member !== undefined) members.push(`${write(key)}:${write(member)}`);
      }
      return `{${members.join(',')}}`;
    }
    default:
      throw new Error(`cannot serialize a ${typeof value}`);
  }
}

function toDcjsValue(value: AttributeValue): unknown {
  switch (value.type) {
    case 'null':
      return null;
    case 'string':
    case 'boolean':
    case 'int':
    case 'float':
    case 'guid':
      return value.value;
    case 'bigint':
    case 'decimal':
      return new NumberLiteral(value.value);
    case 'money':
      return { __type: `Money:${CONTRACTS}`, Value: new NumberLiteral(value.value) };
    case 'datetime':
      return dcjsDate(Date.parse(value.value));
    case 'lookup':
      return entityReference(value.entityType, value.value, true);
    case 'optionset':
      return { __type: `OptionSetValue:${CONTRACTS}`, Value: value.value };
    case 'multiselect':
      // An OptionSetValueCollection is a collection: DataContractJsonSerializer cannot put a type hint on it.
      return value.value.map((option) => ({ Value: option }));
    case 'partylist':
      return {
        __type: `EntityCollection:${CONTRACTS}`,
        Entities: value.value.map((party) =>
          entity(
            'activityparty',
            EMPTY_GUID,
            [{ key: 'partyid', value: entityReference(party.entityType, party.id, true) }],
            null,
          ),
        ),
        EntityName: 'activityparty',
        MinActiveRowVersion: '-1',
        MoreRecords: false,
        PagingCookie: null,
        TotalRecordCount: -1,
        TotalRecordCountLimitExceeded: false,
      };
  }
}

function entity(logicalName: string, id: string, attributes: KeyValue[], rowVersion: string | null, typed = false) {
  return {
    ...(typed ? { __type: `Entity:${CONTRACTS}` } : {}),
    Attributes: attributes,
    EntityState: null,
    FormattedValues: [],
    Id: id,
    KeyAttributes: [],
    LogicalName: logicalName,
    RelatedEntities: [],
    RowVersion: rowVersion,
  };
}

function entityReference(logicalName: string, id: string, typed: boolean) {
  return {
    ...(typed ? { __type: `EntityReference:${CONTRACTS}` } : {}),
    Id: id,
    KeyAttributes: [],
    LogicalName: logicalName,
    Name: null,
    RowVersion: null,
  };
}

function dcjsDate(ms: number, offset = ''): string {
  if (!Number.isFinite(ms)) throw new Error('invalid date');
  return `/Date(${ms}${offset})/`;
}

/** Derived ids by `org:purpose`: every context of an org repeats the same few. */
const derivedGuids = new Map<string, string>();

/** A stable GUID for ids a real organization would have (business unit, step), derived from the org. */
function derivedGuid(organizationId: string, purpose: string): string {
  const key = `${organizationId}:${purpose}`;
  let guid = derivedGuids.get(key);
  if (guid === undefined) {
    const hex = createHash('sha256').update(key).digest('hex');
    guid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
    if (derivedGuids.size >= 10_000) derivedGuids.clear();
    derivedGuids.set(key, guid);
  }
  return guid;
}
