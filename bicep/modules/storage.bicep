// One storage account, reached only with Entra ID (shared keys off): the Functions host and Durable task hub
// (AzureWebJobsStorage__*), the Flex Consumption deployment package, claim-check payloads and failure logs.

param name string
param location string
param tags object = {}

@description('Blob container that receives the Flex Consumption deployment package.')
param deploymentContainerName string

@description('Claim-check payloads (encrypted change bodies too large for a Service Bus message).')
param claimCheckContainerName string = 'claimchecks'

@description('Failure logs (entity, record id, time, reason), one blob per profile and day.')
param failureLogContainerName string = 'failurelog'

@description('Backstop for the cleanup timer: failure-log blobs not modified for this many days are deleted by the platform.')
@minValue(1)
param failureLogBackstopDays int = 30

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    // A deleted claim check or failure log can be recovered for a week (an operator's mistake, a cleanup bug).
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

var containerNames = [
  deploymentContainerName
  claimCheckContainerName
  failureLogContainerName
]

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for containerName in containerNames: {
    parent: blobService
    name: containerName
    properties: {
      publicAccess: 'None'
    }
  }
]

// The cleanup timer removes failure logs past FailureLogRetentionDays; this rule catches whatever it misses
// (timer disabled, app deleted). Claim checks get no rule: a dead-lettered message may still need its blob.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          enabled: true
          name: 'failurelog-backstop'
          type: 'Lifecycle'
          definition: {
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: failureLogBackstopDays
                }
              }
            }
            filters: {
              blobTypes: [
                'blockBlob'
                'appendBlob'
              ]
              prefixMatch: [
                '${failureLogContainerName}/'
              ]
            }
          }
        }
      ]
    }
  }
  dependsOn: [
    containers
  ]
}

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
