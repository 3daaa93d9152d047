import { AppError } from '../errors.js';
import type { MetricsDelta } from '../pipeline/ports.js';

/** The counter increments of one `recordMetrics` call, reduced to plain values both dialects bind. */
export interface MetricsIncrement {
  received: number;
  applied: number;
  stale: number;
  failed: number;
  lastAppliedAt: Date | null;
  lagMs: number | null;
}

/**
 * A metrics delta as the increments both dialects write: absent counters add zero, a negative or fractional
 * count is refused (a counter only grows). Undefined when the delta changes nothing, so no statement runs.
 */
export function metricsIncrement(delta: MetricsDelta): MetricsIncrement | undefined {
  const counter = (name: 'received' | 'applied' | 'stale' | 'failed'): number => {
    const value = delta[name] ?? 0;
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new AppError('INTERNAL', `metrics ${name} must be a non-negative integer, got ${value}`);
    }
    return value;
  };
  const increment: MetricsIncrement = {
    received: counter('received'),
    applied: counter('applied'),
    stale: counter('stale'),
    failed: counter('failed'),
    lastAppliedAt: delta.lastAppliedAt ?? null,
    lagMs: delta.lagMs === undefined ? null : Math.max(0, Math.round(delta.lagMs)),
  };
  const empty =
    increment.received + increment.applied + increment.stale + increment.failed === 0 &&
    increment.lastAppliedAt === null &&
    increment.lagMs === null;
  return empty ? undefined : increment;
}
