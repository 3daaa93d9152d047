// Key Vault in RBAC mode: the payload encryption key and the target connection secrets named by profiles
// (target.connectionSecret). The app reads them as Key Vault Secrets User; admins add target secrets.

param name string
param location string
param tags object = {}

@description('Name of the secret holding the base64 AES-256 key for claim-check blobs (PayloadKeySecretName).')
param payloadKeySecretName string = 'payload-encryption-key'

@description('Base64 of 32 random bytes (openssl rand -base64 32). Empty: the secret is not written by this deployment (set it once after deploying, see the README runbook).')
@secure()
param payloadEncryptionKey string = ''

@description('Days a deleted vault or secret stays recoverable. With purge protection the vault name stays reserved that long.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

// Written only when a key is supplied, so a later `azd provision` without it never replaces the key that
// already encrypts stored claim checks.
resource payloadKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(payloadEncryptionKey)) {
  parent: vault
  name: payloadKeySecretName
  properties: {
    value: payloadEncryptionKey
    contentType: 'base64; AES-256 key'
  }
}

@description('The webhook\'s function key, stored for the app setting DataverseWebhookKey. Empty: left as it is.')
@secure()
param webhookKey string = ''

var webhookKeySecretName = 'dataverse-webhook-key'

@description('Name of the secret holding the management API key (app setting ManagementKeySecretName).')
param managementKeySecretName string = 'management-api-key'

// Like the payload key: written only when supplied, so a provision without it keeps the registered key.
resource webhookKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(webhookKey)) {
  parent: vault
  name: webhookKeySecretName
  properties: {
    value: webhookKey
    contentType: 'Functions key Dataverse sends as WebhookKey'
  }
}

@description('The management API key automation sends (x-functions-key), stored for the app setting ManagementKeySecretName. Empty: left as it is.')
@secure()
param managementKey string = ''

resource managementKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(managementKey)) {
  parent: vault
  name: managementKeySecretName
  properties: {
    value: managementKey
    contentType: 'Key the management API accepts from automation'
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
output webhookKeySecretName string = webhookKeySecretName
