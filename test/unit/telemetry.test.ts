import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManagedIdentityCredential } from '@azure/identity';
import { metrics } from '@opentelemetry/api';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import type { MetricsDelta } from '../../lib/pipeline/ports.js';
import { startTelemetry, telemetryCredential, withTelemetry } from '../../lib/telemetry.js';

describe('telemetry', () => {
  it('signs the exporter in as the identity APPLICATIONINSIGHTS_AUTHENTICATION_STRING names, and only then', () => {
    assert.equal(telemetryCredential(undefined), undefined);
    assert.equal(telemetryCredential(''), undefined);
    assert.ok(
      telemetryCredential('ClientId=11111111-2222-3333-4444-555555555555;Authorization=AAD') instanceof
        ManagedIdentityCredential,
    );
    assert.ok(telemetryCredential('Authorization=AAD') instanceof ManagedIdentityCredential);
    assert.throws(
      () => telemetryCredential('ClientId=abc;Authorization=Key'),
      (err: Error & { code?: string }) =>
        err.code === 'CONFIG_INVALID' && /APPLICATIONINSIGHTS_AUTHENTICATION_STRING/.test(err.message),
    );
  });

  it('stays off without an Application Insights connection string', async () => {
    assert.equal(await startTelemetry(undefined), false);
    assert.equal(await startTelemetry(''), false);
  });

  it('records applied, failed and lag as custom metrics per profile and entity, and still updates the store', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
    const provider = new MeterProvider({ readers: [reader] });
    metrics.setGlobalMeterProvider(provider);

    const stored: Array<[string, string, MetricsDelta]> = [];
    const recorder = withTelemetry({
      recordMetrics: async (profileId, entity, delta) => {
        stored.push([profileId, entity, delta]);
      },
    });
    await recorder.recordMetrics('p1', 'account', { applied: 3, stale: 1, lagMs: 120 });
    await recorder.recordMetrics('p1', 'account', { failed: 2, lagMs: 80 });
    await reader.forceFlush();

    const points = exporter
      .getMetrics()
      .flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics))
      .map((m) => ({ name: m.descriptor.name, points: m.dataPoints }));
    const total = (name: string) => {
      const metric = points.filter((p) => p.name === name).at(-1);
      return metric?.points.reduce(
        (sum, p) => sum + (typeof p.value === 'number' ? p.value : (p.value as { sum: number }).sum),
        0,
      );
    };
    assert.equal(total('dataverse_export.applied'), 3);
    assert.equal(total('dataverse_export.failed'), 2);
    assert.equal(total('dataverse_export.lag_ms'), 200);
    const applied = points.find((p) => p.name === 'dataverse_export.applied');
    assert.deepEqual(applied?.points[0].attributes, { profileId: 'p1', entity: 'account' });
    assert.equal(stored.length, 2);
    await provider.shutdown();
  });
});
