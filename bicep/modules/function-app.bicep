// Flex Consumption plan + Function App (Node 22, v4 programming model) running as the user-assigned identity.
// The app settings arrive as one object from main.bicep (the `appSettings` block), so they live in one place.

param name string
param planName string
param location string
param tags object = {}

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('Blob endpoint of the storage account holding the deployment package container.')
param deploymentStorageBlobEndpoint string

param deploymentContainerName string

@description('Memory per instance. 2048 MB leaves room for a 500-message batch plus durable replay.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Upper bound on instances: also bounds concurrent writers to the control store and target databases.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Every app setting, name → string value (see the appSettings block in main.bicep).')
param appSettings object

@description('Value of the host-level function key `dataverse-webhook` that Dataverse sends; empty leaves the key as it is.')
@secure()
param webhookKey string = ''

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  // azd finds the app to deploy service `api` to by this tag.
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references in app settings (DataverseWebhookKey) resolve with the app's own identity.
    keyVaultReferenceIdentity: identityId
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${deploymentStorageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'node'
        version: '22'
      }
    }
  }
}

resource siteAppSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: appSettings
}

// Deployments go through azd / OneDeploy with Entra ID; no FTP or SCM basic-auth credentials.
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

// A named key for Dataverse alone: it can be rotated without touching the keys people use for the API.
resource webhookFunctionKey 'Microsoft.Web/sites/host/functionKeys@2024-04-01' = if (!empty(webhookKey)) {
  name: '${site.name}/default/dataverse-webhook'
  properties: {
    name: 'dataverse-webhook'
    value: webhookKey
  }
}

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
output uri string = 'https://${site.properties.defaultHostName}'
