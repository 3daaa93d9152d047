import { AppError } from './errors.js';
import { DATAVERSE_HOST_SUFFIXES, type ProfileReach } from './profiles/profile-reach.js';

/**
 * Every setting the app reads, in one place. `local.settings.sample.json`, the README's settings table
 * and `bicep/main.bicep` are checked against this list by tests, so a setting cannot be added silently.
 */
export interface SettingSpec {
  name: string;
  description: string;
  /** Required in every deployment (the Bicep must set it). */
  required: boolean;
  default?: string;
  /** Settings that stand in for this one (identity-based connection variants). */
  alternatives?: string[];
}

export const SETTINGS: readonly SettingSpec[] = [
  {
    name: 'ControlStoreKind',
    description:
      'Database engine of the control store (profiles, status, metrics, checkpoints): `mssql` or `postgres`.',
    required: true,
  },
  {
    name: 'ControlStoreConnection',
    description:
      'Connection string of the control store. Azure SQL with Entra auth: `Server=tcp:<server>.database.windows.net;Database=<db>;Authentication=Active Directory Default`.',
    required: true,
  },
  {
    name: 'ServiceBusConnection',
    description: 'Service Bus connection string (local). In Azure use `ServiceBusConnection__fullyQualifiedNamespace`.',
    required: true,
    alternatives: ['ServiceBusConnection__fullyQualifiedNamespace'],
  },
  {
    name: 'PayloadStorageConnection',
    description:
      'Blob Storage for claim-check payloads and failure logs: a connection string (local), or in Azure `PayloadStorageConnection__blobServiceUri`.',
    required: true,
    alternatives: ['PayloadStorageConnection__blobServiceUri'],
  },
  {
    name: 'KeyVaultUri',
    description:
      'Key Vault holding target connection secrets and the payload encryption key. Empty: the local secret provider (`LocalSecrets`) is used.',
    required: false,
  },
  {
    name: 'LocalSecrets',
    description: 'Development only: a JSON object of secret name to value, used when `KeyVaultUri` is empty.',
    required: false,
  },
  {
    name: 'PayloadKeySecretName',
    description: 'Name of the secret holding the base64 AES-256 key that encrypts claim-check blobs.',
    required: false,
    default: 'payload-encryption-key',
  },
  {
    name: 'PayloadPreviousKeySecretNames',
    description:
      'Comma-separated names of secrets holding earlier payload keys, kept after a key rotation so claim checks sealed before it still open. Empty when no rotation is under way.',
    required: false,
  },
  {
    name: 'ClaimCheckThresholdBytes',
    description: 'Changes whose serialized size exceeds this go to Blob Storage as an encrypted claim check.',
    required: false,
    default: '196608',
  },
  {
    name: 'CleanupSchedule',
    description: 'NCRONTAB schedule of the cleanup timer (six fields, seconds first).',
    required: false,
    default: '0 */15 * * * *',
  },
  {
    name: 'ReconcileSchedule',
    description: 'NCRONTAB schedule of the reconcile timer that follows delta links to heal missed webhooks.',
    required: false,
    default: '0 */5 * * * *',
  },
  {
    name: 'FailureLogRetentionDays',
    description: 'Failure-log blobs older than this many days are removed by the cleanup timer (DES kept 30).',
    required: false,
    default: '30',
  },
  {
    name: 'TargetOutageBackoffSeconds',
    description: 'While a target database is unreachable, its changes are re-scheduled this many seconds later.',
    required: false,
    default: '10',
  },
  {
    name: 'AllowTrustServerCertificate',
    description:
      'Development only: `true` accepts `TrustServerCertificate=true` in Azure SQL connection strings (the server’s TLS certificate is then not checked). Otherwise such a string is refused.',
    required: false,
    default: 'false',
  },
  {
    name: 'DataverseCredential',
    description:
      '`default`: DefaultAzureCredential (managed identity in Azure, developer sign-in locally) for the Dataverse Web API; `none`: no token (the local sample organization).',
    required: false,
    default: 'default',
  },
  {
    name: 'DataverseMaxConcurrency',
    description:
      'Web API requests in flight at once per Dataverse organization, across every profile and entity this instance copies or reads (Dataverse allows 52 per user). Partitioned copies grow their read lanes up to it and halve them on a 429.',
    required: false,
    default: '52',
  },
  {
    name: 'PublicBaseUrl',
    description:
      "The app's public base URL, e.g. `https://<app>.azurewebsites.net`: activation registers `<PublicBaseUrl>/api/webhooks/dataverse` as the Dataverse webhook. Empty: `https://` + `WEBSITE_HOSTNAME` (set by Azure).",
    required: false,
  },
  {
    name: 'DataverseWebhookKey',
    description:
      "The function key Dataverse sends as the webhook's WebhookKey (in Azure a Key Vault reference to the key Bicep creates). Empty: activation cannot register the webhook; profiles need `options.registerWebhook: false`.",
    required: false,
  },
  {
    name: 'DurableTaskHubName',
    description: 'Task hub of the durable initial-sync orchestration (referenced from host.json).',
    required: false,
    default: 'dataverseexport',
  },
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING',
    description: 'When set, logs and metrics go to Application Insights through OpenTelemetry.',
    required: false,
  },
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING',
    description:
      'With Application Insights local auth off: `ClientId=<managed identity client id>;Authorization=AAD`, so telemetry is sent signed in as that identity (it needs Monitoring Metrics Publisher).',
    required: false,
  },
  {
    name: 'ManagementKeyAccepted',
    description:
      '`true`: the management API also opens to the function key automation sends (`x-functions-key` or `?code=`), beside signed-in principals with an app role; `false`: only signed-in principals.',
    required: false,
    default: 'true',
  },
  {
    name: 'ManagementKeySecretName',
    description:
      'Secret holding that key (in Azure the Key Vault secret Bicep writes from MANAGEMENT_API_KEY). A missing secret turns the key off.',
    required: false,
    default: 'management-api-key',
  },
  {
    name: 'DataverseHostAllowList',
    description:
      'Comma-separated host suffixes a profile’s `source.url` may use beside the Dataverse hosts of every Microsoft cloud (`*.dynamics.com`, `*.microsoftdynamics.us`, `*.appsplatform.us`, `*.dynamics.cn`), e.g. `.contoso-proxy.example`. Sources are always https.',
    required: false,
  },
  {
    name: 'AllowLoopbackDataverse',
    description:
      'Development only: `true` lets a profile’s `source.url` be plain http on a loopback host (the local sample organization). Otherwise such a source is refused.',
    required: false,
    default: 'false',
  },
  {
    name: 'TargetSecretNames',
    description:
      'Comma-separated secret names, or `prefix*` patterns, a profile’s `target.connectionSecret` may name; `*` admits any. The app’s own secrets (payload keys, management key, webhook key) are refused whatever this says.',
    required: false,
    default: '*',
  },
  {
    name: 'LogLevel',
    description: 'Minimum level of the structured logs: `debug`, `info`, `warn`, `error`.',
    required: false,
    default: 'info',
  },
];

