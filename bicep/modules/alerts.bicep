// Two alerts an operator of DES would want: changes stuck in the dead-letter queue, and changes that finally
// failed (written to a profile's failure log). Notifications go to an optional e-mail action group.

param location string
param tags object = {}
param namePrefix string

param serviceBusNamespaceId string
param queueName string
param applicationInsightsId string

@description('E-mail address for alert notifications. Empty: alerts fire in the portal only.')
param alertEmailAddress string = ''

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmailAddress)) {
  name: '${namePrefix}-operators'
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'dvexport'
    enabled: true
    emailReceivers: [
      {
        name: 'operators'
        emailAddress: alertEmailAddress
        useCommonAlertSchema: true
      }
    ]
  }
}

var actionGroupIds = empty(alertEmailAddress) ? [] : [actionGroup.id]

// A dead-lettered change is a crash loop (maxDeliveryCount lock losses) or an expired message: each one is a
// row the target may be missing until someone resubmits it or runs a resync.
resource deadLetterAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-dead-lettered-changes'
  location: 'global'
  tags: tags
  properties: {
    description: 'Messages are waiting in the dead-letter queue of "${queueName}".'
    severity: 2
    enabled: true
    scopes: [
      serviceBusNamespaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'DeadLetteredMessages'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          metricName: 'DeadletteredMessages'
          dimensions: [
            {
              name: 'EntityName'
              operator: 'Include'
              values: [
                queueName
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Maximum'
        }
      ]
    }
    actions: [
      for id in actionGroupIds: {
        actionGroupId: id
      }
    ]
  }
}

// Final apply failures per profile, from the app's custom metric (one alert per profile that failed).
resource failedAppliesAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-failed-applies'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Dataverse Export: changes failed'
    description: 'Changes could not be applied to a target after the profile\'s retries; see GET /api/profiles/{id}/failures.'
    severity: 2
    enabled: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: '''
customMetrics
| where name == 'dataverse_export.failed'
| extend profileId = tostring(customDimensions.profileId)
| summarize failed = sum(valueSum) by profileId
'''
          timeAggregation: 'Total'
          metricMeasureColumn: 'failed'
          dimensions: [
            {
              name: 'profileId'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actionGroupIds
    }
  }
}
