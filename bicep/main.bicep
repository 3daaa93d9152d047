// Dataverse Export: everything the Functions app needs in one resource group, for `azd up`.
// Subscription scope so azd can create the resource group (rg-<environment>) itself.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names the resource group and seeds every resource name.')
param environmentName string

@minLength(1)
@description('Region for every resource. Must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group name. Empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Object id of whoever runs azd (azd sets AZURE_PRINCIPAL_ID). Gets Key Vault Secrets Officer so they can add secrets; default SQL admin.')
param principalId string = ''

@description('Kind of principalId. Empty: left out of the role assignment, so Azure looks it up (a CI service principal works without saying so).')
@allowed([
  ''
  'User'
  'Group'
  'ServicePrincipal'
])
param principalType string = ''

@description('Entra admin of the SQL server: the object id of a user or group, or the client (application) id of a service principal. Empty: principalId as a user (the azd preprovision hook fills it in for a service principal).')
param sqlAdminObjectId string = ''

@description('Display name of that principal (UPN, group or app name). Empty: a generic label.')
param sqlAdminLogin string = ''

@description('Kind of the SQL admin. Empty: User.')
@allowed([
  ''
  'User'
  'Group'
  'Application'
])
param sqlAdminPrincipalType string = ''

@description('Base64 of 32 random bytes, written to Key Vault as secret payloadKeySecretName. Empty: the secret is left as it is (set it once after deploying, see the README runbook).')
@secure()
param payloadEncryptionKey string = ''

@description('Name of the Key Vault secret holding the current payload key (app setting PayloadKeySecretName). A key rotation changes it through the azd environment, so a later provision keeps it.')
param payloadKeySecretName string = 'payload-encryption-key'

@description('During a payload key rotation: comma-separated names of secrets holding the previous keys (see the README runbook).')
param payloadPreviousKeySecretNames string = ''

@description('Appended to the Key Vault name. Purge protection keeps a deleted vault\'s name taken for 90 days, so after `azd down` the postdown hook picks a new salt and the next `azd up` creates a new vault.')
@maxLength(8)
param keyVaultNameSalt string = ''
@description('The key automation sends to the management API (`x-functions-key`); e.g. `openssl rand -base64 32`. Stored as Key Vault secret `management-api-key`, which the app compares against. Empty: keep what an earlier deployment stored.')
@secure()
param managementKey string = ''

@description('The function key Dataverse sends to the webhook (WebhookKey); e.g. `openssl rand -base64 32`. Stored as function key `dataverse-webhook` and Key Vault secret `dataverse-webhook-key`. Empty: keep what an earlier deployment stored.')
@secure()
param webhookKey string = ''

@description('E-mail address for alert notifications. Empty: alerts show in the portal only.')
param alertEmailAddress string = ''

@description('Flex Consumption instance memory.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Flex Consumption scale-out limit.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@allowed([
  'debug'
  'info'
  'warn'
  'error'
])
param logLevel string = 'info'

@description('NCRONTAB (six fields) of the cleanup timer.')
param cleanupSchedule string = '0 */15 * * * *'

@description('NCRONTAB (six fields) of the reconcile timer.')
param reconcileSchedule string = '0 */5 * * * *'

@description('Failure logs older than this are removed by the cleanup timer; the storage lifecycle rule uses the same age as a backstop.')
@minValue(1)
param failureLogRetentionDays int = 30

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'dataverse-export'
}
var names = {
  resourceGroup: !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
  identity: 'id-api-${resourceToken}'
  functionApp: 'func-api-${resourceToken}'
  plan: 'plan-${resourceToken}'
  storage: 'st${resourceToken}'
  serviceBus: 'sb-${resourceToken}'
  keyVault: 'kv-${resourceToken}${toLower(keyVaultNameSalt)}'
  sqlServer: 'sql-${resourceToken}'
  sqlDatabase: 'dataverse-export-control'
  logAnalytics: 'log-${resourceToken}'
  applicationInsights: 'appi-${resourceToken}'
}
var deploymentContainerName = 'app-package-${resourceToken}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: names.resourceGroup
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: names.identity
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: names.logAnalytics
    applicationInsightsName: names.applicationInsights
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: names.storage
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    failureLogBackstopDays: failureLogRetentionDays
  }
}

module serviceBus 'modules/service-bus.bicep' = {
  name: 'service-bus'
  scope: rg
  params: {
    name: names.serviceBus
    location: location
    tags: tags
  }
}

module keyVault 'modules/key-vault.bicep' = {
  name: 'key-vault'
  scope: rg
  params: {
    name: names.keyVault
    location: location
    tags: tags
    payloadKeySecretName: payloadKeySecretName
    payloadEncryptionKey: payloadEncryptionKey
    webhookKey: webhookKey
    managementKey: managementKey
  }
}

module sql 'modules/sql.bicep' = {
  name: 'sql'
  scope: rg
  params: {
    serverName: names.sqlServer
    databaseName: names.sqlDatabase
    location: location
    tags: tags
    adminObjectId: !empty(sqlAdminObjectId) ? sqlAdminObjectId : principalId
    adminLogin: !empty(sqlAdminLogin) ? sqlAdminLogin : 'dataverse-export-sql-admin'
    adminPrincipalType: !empty(sqlAdminPrincipalType) ? sqlAdminPrincipalType : 'User'
  }
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    identityPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    serviceBusNamespaceName: serviceBus.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    operatorPrincipalId: principalId
    operatorPrincipalType: principalType
  }
}

