// Azure SQL logical server + database for the control store (profiles, entity status, metrics, checkpoints).
// Entra ID only: no SQL logins exist, the app connects as its managed identity (a database user created
// after deployment, see the README's runbook, step 2).

param serverName string
param databaseName string
param location string
param tags object = {}

@description('Object id of the Entra principal (user, group or service principal) that administers the server.')
param adminObjectId string

@description('Display name of that principal (UPN, group name or app name); shown as the admin login.')
param adminLogin string

@allowed([
  'User'
  'Group'
  'Application'
])
param adminPrincipalType string = 'User'

@description('Most vCores the serverless database may scale to.')
@allowed([
  1
  2
  4
  6
  8
])
param maxVCores int = 2

@description('Minutes idle before the database pauses; -1 never pauses. The reconcile timer (every 5 min) keeps it awake anyway, so pausing would only add resume stalls.')
param autoPauseDelayMinutes int = -1

resource server 'Microsoft.Sql/servers@2021-11-01' = {
  name: serverName
  location: location
  tags: tags
  properties: {
    version: '12.0'
    minimalTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
    administrators: {
      administratorType: 'ActiveDirectory'
      azureADOnlyAuthentication: true
      login: adminLogin
      sid: adminObjectId
      principalType: adminPrincipalType
      tenantId: tenant().tenantId
    }
  }
}

// 0.0.0.0–0.0.0.0 is the portal's "Allow Azure services and resources to access this server": Flex Consumption
// has no fixed outbound addresses without a VNet. It admits any Azure-hosted client to the TDS endpoint, but
// sign-in still needs an Entra identity that has a user in the database.
resource allowAzureServices 'Microsoft.Sql/servers/firewallRules@2021-11-01' = {
  parent: server
  name: 'AllowAllWindowsAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

resource database 'Microsoft.Sql/servers/databases@2021-11-01' = {
  parent: server
  name: databaseName
  location: location
  tags: tags
  // General Purpose serverless: billed per vCore-second between minCapacity and maxVCores.
  sku: {
    name: 'GP_S_Gen5'
    tier: 'GeneralPurpose'
    family: 'Gen5'
    capacity: maxVCores
  }
  properties: {
    collation: 'SQL_Latin1_General_CP1_CI_AS'
    maxSizeBytes: 34359738368
    minCapacity: json('0.5')
    autoPauseDelay: autoPauseDelayMinutes
    requestedBackupStorageRedundancy: 'Local'
    zoneRedundant: false
  }
}

output serverName string = server.name
output serverFqdn string = server.properties.fullyQualifiedDomainName
output databaseName string = database.name
