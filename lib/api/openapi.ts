import { remoteExecutionContextSchema } from '../dataverse/webhook/schema.js';
import { ErrorCodes } from '../errors.js';
import { profileInputSchema } from '../profiles/schema.js';
import { adminPaths, adminSchemas, adminSecuritySchemes, forbidden } from './admin-openapi.js';
import { type ApiRoute, ROUTES } from './routes.js';

/**
 * `GET /api/openapi.json`: the OpenAPI 3.1 description of every HTTP route. The profile schemas are built
 * from {@link profileInputSchema} (the object ajv validates with), so the document cannot drift from the API.
 */

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const dateTime = { type: 'string', format: 'date-time' } as const;
const nullable = (schema: Record<string, unknown>) => ({ ...schema, type: [schema.type as string, 'null'] });

/** The request body schema: the validator's schema, minus the `$id` that would re-base `$ref`s inside it. */
function profileInput(): Record<string, unknown> {
  const { $id: _id, ...schema } = profileInputSchema;
  return schema;
}

/** A stored profile: every default filled in, so every field is present, plus the server-assigned ones. */
function exportProfile(): Record<string, unknown> {
  const p = profileInputSchema.properties;
  return {
    type: 'object',
    additionalProperties: false,
    required: [
      'id',
      'name',
      'organizationId',
      'source',
      'target',
      'entities',
      'relationships',
      'options',
      'state',
      'createdOn',
      'modifiedOn',
    ],
    properties: {
      id: { type: 'string', format: 'uuid', description: 'Server-assigned.' },
      ...p,
      target: { ...p.target, required: Object.keys(p.target.properties) },
      options: { ...p.options, required: Object.keys(p.options.properties) },
      state: ref('ProfileState'),
      createdOn: dateTime,
      modifiedOn: dateTime,
    },
  };
}

const initialSyncStarted = {
  type: 'object',
  additionalProperties: false,
  required: ['instanceId', 'full', 'entities'],
  description: 'Present when this request started an initial sync.',
  properties: {
    instanceId: { type: ['string', 'null'], description: 'The orchestration instance id.' },
    full: { type: 'boolean', description: 'Whether completed entities are copied again.' },
    entities: { type: 'array', items: { type: 'string' }, description: 'The entities queued for copying.' },
  },
} as const;

function activationResult(): Record<string, unknown> {
  const profile = exportProfile() as { properties: Record<string, unknown> };
  return {
    ...profile,
    properties: {
      ...profile.properties,
      initialSync: ref('InitialSyncStarted'),
      warnings: {
        type: 'array',
        items: { type: 'string' },
        description: 'What the target check found worth changing but not blocking (e.g. READ_COMMITTED_SNAPSHOT off).',
      },
    },
  };
}

const count = { type: 'integer', minimum: 0 } as const;

const entityStatus = {
  type: 'object',
  additionalProperties: false,
  required: [
    'entity',
    'syncState',
    'rowsCopied',
    'rowsEstimated',
    'syncStartedAt',
    'syncCompletedAt',
    'lastError',
    'received',
    'applied',
    'stale',
    'failed',
    'lastAppliedAt',
    'lastLagMs',
    'meanLagMs',
    'rowsPerSecond',
    'etaSeconds',
    'estimatedCompletionAt',
    'partitions',
  ],
  properties: {
    entity: { type: 'string' },
    syncState: ref('EntitySyncState'),
    rowsCopied: count,
    rowsEstimated: nullable(count),
    syncStartedAt: nullable(dateTime),
    syncCompletedAt: nullable(dateTime),
    lastError: { type: ['string', 'null'] },
    received: { ...count, description: 'Changes received from Dataverse.' },
    applied: { ...count, description: 'Changes written to the target.' },
    stale: { ...count, description: 'Duplicates and changes older than the stored row (no-ops).' },
    failed: { ...count, description: 'Changes that ended in the failure log.' },
    lastAppliedAt: nullable(dateTime),
    lastLagMs: { type: ['number', 'null'], description: 'Apply time minus Dataverse operation time, last batch.' },
    meanLagMs: { type: ['number', 'null'] },
    rowsPerSecond: { type: ['number', 'null'], description: 'Copy speed; only while InProgress.' },
    etaSeconds: { type: ['integer', 'null'], description: 'Only while InProgress with a row estimate.' },
    estimatedCompletionAt: nullable(dateTime),
    partitions: {
      type: 'array',
      description:
        "The primary-id ranges a large entity's copy reads in parallel (SQL Server's uniqueidentifier order); rowsCopied is their sum. Empty when the entity is copied by one read.",
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['partition', 'from', 'to', 'rowsCopied', 'pagesDone', 'done'],
        properties: {
          partition: count,
          from: { type: ['string', 'null'], format: 'uuid', description: 'Ids after this one; null: from the first.' },
          to: { type: ['string', 'null'], format: 'uuid', description: 'Ids up to this one; null: to the last.' },
          rowsCopied: count,
          pagesDone: count,
          done: { type: 'boolean' },
        },
      },
    },
  },
} as const;