export type ControlStoreKind = 'postgres' | 'mssql';

export interface AppConfig {
  controlStore: { kind: ControlStoreKind; connectionString: string };
  serviceBus: { connectionString?: string; fullyQualifiedNamespace?: string };
  payloadStorage: { connectionString?: string; blobServiceUri?: string };
  keyVaultUri?: string;
  localSecrets: Record<string, string>;
  payloadKeySecretName: string;
  payloadPreviousKeySecretNames: string[];
  claimCheckThresholdBytes: number;
  cleanupSchedule: string;
  reconcileSchedule: string;
  failureLogRetentionDays: number;
  targetOutageBackoffSeconds: number;
  allowTrustServerCertificate: boolean;
  dataverseCredential: 'default' | 'none';
  /** Requests in flight per organization from this instance. */
  dataverseMaxConcurrency: number;
  /** Where Dataverse posts changes, and the key it sends; undefined when either is unknown. */
  webhook?: { url: string; key: string };
  durableTaskHubName: string;
  applicationInsightsConnectionString?: string;
  applicationInsightsAuthenticationString?: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** The secret holding the management key, or undefined when the key is turned off. */
  managementKeySecretName?: string;
  /** Where a profile may send the Dataverse token and which secrets it may read as a target. */
  profileReach: ProfileReach;
}

/** The Key Vault secret Bicep stores the webhook key in (bicep/modules/key-vault.bicep): never a target. */
export const WEBHOOK_KEY_SECRET_NAME = 'dataverse-webhook-key';

type Env = Record<string, string | undefined>;