// ---- BEGIN appSettings ---------------------------------------------------------------------------------------
// Every setting the app reads (lib/config.ts SETTINGS, checked by test/unit/bicep-settings.test.ts) plus the
// host's own. Connections are identity-based: <Connection>__fullyQualifiedNamespace / __blobServiceUri /
// __accountName, with __credential + __clientId naming the user-assigned identity for the Functions host, and
// AZURE_CLIENT_ID for DefaultAzureCredential in the app's own SDK clients. LocalSecrets is dev-only: absent.
var appSettings = {
  AzureWebJobsStorage__accountName: storage.outputs.name
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  AZURE_CLIENT_ID: identity.outputs.clientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  // Application Insights takes only Entra-signed telemetry (disableLocalAuth): the host reads this, and so does
  // the app's exporter (lib/telemetry.ts), both signing in as the identity (Monitoring Metrics Publisher).
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.outputs.clientId};Authorization=AAD'
  ServiceBusConnection__fullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
  ServiceBusConnection__credential: 'managedidentity'
  ServiceBusConnection__clientId: identity.outputs.clientId
  PayloadStorageConnection__blobServiceUri: storage.outputs.blobEndpoint
  PayloadStorageConnection__credential: 'managedidentity'
  PayloadStorageConnection__clientId: identity.outputs.clientId
  ControlStoreKind: 'mssql'
  // node-mssql maps "Active Directory Integrated" (without secret/MSI keys) to tedious's
  // azure-active-directory-default, i.e. DefaultAzureCredential with managedIdentityClientId = Client Id.
  // ("Active Directory Default" / "…Managed Identity" are not understood by node-mssql and fall back to SQL auth.)
  ControlStoreConnection: 'Server=tcp:${sql.outputs.serverFqdn},1433;Database=${sql.outputs.databaseName};Authentication=Active Directory Integrated;Client Id=${identity.outputs.clientId};Encrypt=true;Connection Timeout=30'
  KeyVaultUri: keyVault.outputs.uri
  PayloadKeySecretName: payloadKeySecretName
  PayloadPreviousKeySecretNames: payloadPreviousKeySecretNames
  ClaimCheckThresholdBytes: '196608'
  CleanupSchedule: cleanupSchedule
  ReconcileSchedule: reconcileSchedule
  FailureLogRetentionDays: string(failureLogRetentionDays)
  TargetOutageBackoffSeconds: '10'
  AllowTrustServerCertificate: 'false'
  DataverseCredential: 'default'
  DataverseMaxConcurrency: '52'
  // Empty: the app derives https://<WEBSITE_HOSTNAME>, which the platform sets.
  PublicBaseUrl: ''
  DataverseWebhookKey: '@Microsoft.KeyVault(VaultName=${keyVault.outputs.name};SecretName=${keyVault.outputs.webhookKeySecretName})'
  DurableTaskHubName: 'dataverseexport'
  // The Node worker's old space capped at a quarter of the instance: V8 sizes its heap from the machine it sees
  // and lets garbage grow towards that; capped, an initial sync peaks near 400 MB (README, Benchmarks).
  languageWorkers__node__arguments: '--max-old-space-size=${instanceMemoryMB / 4}'
  LogLevel: logLevel
  // The management API's key for automation; people sign in through App Service Authentication instead.
  ManagementKeyAccepted: 'true'
  ManagementKeySecretName: 'management-api-key'
  // Profiles reach only Dataverse hosts over https, and only secrets meant for targets (the app's own are refused).
  DataverseHostAllowList: ''
  AllowLoopbackDataverse: 'false'
  TargetSecretNames: '*'
}
// ---- END appSettings -----------------------------------------------------------------------------------------

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: names.functionApp
    planName: names.plan
    location: location
    tags: tags
    identityId: identity.outputs.id
    deploymentStorageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    appSettings: appSettings
    webhookKey: webhookKey
  }
  // The host starts as soon as the site exists: its identity should already reach storage, Service Bus and
  // Key Vault, or the first start fails and waits for a restart.
  dependsOn: [
    rbac
  ]
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    applicationInsightsId: monitoring.outputs.applicationInsightsId
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    namePrefix: 'dataverse-export-${resourceToken}'
    serviceBusNamespaceId: serviceBus.outputs.id
    queueName: serviceBus.outputs.queueName
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    alertEmailAddress: alertEmailAddress
  }
}

// azd reads these into the environment (.azure/<env>/.env).
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output SERVICE_API_NAME string = functionApp.outputs.name
output SERVICE_API_URI string = functionApp.outputs.uri
output WEBHOOK_URL string = '${functionApp.outputs.uri}/api/webhooks/dataverse'
output AZURE_MANAGED_IDENTITY_NAME string = identity.outputs.name
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_SERVICEBUS_NAMESPACE string = serviceBus.outputs.fullyQualifiedNamespace
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.uri
output AZURE_SQL_SERVER_NAME string = sql.outputs.serverName
output AZURE_SQL_SERVER_FQDN string = sql.outputs.serverFqdn
output AZURE_SQL_DATABASE_NAME string = sql.outputs.databaseName
output APPLICATIONINSIGHTS_CONNECTION_STRING string = monitoring.outputs.connectionString
