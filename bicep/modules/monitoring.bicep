// Log Analytics workspace + workspace-based Application Insights. The connection string goes to the app
// (APPLICATIONINSIGHTS_CONNECTION_STRING); the workbook and the alerts query this component.

param logAnalyticsName string
param applicationInsightsName string
param location string
param tags object = {}

@description('Days the workspace keeps logs and metrics.')
@minValue(30)
@maxValue(730)
param retentionInDays int = 30

resource workspace 'Microsoft.OperationalInsights/workspaces@2022-10-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
  }
}

// Entra-only ingestion (as Microsoft's Flex Consumption samples do): the connection string alone no longer lets
// anyone send telemetry. The app's identity holds Monitoring Metrics Publisher (rbac.bicep), and the host and the
// app's exporter sign in with APPLICATIONINSIGHTS_AUTHENTICATION_STRING.
resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true
  }
}

output workspaceId string = workspace.id
output applicationInsightsId string = appInsights.id
output applicationInsightsName string = appInsights.name
output connectionString string = appInsights.properties.ConnectionString