/** Reads and checks every setting; throws CONFIG_INVALID naming each missing or malformed one. */
export function loadConfig(env: Env = process.env): AppConfig {
  const problems: { field: string; message: string }[] = [];
  const get = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const withDefault = (name: string): string => get(name) ?? SETTINGS.find((s) => s.name === name)?.default ?? '';
  const required = (name: string): string => {
    const v = get(name);
    if (v === undefined) problems.push({ field: name, message: `setting ${name} is required` });
    return v ?? '';
  };
  const integer = (name: string, min: number): number => {
    const raw = withDefault(name);
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) {
      problems.push({
        field: name,
        message: `setting ${name} must be an integer ≥ ${min}, got ${JSON.stringify(raw)}`,
      });
    }
    return n;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[], value: string | undefined): T => {
    if (value !== undefined && !allowed.includes(value as T)) {
      problems.push({
        field: name,
        message: `setting ${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`,
      });
    }
    return value as T;
  };

  const rawKind = required('ControlStoreKind');
  const kind = oneOf<ControlStoreKind>('ControlStoreKind', ['postgres', 'mssql'], rawKind || undefined);
  const controlConnection = required('ControlStoreConnection');

  const sbConn = get('ServiceBusConnection');
  const sbNs = get('ServiceBusConnection__fullyQualifiedNamespace');
  if (!sbConn && !sbNs) {
    problems.push({
      field: 'ServiceBusConnection',
      message: 'set ServiceBusConnection (connection string) or ServiceBusConnection__fullyQualifiedNamespace',
    });
  }
  const psConn = get('PayloadStorageConnection');
  const psUri = get('PayloadStorageConnection__blobServiceUri');
  if (!psConn && !psUri) {
    problems.push({
      field: 'PayloadStorageConnection',
      message: 'set PayloadStorageConnection (connection string) or PayloadStorageConnection__blobServiceUri',
    });
  }

  let localSecrets: Record<string, string> = {};
  const rawSecrets = get('LocalSecrets');
  if (rawSecrets) {
    try {
      localSecrets = JSON.parse(rawSecrets) as Record<string, string>;
    } catch {
      problems.push({ field: 'LocalSecrets', message: 'setting LocalSecrets must be a JSON object of name → value' });
    }
  }

  const hostName = get('WEBSITE_HOSTNAME');
  const publicBaseUrl = (get('PublicBaseUrl') ?? (hostName ? `https://${hostName}` : undefined))?.replace(/\/+$/, '');
  if (publicBaseUrl && !/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/.test(publicBaseUrl)) {
    problems.push({
      field: 'PublicBaseUrl',
      message: `setting PublicBaseUrl must be an http(s) URL, got ${JSON.stringify(publicBaseUrl)}`,
    });
  }
  const webhookKey = get('DataverseWebhookKey');
  const list = (name: string): string[] =>
    withDefault(name)
      .split(',')
      .map((n) => n.trim())
      .filter(Boolean);
  const payloadPreviousKeySecretNames = list('PayloadPreviousKeySecretNames');

  const config: AppConfig = {
    controlStore: { kind, connectionString: controlConnection },
    serviceBus: { connectionString: sbConn, fullyQualifiedNamespace: sbNs },
    payloadStorage: { connectionString: psConn, blobServiceUri: psUri },
    keyVaultUri: get('KeyVaultUri'),
    localSecrets,
    payloadKeySecretName: withDefault('PayloadKeySecretName'),
    payloadPreviousKeySecretNames,
    claimCheckThresholdBytes: integer('ClaimCheckThresholdBytes', 1024),
    cleanupSchedule: withDefault('CleanupSchedule'),
    reconcileSchedule: withDefault('ReconcileSchedule'),
    failureLogRetentionDays: integer('FailureLogRetentionDays', 1),
    targetOutageBackoffSeconds: integer('TargetOutageBackoffSeconds', 1),
    allowTrustServerCertificate:
      oneOf('AllowTrustServerCertificate', ['true', 'false'], withDefault('AllowTrustServerCertificate')) === 'true',
    dataverseCredential: oneOf('DataverseCredential', ['default', 'none'], withDefault('DataverseCredential')),
    dataverseMaxConcurrency: integer('DataverseMaxConcurrency', 1),
    webhook:
      publicBaseUrl && webhookKey ? { url: `${publicBaseUrl}/api/webhooks/dataverse`, key: webhookKey } : undefined,
    durableTaskHubName: withDefault('DurableTaskHubName'),
    applicationInsightsConnectionString: get('APPLICATIONINSIGHTS_CONNECTION_STRING'),
    applicationInsightsAuthenticationString: get('APPLICATIONINSIGHTS_AUTHENTICATION_STRING'),
    logLevel: oneOf('LogLevel', ['debug', 'info', 'warn', 'error'], withDefault('LogLevel')),
    managementKeySecretName:
      oneOf('ManagementKeyAccepted', ['true', 'false'], withDefault('ManagementKeyAccepted')) === 'true'
        ? withDefault('ManagementKeySecretName')
        : undefined,
    profileReach: {
      dataverseHostSuffixes: [...DATAVERSE_HOST_SUFFIXES, ...list('DataverseHostAllowList')],
      allowLoopback:
        oneOf('AllowLoopbackDataverse', ['true', 'false'], withDefault('AllowLoopbackDataverse')) === 'true',
      targetSecretNames: list('TargetSecretNames'),
      // Refused even when the management key is off: the secret may still hold the host's key.
      reservedSecretNames: [
        withDefault('PayloadKeySecretName'),
        ...payloadPreviousKeySecretNames,
        withDefault('ManagementKeySecretName'),
        WEBHOOK_KEY_SECRET_NAME,
      ],
    },
  };

  if (problems.length) {
    throw new AppError(
      'CONFIG_INVALID',
      `Invalid settings: ${problems.map((p) => p.message).join('; ')}. See local.settings.sample.json for each setting.`,
      { details: problems },
    );
  }
  return config;
}