const syncStates = ['NotStarted', 'Queued', 'InProgress', 'Completed', 'Failed'] as const;

const profileStatus = {
  type: 'object',
  required: [
    'id',
    'name',
    'state',
    'organizationId',
    'asOf',
    'targetState',
    'targetError',
    'initialSync',
    'totals',
    'entities',
  ],
  properties: {
    id: { type: 'string', format: 'uuid' },
    name: { type: 'string' },
    state: ref('ProfileState'),
    organizationId: { type: 'string' },
    asOf: dateTime,
    targetState: {
      type: 'string',
      enum: ['ready', 'unreachable', 'unavailable', 'misconfigured'],
      description:
        "Whether the target takes this profile's changes. Otherwise they wait (re-scheduled, nothing failure-logged): unreachable (cannot connect), unavailable (full, read-only), misconfigured (a permission or setting the sink needs).",
    },
    targetError: {
      type: ['object', 'null'],
      additionalProperties: false,
      required: ['reason', 'action', 'since', 'lastSeenAt'],
      description: 'Why the target is not ready, and what to do; null while ready.',
      properties: {
        reason: { type: 'string', description: "The target's own words." },
        action: { type: 'string', description: 'What an administrator does about it.' },
        since: dateTime,
        lastSeenAt: dateTime,
      },
    },
    initialSync: ref('EntitySyncState'),
    totals: {
      type: 'object',
      required: [
        'entities',
        'bySyncState',
        'rowsCopied',
        'rowsEstimated',
        'received',
        'applied',
        'stale',
        'failed',
        'lastAppliedAt',
        'maxLagMs',
      ],
      properties: {
        entities: count,
        bySyncState: {
          type: 'object',
          required: [...syncStates],
          properties: Object.fromEntries(syncStates.map((s) => [s, count])),
        },
        rowsCopied: count,
        rowsEstimated: nullable(count),
        received: count,
        applied: count,
        stale: count,
        failed: count,
        lastAppliedAt: nullable(dateTime),
        maxLagMs: { type: ['number', 'null'] },
      },
    },
    entities: { type: 'array', items: ref('EntityStatus') },
    registration: {
      ...ref('Registration'),
      description: 'The webhook steps in Dataverse and their drift (or `error` when Dataverse could not be read).',
    },
  },
} as const;

const stepView = {
  type: 'object',
  required: ['entity', 'message', 'name', 'exists', 'enabled', 'imageOk', 'drift'],
  properties: {
    entity: {
      type: ['string', 'null'],
      description: 'The entity; null for Associate/Disassociate (primary entity none).',
    },
    message: { type: 'string', enum: ['Create', 'Update', 'Delete', 'Associate', 'Disassociate'] },
    name: { type: 'string', description: 'The step name in the organization.' },
    exists: { type: 'boolean' },
    enabled: { type: 'boolean' },
    imageOk: {
      type: 'boolean',
      description: 'The image ordering needs is registered (true for messages without one).',
    },
    drift: {
      type: ['string', 'null'],
      description: 'For an active profile: `missing`, `disabled` or `image missing`; null when in order.',
    },
  },
} as const;

