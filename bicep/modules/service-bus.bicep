// Service Bus namespace (Entra ID only) and the "changes" queue between ingest and apply.

param name string
param location string
param tags object = {}

@description('Queue the webhook, initial sync and reconcile write to and the apply trigger reads (lib/queue/envelope.ts CHANGES_QUEUE).')
param queueName string = 'changes'

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  // Standard: duplicate detection, scheduled messages and dead-lettering are all available; Premium only adds
  // isolation and private endpoints.
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    minimumTlsVersion: '1.2'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: namespace
  name: queueName
  properties: {
    // The app settles each batch itself: a transient failure is completed and re-sent as a *scheduled* message
    // (attempt + 1, retryCount default 12 × retryIntervalSeconds default 5, TargetOutageBackoffSeconds while a
    // target is down). So the broker's delivery count only grows when a lock is lost: a crashed or recycled
    // instance, a batch that outlives its lock. 10 such losses mean a poison message: dead-letter it.
    maxDeliveryCount: 10
    // The apply trigger receives batches, and the host renews no lock on a batch (maxAutoLockRenewalDuration
    // applies to single messages only): the lock alone must outlast the slowest batch. Five minutes is the most
    // Service Bus allows; a 500-message batch (host.json) against a small Azure SQL tier takes seconds to tens of seconds.
    lockDuration: 'PT5M'
    // Message ids are deterministic per change (envelope.ts messageIdOf), so a Dataverse retry of the same
    // webhook within 10 minutes is dropped here. Our own retries carry the attempt number and get new ids.
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    // A change nobody could apply for two weeks is kept in the dead-letter queue, not silently dropped.
    defaultMessageTimeToLive: 'P14D'
    deadLetteringOnMessageExpiration: true
    maxSizeInMegabytes: 5120
    requiresSession: false
    enablePartitioning: false
    enableBatchedOperations: true
  }
}

output id string = namespace.id
output name string = namespace.name
output queueName string = queue.name
// serviceBusEndpoint is 'https://<name>.servicebus.windows.net:443/'; the Functions and SDK settings want the host.
output fullyQualifiedNamespace string = split(replace(namespace.properties.serviceBusEndpoint, 'https://', ''), ':')[0]
