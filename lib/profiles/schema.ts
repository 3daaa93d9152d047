import type { FromSchema } from 'json-schema-to-ts';

/**
 * The export profile contract (docs/architecture.md, "Profile API"). This one schema validates requests (ajv), types the code
 * (`FromSchema`) and is published in `GET /api/openapi.json`, so the three cannot drift.
 */
export const LOGICAL_NAME = '^[a-z_][a-z0-9_]{0,127}$';
/** DES's retry defaults: a change failing transiently is tried 12 times, 5 s apart. */
export const DEFAULT_RETRY_COUNT = 12;
export const DEFAULT_RETRY_INTERVAL_SECONDS = 5;
const GUID = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

export const profileInputSchema = {
  $id: 'ExportProfileInput',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'organizationId', 'source', 'target', 'entities'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200, description: 'A display name.' },
    organizationId: {
      type: 'string',
      pattern: GUID,
      description: 'The Dataverse organization id (OrganizationId in webhook payloads).',
    },
    source: {
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      properties: {
        url: {
          type: 'string',
          pattern: '^https?://[^\\s/?#]+(:[0-9]+)?/?$',
          maxLength: 2048,
          description:
            'The environment URL, e.g. https://contoso.crm.dynamics.com: https on a Dataverse host (*.dynamics.com, *.microsoftdynamics.us, *.appsplatform.us, *.dynamics.cn, or a suffix of setting DataverseHostAllowList); http only to loopback with AllowLoopbackDataverse=true.',
        },
      },
    },
    target: {
      type: 'object',
      additionalProperties: false,
      required: ['kind', 'connectionSecret'],
      properties: {
        kind: { type: 'string', enum: ['postgres', 'mssql'], description: '`mssql` is Azure SQL.' },
        connectionSecret: {
          type: 'string',
          pattern: '^[0-9A-Za-z-]{1,127}$',
          description:
            "Name of the Key Vault secret (locally: local secret) holding the connection string; one setting TargetSecretNames admits, never one of the app's own secrets.",
        },
        schema: {
          type: 'string',
          pattern: '^[A-Za-z_][A-Za-z0-9_]{0,62}$',
          description: 'Target schema; default `dbo` (mssql) or `public` (postgres).',
        },
        tablePrefix: {
          type: 'string',
          pattern: '^([A-Za-z_][A-Za-z0-9_]{0,31})?$',
          description: 'Prefix for every table: `<prefix>_<entity>`; empty for none.',
        },
      },
    },
    entities: {
      type: 'array',
      minItems: 1,
      maxItems: 500,
      uniqueItems: true,
      items: { type: 'string', pattern: LOGICAL_NAME },
      description: 'Entity logical names to export.',
    },
    relationships: {
      type: 'array',
      maxItems: 500,
      uniqueItems: true,
      items: { type: 'string', pattern: LOGICAL_NAME },
      description: 'N:N relationship schema names (lower case) whose intersect tables to export.',
    },
    options: {
      type: 'object',
      additionalProperties: false,
      properties: {
        writeDeleteLog: { type: 'boolean', description: 'Write a DeleteLog row for every delete. Default true.' },
        retryCount: {
          type: 'integer',
          minimum: 0,
          maximum: 100,
          description: `Retries of a transient write failure. Default ${DEFAULT_RETRY_COUNT}.`,
        },
        retryIntervalSeconds: {
          type: 'integer',
          minimum: 1,
          maximum: 3600,
          description: `Seconds between retries. Default ${DEFAULT_RETRY_INTERVAL_SECONDS}.`,
        },
        initialSync: {
          type: 'boolean',
          description: 'Copy every row on activation. Default true; false for an already populated target.',
        },
        registerWebhook: {
          type: 'boolean',
          description:
            'Activation registers the webhook and its steps in Dataverse. Default true; false leaves registration to an administrator.',
        },
        enableChangeTracking: {
          type: 'boolean',
          description:
            'Activation switches change tracking on for an entity that has it off, instead of refusing it. Default false.',
        },
      },
    },
  },
} as const;

export type ProfileInput = FromSchema<typeof profileInputSchema>;

export type ProfileState = 'Inactive' | 'Active';

/** A stored profile: the input with every default filled in, plus the server-assigned fields. */
export interface ExportProfile {
  id: string;
  name: string;
  organizationId: string;
  source: { url: string };
  target: { kind: 'postgres' | 'mssql'; connectionSecret: string; schema: string; tablePrefix: string };
  entities: string[];
  relationships: string[];
  options: {
    writeDeleteLog: boolean;
    retryCount: number;
    retryIntervalSeconds: number;
    initialSync: boolean;
    registerWebhook: boolean;
    enableChangeTracking: boolean;
  };
  state: ProfileState;
  createdOn: string;
  modifiedOn: string;
}

export type ProfileDefinition = Omit<ExportProfile, 'id' | 'state' | 'createdOn' | 'modifiedOn'>;

/** Fills the DES defaults into validated input. */
export function withDefaults(input: ProfileInput): ProfileDefinition {
  const kind = input.target.kind;
  return {
    name: input.name,
    organizationId: input.organizationId.toLowerCase(),
    source: { url: input.source.url.replace(/\/+$/, '') },
    target: {
      kind,
      connectionSecret: input.target.connectionSecret,
      schema: input.target.schema ?? (kind === 'mssql' ? 'dbo' : 'public'),
      tablePrefix: input.target.tablePrefix ?? '',
    },
    entities: [...input.entities],
    relationships: [...(input.relationships ?? [])],
    options: {
      writeDeleteLog: input.options?.writeDeleteLog ?? true,
      retryCount: input.options?.retryCount ?? DEFAULT_RETRY_COUNT,
      retryIntervalSeconds: input.options?.retryIntervalSeconds ?? DEFAULT_RETRY_INTERVAL_SECONDS,
      initialSync: input.options?.initialSync ?? true,
      registerWebhook: input.options?.registerWebhook ?? true,
      enableChangeTracking: input.options?.enableChangeTracking ?? false,
    },
  };
}