const registrationView = {
  type: 'object',
  required: ['managed', 'endpoint', 'steps', 'inSync', 'repair'],
  properties: {
    managed: { type: 'boolean', description: 'False when options.registerWebhook is false (registered by hand).' },
    endpoint: {
      type: 'object',
      required: ['name', 'exists', 'url', 'drift'],
      properties: {
        name: { type: 'string' },
        exists: { type: 'boolean' },
        url: { type: ['string', 'null'] },
        drift: { type: ['string', 'null'] },
      },
    },
    steps: { type: 'array', items: ref('RegistrationStep') },
    inSync: { type: 'boolean', description: 'Nothing drifted.' },
    repair: { type: 'string', description: 'How to repair drift.' },
    repaired: {
      type: 'object',
      description: 'Only after a repair: what it changed.',
      properties: {
        endpointId: { type: ['string', 'null'] },
        created: { type: 'array', items: { type: 'string' } },
        enabled: { type: 'array', items: { type: 'string' } },
        disabled: { type: 'array', items: { type: 'string' } },
        removed: { type: 'array', items: { type: 'string' } },
        imagesAdded: { type: 'array', items: { type: 'string' } },
      },
    },
    error: { type: 'string', description: 'In a status only: why the registration could not be read.' },
  },
} as const;

const failure = {
  type: 'object',
  required: ['profileId', 'entity', 'recordId', 'changeType', 'time', 'reason', 'code'],
  properties: {
    profileId: { type: 'string' },
    entity: { type: 'string' },
    recordId: { type: 'string' },
    changeType: {
      type: 'string',
      description: 'upsert, delete, associate, disassociate; unknown for an unreadable message.',
    },
    time: dateTime,
    reason: { type: 'string' },
    code: { type: 'string', description: 'An error code, e.g. TARGET_PERMANENT.' },
    attempts: count,
    correlationId: { type: 'string' },
  },
} as const;

const error = {
  type: 'object',
  required: ['code', 'message'],
  properties: {
    code: { type: 'string', enum: Object.keys(ErrorCodes) },
    message: { type: 'string', description: 'Names the field, the value and what to do.' },
    details: {
      type: 'array',
      items: {
        type: 'object',
        required: ['message'],
        properties: {
          field: { type: 'string', description: 'JSON pointer (body) or parameter name.' },
          message: { type: 'string' },
          value: {},
        },
      },
    },
    cause: { description: 'What the error arose from: a nested error, or the underlying name and message.' },
  },
} as const;

const webhookAccepted = {
  type: 'object',
  required: ['accepted', 'profiles', 'correlationId'],
  properties: {
    accepted: { ...count, description: 'Messages enqueued.' },
    profiles: { type: 'array', items: { type: 'string' } },
    correlationId: { type: 'string' },
    ignored: { type: 'string', description: 'Why nothing was enqueued.' },
  },
} as const;

const health = {
  type: 'object',
  required: ['status'],
  properties: {
    status: { type: 'string', const: 'ok' },
    version: { type: 'string' },
    startedOn: dateTime,
    uptimeSeconds: { type: 'number' },
  },
} as const;

const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: ref('Error') } },
});

const jsonResponse = (description: string, schema: unknown) => ({
  description,
  content: { 'application/json': { schema } },
});

const responses = {
  BadRequest: errorResponse('The body or a parameter is invalid (VALIDATION_FAILED, MALFORMED_JSON).'),
  Unauthorized: errorResponse('Nobody signed in and no function key, or a wrong one.'),
  Forbidden: forbidden,
  NotFound: errorResponse('No profile has this id (PROFILE_NOT_FOUND).'),
  Conflict: errorResponse("The change conflicts with the profile's state; deactivate first (CONFLICT)."),
  Unprocessable: errorResponse(
    'The target or the organization cannot be used (SECRET_NOT_FOUND, TARGET_UNREACHABLE, TARGET_MISCONFIGURED, ENTITY_NOT_EXPORTABLE, REGISTRATION_REFUSED); `details` name each missing right, setting or entity and what fixes it.',
  ),
  ServerError: errorResponse('An internal error (INTERNAL and other 5xx codes).'),
  Unavailable: errorResponse('A dependency is unavailable; retry later (QUEUE_UNAVAILABLE).'),
};

const use = (name: keyof typeof responses) => ({ $ref: `#/components/responses/${name}` });

const idParam = { $ref: '#/components/parameters/ProfileId' };

const profileBody = {
  required: true,
  content: { 'application/json': { schema: ref('ProfileInput') } },
};

