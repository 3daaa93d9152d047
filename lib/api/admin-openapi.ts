/**
 * The OpenAPI description of the console's routes (`functions/admin.ts`) and of who may call the management
 * API, merged into the document by {@link openApiDocument}.
 */
import { AUDIT_ACTIONS } from '../profiles/audit.js';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const use = (name: string) => ({ $ref: `#/components/responses/${name}` });
const dateTime = { type: 'string', format: 'date-time' } as const;
const json = (description: string, schema: unknown) => ({ description, content: { 'application/json': { schema } } });

export const adminPaths = {
  '/api/audit': {
    get: {
      operationId: 'listAudit',
      tags: ['audit'],
      summary: 'Changes to profiles, newest first: who, when, what, the profile before and after.',
      description: 'Readers and admins. A deleted profile keeps its trail.',
      parameters: [
        {
          name: 'profileId',
          in: 'query',
          description: 'Only this profile.',
          schema: { type: 'string', format: 'uuid' },
        },
        { name: 'from', in: 'query', description: 'Inclusive lower bound.', schema: dateTime },
        { name: 'to', in: 'query', description: 'Inclusive upper bound.', schema: dateTime },
        {
          name: 'limit',
          in: 'query',
          description: 'Entries per page.',
          schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
        },
        {
          name: 'offset',
          in: 'query',
          description: "Entries to skip (the previous page's nextOffset).",
          schema: { type: 'integer', minimum: 0, default: 0 },
        },
      ],
      responses: {
        200: json('One page of the trail.', ref('AuditPage')),
        400: use('BadRequest'),
        401: use('Unauthorized'),
        403: use('Forbidden'),
      },
    },
  },
  '/api/me': {
    get: {
      operationId: 'whoAmI',
      tags: ['audit'],
      summary: 'Who the caller is and what it may do (the console shows or hides its buttons by this).',
      responses: { 200: json('The caller.', ref('Caller')), 401: use('Unauthorized') },
    },
  },
  '/api/organizations/catalog': {
    get: {
      operationId: 'organizationCatalog',
      tags: ['profiles'],
      summary: "The organization's tables (with change tracking) and N:N relationships, read from its metadata.",
      description: 'Admins only: the app calls the URL with its Dataverse token.',
      parameters: [
        {
          name: 'url',
          in: 'query',
          required: true,
          description:
            "The organization, e.g. https://contoso.crm.dynamics.com: the same rule as a profile's source.url.",
          schema: { type: 'string', format: 'uri' },
        },
      ],
      responses: {
        200: json('What the organization offers.', ref('OrganizationCatalog')),
        400: use('BadRequest'),
        401: use('Unauthorized'),
        403: use('Forbidden'),
      },
    },
  },
  '/api/admin/{path}': {
    get: {
      operationId: 'console',
      tags: ['service'],
      summary: "The admin console (static files; sign-in is the platform's).",
      security: [],
      parameters: [
        { name: 'path', in: 'path', required: true, description: 'A file of the console.', schema: { type: 'string' } },
      ],
      responses: {
        200: { description: 'The file.', content: { 'text/html': { schema: { type: 'string' } } } },
        404: { description: 'No such file.' },
      },
    },
  },
};

const profileOrNull = { oneOf: [ref('ExportProfile'), { type: 'null' }] };

export const adminSchemas = {
  AuditEntry: {
    type: 'object',
    additionalProperties: false,
    required: ['id', 'at', 'actor', 'actorKind', 'action', 'profileId', 'profileName', 'before', 'after', 'details'],
    properties: {
      id: { type: 'string', format: 'uuid' },
      at: dateTime,
      actor: { type: 'string', description: 'The signed-in principal, or "function key".' },
      actorKind: { type: 'string', enum: ['principal', 'functionKey'] },
      action: { type: 'string', enum: [...AUDIT_ACTIONS] },
      profileId: { type: 'string', format: 'uuid' },
      profileName: { type: ['string', 'null'] },
      before: profileOrNull,
      after: profileOrNull,
      details: { type: ['object', 'null'], description: 'dropTables, the initial sync started, resync counts.' },
    },
  },
  AuditPage: {
    type: 'object',
    additionalProperties: false,
    required: ['entries', 'nextOffset'],
    properties: {
      entries: { type: 'array', items: ref('AuditEntry') },
      nextOffset: { type: ['integer', 'null'], description: 'The offset of the next page; null on the last.' },
    },
  },
  Caller: {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'kind', 'roles', 'canRead', 'canWrite'],
    properties: {
      name: { type: 'string' },
      kind: { type: 'string', enum: ['principal', 'functionKey'] },
      roles: { type: 'array', items: { type: 'string' } },
      canRead: { type: 'boolean' },
      canWrite: { type: 'boolean' },
    },
  },
  OrganizationCatalog: {
    type: 'object',
    additionalProperties: false,
    required: ['organizationId', 'entities', 'relationships'],
    properties: {
      organizationId: { type: 'string' },
      entities: {
        type: 'array',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['logicalName', 'displayName', 'entitySetName', 'changeTracking'],
          properties: {
            logicalName: { type: 'string' },
            displayName: { type: 'string' },
            entitySetName: { type: 'string' },
            changeTracking: { type: 'boolean', description: 'Export needs it on.' },
          },
        },
      },
      relationships: {
        type: 'array',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['schemaName', 'entity1', 'entity2', 'intersectEntity'],
          properties: {
            schemaName: { type: 'string' },
            entity1: { type: 'string' },
            entity2: { type: 'string' },
            intersectEntity: { type: 'string' },
          },
        },
      },
    },
  },
};

/** Signed-in callers: App Service Authentication forwards the principal; the key is for automation. */
export const adminSecuritySchemes = {
  appServicePrincipal: {
    type: 'apiKey',
    in: 'header',
    name: 'x-ms-client-principal',
    description:
      'Set by App Service Authentication (Entra ID) after sign-in; app roles Export.Admin (everything) and Export.Reader (read only).',
  },
};

export const forbidden = {
  description: 'Signed in, but without the app role this needs (FORBIDDEN).',
  content: { 'application/json': { schema: ref('Error') } },
};
