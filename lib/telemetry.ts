/**
 * Application Insights through OpenTelemetry, only when APPLICATIONINSIGHTS_CONNECTION_STRING is set.
 * Without it the OpenTelemetry API hands out no-op instruments, so the code below costs nothing locally.
 */
import { ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import { type Counter, type Histogram, metrics } from '@opentelemetry/api';
import { AppError } from './errors.js';
import type { MetricsDelta, MetricsRecorder } from './pipeline/ports.js';

let started: Promise<boolean> | undefined;

/**
 * The exporter's credential from APPLICATIONINSIGHTS_AUTHENTICATION_STRING (`ClientId=<id>;Authorization=AAD`, the
 * form the Functions host reads too): with local auth off, Application Insights drops unsigned telemetry.
 */
export function telemetryCredential(authenticationString: string | undefined): TokenCredential | undefined {
  if (!authenticationString) return undefined;
  const parts = new Map(
    authenticationString
      .split(';')
      .filter(Boolean)
      .map((pair) => {
        const at = pair.indexOf('=');
        return [pair.slice(0, at).trim().toLowerCase(), pair.slice(at + 1).trim()] as const;
      }),
  );
  if (parts.get('authorization') !== 'AAD') {
    throw new AppError(
      'CONFIG_INVALID',
      `APPLICATIONINSIGHTS_AUTHENTICATION_STRING is "${authenticationString}"; use "ClientId=<client id>;Authorization=AAD" or leave it empty.`,
      { details: [{ field: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', message: 'Authorization must be AAD' }] },
    );
  }
  const clientId = parts.get('clientid');
  return clientId ? new ManagedIdentityCredential({ clientId }) : new ManagedIdentityCredential();
}

/** Starts the Azure Monitor distro once per process; resolves true when telemetry is exported. */
export function startTelemetry(connectionString: string | undefined, authenticationString?: string): Promise<boolean> {
  if (!connectionString) return Promise.resolve(false);
  const credential = telemetryCredential(authenticationString);
  started ??= import('@azure/monitor-opentelemetry').then(({ useAzureMonitor }) => {
    useAzureMonitor({ azureMonitorExporterOptions: { connectionString, credential } });
    return true;
  });
  return started;
}

interface Instruments {
  received: Counter;
  applied: Counter;
  stale: Counter;
  failed: Counter;
  lag: Histogram;
}

let instruments: Instruments | undefined;

function instrumentsNow(): Instruments {
  if (!instruments) {
    const meter = metrics.getMeter('dataverse-export');
    instruments = {
      received: meter.createCounter('dataverse_export.received', { description: 'Changes routed to a profile' }),
      applied: meter.createCounter('dataverse_export.applied', { description: 'Changes written to the target' }),
      stale: meter.createCounter('dataverse_export.stale', { description: 'Duplicates and older changes skipped' }),
      failed: meter.createCounter('dataverse_export.failed', { description: 'Changes written to the failure log' }),
      lag: meter.createHistogram('dataverse_export.lag_ms', {
        description: 'Apply time minus Dataverse operation time',
        unit: 'ms',
      }),
    };
  }
  return instruments;
}

/** Records every metrics delta as custom metrics too (dimensions: profile, entity), then in the store. */
export function withTelemetry(recorder: MetricsRecorder): MetricsRecorder {
  return {
    async recordMetrics(profileId: string, entity: string, delta: MetricsDelta) {
      const m = instrumentsNow();
      const attributes = { profileId, entity };
      if (delta.received) m.received.add(delta.received, attributes);
      if (delta.applied) m.applied.add(delta.applied, attributes);
      if (delta.stale) m.stale.add(delta.stale, attributes);
      if (delta.failed) m.failed.add(delta.failed, attributes);
      if (delta.lagMs !== undefined) m.lag.record(delta.lagMs, attributes);
      await recorder.recordMetrics(profileId, entity, delta);
    },
  };
}