const failureListParameters = [
  { name: 'from', in: 'query', description: 'Inclusive lower bound.', schema: dateTime },
  { name: 'to', in: 'query', description: 'Inclusive upper bound.', schema: dateTime },
  {
    name: 'limit',
    in: 'query',
    description: 'At most this many entries.',
    schema: { type: 'integer', minimum: 1, maximum: 100000, default: 1000 },
  },
];

const failureListResponse = {
  description: 'The failures.',
  content: {
    'application/json': { schema: { type: 'array', items: ref('Failure') } },
    'text/csv': { schema: { type: 'string' } },
  },
};

const resyncStarted = {
  type: 'object',
  required: ['id', 'statusQueryGetUri'],
  properties: {
    id: { type: 'string', description: 'The durable instance id (`resync-<profile id>`).' },
    statusQueryGetUri: { type: 'string', description: 'GET for runtimeStatus, customStatus (progress), output.' },
    sendEventPostUri: { type: 'string' },
    terminatePostUri: { type: 'string' },
    purgeHistoryDeleteUri: { type: 'string' },
  },
};

/** The API's operations as documented, by path (the paths themselves come from `routes.ts`). */
const documented: Record<string, Record<string, unknown>> = {
  '/api/profiles': {
    get: {
      operationId: 'listProfiles',
      tags: ['profiles'],
      summary: 'List export profiles.',
      responses: {
        200: jsonResponse('Every profile.', { type: 'array', items: ref('ExportProfile') }),
        401: use('Unauthorized'),
      },
    },
    post: {
      operationId: 'createProfile',
      tags: ['profiles'],
      summary: 'Create an export profile (Inactive).',
      requestBody: profileBody,
      responses: {
        201: {
          ...jsonResponse('Created; defaults filled in.', ref('ExportProfile')),
          headers: { Location: { description: 'The new profile.', schema: { type: 'string' } } },
        },
        400: use('BadRequest'),
        401: use('Unauthorized'),
      },
    },
  },
  '/api/profiles/{id}': {
    parameters: [idParam],
    get: {
      operationId: 'getProfile',
      tags: ['profiles'],
      summary: 'Read one profile.',
      responses: {
        200: jsonResponse('The profile.', ref('ExportProfile')),
        401: use('Unauthorized'),
        404: use('NotFound'),
      },
    },
    put: {
      operationId: 'replaceProfile',
      tags: ['profiles'],
      summary: 'Replace a profile.',
      description:
        'An active profile may change its name and options and gain entities (which are then copied); ' +
        'changing its organization or target, or removing entities, needs deactivating first (409).',
      requestBody: profileBody,
      responses: {
        200: jsonResponse('The replaced profile.', ref('ActivationResult')),
        400: use('BadRequest'),
        401: use('Unauthorized'),
        404: use('NotFound'),
        409: use('Conflict'),
      },
    },
    delete: {
      operationId: 'deleteProfile',
      tags: ['profiles'],
      summary: 'Delete a profile (deactivating it first) and its failure log.',
      parameters: [
        {
          name: 'dropTables',
          in: 'query',
          description: "Also drop the profile's target tables.",
          schema: { type: 'boolean', default: false },
        },
      ],
      responses: {
        204: { description: 'Deleted.' },
        400: use('BadRequest'),
        401: use('Unauthorized'),
        404: use('NotFound'),
      },
    },
  },
  '/api/profiles/{id}/activate': {
    parameters: [idParam],
    post: {
      operationId: 'activateProfile',
      tags: ['profiles'],
      summary:
        'Activate: check the target and the entities, register the webhook steps in Dataverse, then start the initial sync (idempotent).',
      parameters: [
        {
          name: 'full',
          in: 'query',
          description:
            'Copy every entity again, completed ones too, even when options.initialSync is false. ' +
            'An already active profile is returned unchanged; deactivate it first.',
          schema: { type: 'boolean', default: false },
        },
      ],
      responses: {
        200: jsonResponse('The active profile.', ref('ActivationResult')),
        401: use('Unauthorized'),
        404: use('NotFound'),
        422: use('Unprocessable'),
      },
    },
  },
  '/api/profiles/{id}/deactivate': {
    parameters: [idParam],
    post: {
      operationId: 'deactivateProfile',
      tags: ['profiles'],
      summary: 'Deactivate: stop the sync and the live stream (idempotent).',
      responses: {
        200: jsonResponse('The inactive profile.', ref('ExportProfile')),
        401: use('Unauthorized'),
        404: use('NotFound'),
      },
    },
  },
  '/api/profiles/{id}/status': {
    parameters: [idParam],
    get: {
      operationId: 'getProfileStatus',
      tags: ['profiles'],
      summary: 'Initial-sync progress and change counters per entity.',
      responses: {
        200: jsonResponse('The status.', ref('ProfileStatus')),
        401: use('Unauthorized'),
        404: use('NotFound'),
      },
    },
  },
  '/api/profiles/{id}/registration': {
    parameters: [idParam],
    get: {
      operationId: 'getRegistration',
      tags: ['profiles'],
      summary: "The profile's webhook steps in Dataverse: whether each exists, is enabled and has its image.",
      responses: {
        200: jsonResponse('The registration and its drift.', ref('Registration')),
        401: use('Unauthorized'),
        404: use('NotFound'),
      },
    },
    post: {
      operationId: 'repairRegistration',
      tags: ['profiles'],
      summary: "Repair: make the organization's registration match its profiles again (idempotent).",
      responses: {
        200: jsonResponse('The registration after the repair, with what it changed.', ref('Registration')),
        401: use('Unauthorized'),
        404: use('NotFound'),
        422: use('Unprocessable'),
      },
    },
  },
  '/api/profiles/{id}/failures': {
    parameters: [idParam],
    get: {
      operationId: 'listFailures',
      tags: ['profiles'],
      summary: 'Changes that could not be applied, newest first (JSON, or CSV with Accept: text/csv).',
      parameters: [
        { name: 'from', in: 'query', description: 'Inclusive lower bound.', schema: dateTime },
        { name: 'to', in: 'query', description: 'Inclusive upper bound.', schema: dateTime },
        {
          name: 'limit',
          in: 'query',
          description: 'At most this many entries.',
          schema: { type: 'integer', minimum: 1, maximum: 100000, default: 1000 },
        },
      ],
      responses: {
        200: {
          description: 'The failures.',
          content: {
            'application/json': { schema: { type: 'array', items: ref('Failure') } },
            'text/csv': { schema: { type: 'string' } },
          },
        },
        400: use('BadRequest'),
        401: use('Unauthorized'),
        404: use('NotFound'),
      },
    },
  },
  '/api/profiles/{id}/failures/resync': {
    parameters: [idParam],
    post: {
      operationId: 'resyncFailures',
      tags: ['profiles'],
      summary: 'Read the failed records from Dataverse again and re-apply them.',
      responses: {
        202: jsonResponse('The resync was started.', { type: 'object' }),
        401: use('Unauthorized'),
        404: use('NotFound'),
        409: use('Conflict'),
      },
    },
  },
  '/api/webhooks/dataverse': {
    post: {
      operationId: 'receiveDataverseWebhook',
      tags: ['dataverse'],
      summary: "Dataverse's RemoteExecutionContext (webhook or Service Endpoint).",
      description: 'Register with the function key as WebhookKey (`?code=`) or HttpHeader (`x-functions-key`).',
      requestBody: {
        required: true,
        content: { 'application/json': { schema: ref('RemoteExecutionContext') } },
      },
      responses: {
        200: jsonResponse('Valid, but nothing to export.', ref('WebhookAccepted')),
        202: jsonResponse('Enqueued.', ref('WebhookAccepted')),
        400: use('BadRequest'),
        401: use('Unauthorized'),
        503: use('Unavailable'),
      },
    },
  },
  '/api/health': {
    get: {
      operationId: 'health',
      tags: ['service'],
      summary: 'Liveness (anonymous).',
      security: [],
      responses: { 200: jsonResponse('Running.', ref('Health')) },
    },
  },
  '/api/openapi.json': {
    get: {
      operationId: 'openApi',
      tags: ['service'],
      summary: 'This document.',
      responses: {
        200: jsonResponse('OpenAPI 3.1.', { type: 'object' }),
        401: use('Unauthorized'),
      },
    },
  },
};

