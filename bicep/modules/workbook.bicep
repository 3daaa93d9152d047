// Azure Monitor workbook over Application Insights: applied / failed changes and replication lag per export
// profile (custom metrics dataverse_export.applied, dataverse_export.failed, dataverse_export.lag_ms with
// dimensions profileId and entity) and the errors the app logged per profile (structured traces).

param location string
param tags object = {}

@description('Resource id of the Application Insights component the queries run against.')
param applicationInsightsId string

param displayName string = 'Dataverse Export'

// {Profile} expands to 'id1','id2' (or to nothing for "All"), so every query starts with the same filter.
// Multi-line ''' strings: KQL quotes stay as they are and nothing is interpolated.
var appliedQuery = '''
let profiles = dynamic([{Profile}]);
customMetrics
| where name == 'dataverse_export.applied'
| extend profileId = tostring(customDimensions.profileId)
| where array_length(profiles) == 0 or profileId in (profiles)
| summarize applied = sum(valueSum) by profileId, bin(timestamp, {TimeRange:grain})
| render timechart
'''

var failedQuery = '''
let profiles = dynamic([{Profile}]);
customMetrics
| where name == 'dataverse_export.failed'
| extend profileId = tostring(customDimensions.profileId)
| where array_length(profiles) == 0 or profileId in (profiles)
| summarize failed = sum(valueSum) by profileId, bin(timestamp, {TimeRange:grain})
| render timechart
'''

var lagQuery = '''
let profiles = dynamic([{Profile}]);
customMetrics
| where name == 'dataverse_export.lag_ms'
| extend profileId = tostring(customDimensions.profileId)
| where array_length(profiles) == 0 or profileId in (profiles)
| summarize avgLagSeconds = todouble(sum(valueSum)) / todouble(sum(valueCount)) / 1000.0 by profileId, bin(timestamp, {TimeRange:grain})
| render timechart
'''

var perEntityQuery = '''
let profiles = dynamic([{Profile}]);
customMetrics
| where name in ('dataverse_export.applied', 'dataverse_export.failed', 'dataverse_export.lag_ms')
| extend profileId = tostring(customDimensions.profileId), entity = tostring(customDimensions.entity)
| where array_length(profiles) == 0 or profileId in (profiles)
| summarize applied = sumif(valueSum, name == 'dataverse_export.applied'),
            failed = sumif(valueSum, name == 'dataverse_export.failed'),
            avgLagSeconds = todouble(sumif(valueSum, name == 'dataverse_export.lag_ms')) / todouble(sumif(valueCount, name == 'dataverse_export.lag_ms')) / 1000.0,
            maxLagSeconds = maxif(valueMax, name == 'dataverse_export.lag_ms') / 1000.0
    by profileId, entity
| order by failed desc, applied desc
'''

// The app logs one JSON object per line through the invocation's logger, so its fields arrive inside
// traces.message (customDimensions holds only the host's own): parse the line, keep its text as the example.
var errorsQuery = '''
let profiles = dynamic([{Profile}]);
traces
| where severityLevel >= 3
| extend entry = parse_json(message)
| extend profileId = tostring(entry.profileId), code = coalesce(tostring(entry.code), tostring(entry.error.code))
| where array_length(profiles) == 0 or profileId in (profiles)
| summarize occurrences = count(), lastSeen = max(timestamp), example = take_any(coalesce(tostring(entry.message), message)) by profileId, code
| order by lastSeen desc
'''

var profilesQuery = '''
customMetrics
| where name startswith 'dataverse_export.'
| extend profileId = tostring(customDimensions.profileId)
| where isnotempty(profileId)
| distinct profileId
| order by profileId asc
'''

var componentsType = 'microsoft.insights/components'

// One KQL item per chart or table; all follow the TimeRange parameter.
var queryItems = [
  {
    name: 'applied'
    title: 'Changes applied'
    query: appliedQuery
    visualization: 'timechart'
  }
  {
    name: 'failed'
    title: 'Changes failed (final failures, written to the failure log)'
    query: failedQuery
    visualization: 'timechart'
  }
  {
    name: 'lag'
    title: 'Average replication lag (seconds)'
    query: lagQuery
    visualization: 'timechart'
  }
  {
    name: 'per-entity'
    title: 'Per profile and entity'
    query: perEntityQuery
    visualization: 'table'
  }
  {
    name: 'errors'
    title: 'Errors logged, by profile and error code'
    query: errorsQuery
    visualization: 'table'
  }
]

var headerItems = [
  {
    type: 1
    name: 'title'
    content: {
      json: '## Dataverse Export\nChanges applied and failed, and replication lag (Dataverse operation to target commit), per export profile.'
    }
  }
  {
    type: 9
    name: 'parameters'
    content: {
      version: 'KqlParameterItem/1.0'
      style: 'pills'
      queryType: 0
      resourceType: componentsType
      parameters: [
        {
          id: guid(applicationInsightsId, 'workbook', 'TimeRange')
          version: 'KqlParameterItem/1.0'
          name: 'TimeRange'
          label: 'Time range'
          type: 4
          isRequired: true
          value: {
            durationMs: 86400000
          }
          typeSettings: {
            allowCustom: true
            selectableValues: [
              {
                durationMs: 3600000
              }
              {
                durationMs: 14400000
              }
              {
                durationMs: 86400000
              }
              {
                durationMs: 259200000
              }
              {
                durationMs: 604800000
              }
            ]
          }
        }
        {
          id: guid(applicationInsightsId, 'workbook', 'Profile')
          version: 'KqlParameterItem/1.0'
          name: 'Profile'
          label: 'Export profile'
          type: 2
          multiSelect: true
          quote: '\''
          delimiter: ','
          query: profilesQuery
          queryType: 0
          resourceType: componentsType
          timeContext: {
            durationMs: 604800000
          }
          typeSettings: {
            additionalResourceOptions: [
              'value::all'
            ]
            selectAllValue: ''
            showDefault: false
          }
          defaultValue: 'value::all'
        }
      ]
    }
  }
]

var workbookContent = {
  version: 'Notebook/1.0'
  items: concat(headerItems, map(queryItems, item => {
    type: 3
    name: item.name
    content: {
      version: 'KqlItem/1.0'
      title: item.title
      query: item.query
      size: 0
      queryType: 0
      resourceType: componentsType
      timeContextFromParameter: 'TimeRange'
      visualization: item.visualization
    }
  }))
  fallbackResourceIds: [
    applicationInsightsId
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name must be a GUID.
  name: guid(resourceGroup().id, applicationInsightsId, 'dataverse-export-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: applicationInsightsId
    version: 'Notebook/1.0'
    serializedData: string(workbookContent)
  }
}

output id string = workbook.id
