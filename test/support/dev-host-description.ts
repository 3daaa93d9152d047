/**
 * The check both host tests make: what the development host describes for each registration (the fixture
 * app's and the product's) is what the registration's binding metadata says, `%setting%`s resolved.
 */
import assert from 'node:assert/strict';
import type { DevHost, FunctionRegistry } from '../../dev/host/index.js';

const COPIED = ['route', 'authLevel', 'connection', 'cardinality', 'runOnStartup'] as const;
const RESOLVED = ['queueName', 'schedule'] as const;

export function assertDescribesBindings(host: DevHost, registry: FunctionRegistry, settings: Record<string, string>) {
  const described = host.describe();
  assert.deepEqual(
    described.map((d) => d.name),
    registry.functions.map((f) => f.metadata.name),
  );
  const resolve = (v: unknown) => String(v).replace(/%(\w+)%/g, (_m, name: string) => settings[name]);
  for (const d of described) {
    const fn = registry.functions.find((f) => f.name === d.name)!;
    const trigger = Object.values(fn.metadata.bindings).find((b) => String(b.type).endsWith('Trigger'))!;
    assert.equal(d.triggerType, trigger.type, d.name);
    for (const key of COPIED) {
      if (trigger[key] !== undefined) assert.equal(d[key], trigger[key], `${d.name}.${key}`);
    }
    for (const key of RESOLVED) {
      if (trigger[key] !== undefined) assert.equal(d[key], resolve(trigger[key]), `${d.name}.${key}`);
    }
    if (trigger.methods) assert.deepEqual(d.methods, trigger.methods, `${d.name}.methods`);
  }
}