/** Every operation of the API, keyed by operationId; `routes.ts` says where each is served. */
const operations: Record<string, Record<string, unknown>> = {
  ...operationsIn(documented),
  resyncFailures: {
    tags: ['profiles'],
    summary: 'Start re-reading the failed records from Dataverse and re-applying them (durable work).',
    description:
      'Answers at once; the resync runs as a durable orchestration. Poll `statusQueryGetUri` (also the ' +
      'Location header): `customStatus` holds the running totals, `output` the final ones when ' +
      '`runtimeStatus` is Completed. A second request while one runs answers the running one.',
    responses: {
      202: {
        ...jsonResponse('The resync runs; where to read its status.', ref('ResyncStarted')),
        headers: { Location: { description: 'The status URL.', schema: { type: 'string' } } },
      },
      401: use('Unauthorized'),
      404: use('NotFound'),
      409: use('Conflict'),
    },
  },
  listUnattributedFailures: {
    tags: ['profiles'],
    summary: 'Queue messages no profile can own (unreadable, or naming no valid profile), newest first.',
    description:
      'A message on the changes queue that is not a change message (another producer, a hand-sent test) is ' +
      'logged here once, at apply or when Service Bus dead-lettered it; nothing can be resynced from it.',
    parameters: failureListParameters,
    responses: {
      200: failureListResponse,
      400: use('BadRequest'),
      401: use('Unauthorized'),
    },
  },
};

/** The operations of documented paths, keyed by operationId (path parameters come from the route). */
function operationsIn(paths: Record<string, Record<string, unknown>>): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const item of Object.values(paths)) {
    for (const [key, value] of Object.entries(item)) {
      if (key === 'parameters') continue;
      const { operationId, ...operation } = value as { operationId: string } & Record<string, unknown>;
      out[operationId] = operation;
    }
  }
  return out;
}

/** The paths object: each route's operations, with the profile id parameter where the route has one. */
function pathsOf(routes: readonly ApiRoute[]): Record<string, unknown> {
  const described = new Set<string>();
  const paths: Record<string, unknown> = {};
  for (const route of routes) {
    const item: Record<string, unknown> = route.route.includes('{id}') ? { parameters: [idParam] } : {};
    for (const [method, { operationId }] of Object.entries(route.operations)) {
      const operation = operations[operationId];
      if (!operation) throw new Error(`route ${route.name}: no OpenAPI operation '${operationId}'`);
      described.add(operationId);
      item[method.toLowerCase()] = { operationId, ...operation };
    }
    paths[`/api/${route.route}`] = item;
  }
  const unrouted = Object.keys(operations).filter((id) => !described.has(id));
  if (unrouted.length) throw new Error(`OpenAPI operations without a route: ${unrouted.join(', ')}`);
  return paths;
}

export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Dataverse Export',
      version: '0.1.0',
      summary: 'Continuous export of Dataverse tables to Azure SQL or PostgreSQL (a Data Export Service replacement).',
    },
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    security: [{ appServicePrincipal: [] }, { functionKey: [] }, { functionKeyQuery: [] }],
    tags: [
      { name: 'profiles', description: 'Export profiles: what to export where, and its state.' },
      { name: 'dataverse', description: 'Endpoints Dataverse calls.' },
      { name: 'service', description: 'Health and this description.' },
      { name: 'audit', description: 'Who changed what, and who the caller is.' },
    ],
    paths: { ...adminPaths, ...pathsOf(ROUTES) },
    components: {
      schemas: {
        ProfileInput: profileInput(),
        ExportProfile: exportProfile(),
        ActivationResult: activationResult(),
        InitialSyncStarted: initialSyncStarted,
        ProfileState: { type: 'string', enum: ['Inactive', 'Active'] },
        EntitySyncState: { type: 'string', enum: [...syncStates] },
        EntityStatus: entityStatus,
        ProfileStatus: profileStatus,
        Registration: registrationView,
        RegistrationStep: stepView,
        Failure: failure,
        ResyncStarted: resyncStarted,
        Error: error,
        RemoteExecutionContext: remoteExecutionContextSchema,
        WebhookAccepted: webhookAccepted,
        Health: health,
        ...adminSchemas,
      },
      responses,
      parameters: {
        ProfileId: {
          name: 'id',
          in: 'path',
          required: true,
          description: 'The profile id (a GUID).',
          schema: { type: 'string', format: 'uuid' },
        },
      },
      securitySchemes: {
        ...adminSecuritySchemes,
        functionKey: { type: 'apiKey', in: 'header', name: 'x-functions-key' },
        functionKeyQuery: { type: 'apiKey', in: 'query', name: 'code' },
      },
    },
  };
}
