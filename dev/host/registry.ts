/**
 * Loads the compiled function modules with the `@azure/functions-core` stand-in installed and lists what
 * they registered, with `%Setting%` expressions resolved the way the host resolves binding properties.
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AppError } from '../../lib/errors.js';
import {
  coreState,
  type FunctionCallback,
  type FunctionMetadata,
  type RegisteredFunction,
  type RpcBindingInfo,
} from './core-api.js';

/** The trigger of one function, as the host reads it (setting expressions resolved). */
export interface TriggerInfo {
  /** Binding name (e.g. `request`, `timer`, `messages`). */
  name: string;
  type: string;
  route?: string;
  methods?: string[];
  authLevel?: string;
  queueName?: string;
  topicName?: string;
  subscriptionName?: string;
  connection?: string;
  cardinality?: 'one' | 'many';
  autoCompleteMessages?: boolean;
  isSessionsEnabled?: boolean;
  schedule?: string;
  runOnStartup?: boolean;
  useMonitor?: boolean;
  [option: string]: unknown;
}

export interface FunctionRegistration {
  name: string;
  trigger: TriggerInfo;
  /** All bindings exactly as registered (unresolved), keyed by binding name; `$return` for the return binding. */
  bindings: Record<string, RpcBindingInfo>;
  retryOptions?: Record<string, unknown>;
  callback: FunctionCallback;
  /** The metadata object the worker would hold for this function. */
  metadata: FunctionMetadata;
}

export interface FunctionRegistry {
  functions: FunctionRegistration[];
  /** Settings given to the loader; a host layers them over `process.env` and under its own. */
  env?: Settings;
  get(name: string): FunctionRegistration | undefined;
}

export type Settings = Record<string, string | undefined>;

/** Registrations captured per loaded module, so a second load in the same process sees them again. */
const capturedByFile = new Map<string, RegisteredFunction[]>();

/**
 * Imports each compiled module (in order) and returns what it registered. Modules are imported once per
 * process (ESM caches them); loading the same file again returns the registrations captured the first time.
 */
export async function loadFunctionApp(files: string[], options: { env?: Settings } = {}): Promise<FunctionRegistry> {
  const env: Settings = { ...process.env, ...options.env };
  const collected: RegisteredFunction[] = [];
  for (const file of files) {
    const url = pathToFileURL(isAbsolute(file) ? file : resolve(file)).href;
    let captured = capturedByFile.get(url);
    if (!captured) {
      const list: RegisteredFunction[] = [];
      capturedByFile.set(url, list);
      coreState.listener = (fn) => list.push(fn);
      try {
        await import(url);
      } finally {
        coreState.listener = undefined;
      }
      captured = list;
    }
    collected.push(...captured);
  }
  return { ...createRegistry(collected, env), env: options.env };
}

/**
 * Builds a registry from captured registrations (exposed for hosts that import modules themselves).
 * A `%Setting%` that `env` lacks stays as written here; the host that runs the function resolves it again
 * with its own settings and fails then, naming the setting.
 */
export function createRegistry(registered: RegisteredFunction[], env: Settings = process.env): FunctionRegistry {
  const functions = registered.map((fn) => toRegistration(fn, env));
  const seen = new Set<string>();
  for (const fn of functions) {
    const key = fn.name.toLowerCase();
    if (seen.has(key)) throw new AppError('CONFIG_INVALID', `Function "${fn.name}" is registered twice.`);
    seen.add(key);
  }
  return {
    functions,
    get: (name) => functions.find((f) => f.name.toLowerCase() === name.toLowerCase()),
  };
}

function toRegistration(fn: RegisteredFunction, env: Settings): FunctionRegistration {
  return {
    name: fn.metadata.name,
    trigger: resolveTrigger(fn.metadata, env, { strict: false }),
    bindings: fn.metadata.bindings,
    retryOptions: fn.metadata.retryOptions,
    callback: fn.callback,
    metadata: fn.metadata,
  };
}

export function triggerBindingOf(metadata: FunctionMetadata): [string, RpcBindingInfo] {
  const entry = Object.entries(metadata.bindings).find(([, b]) => b.direction === 'in' && isTriggerType(b.type));
  if (!entry) throw new AppError('CONFIG_INVALID', `Function "${metadata.name}" has no trigger binding.`);
  return entry;
}

export function isTriggerType(type: string | undefined): boolean {
  return typeof type === 'string' && type.toLowerCase().endsWith('trigger');
}

const notResolved = new Set(['name', 'type', 'direction', 'properties']);

/** The trigger binding with `%Setting%` expressions in its string options replaced from `env`. */
export function resolveTrigger(metadata: FunctionMetadata, env: Settings, options = { strict: true }): TriggerInfo {
  const [name, binding] = triggerBindingOf(metadata);
  const trigger: TriggerInfo = { name, type: String(binding.type) };
  for (const [key, value] of Object.entries(binding)) {
    if (notResolved.has(key) || value === undefined) continue;
    trigger[key] =
      typeof value === 'string' ? resolveSettingExpression(value, env, `${metadata.name}.${key}`, options) : value;
  }
  if (trigger.type === 'httpTrigger') {
    trigger.route ??= metadata.name;
    trigger.authLevel ??= 'function';
    if (Array.isArray(trigger.methods)) trigger.methods = trigger.methods.map((m) => String(m).toUpperCase());
  }
  return trigger;
}

/** Replaces each `%Name%` with the setting's value; a missing setting fails as it does in the host. */
export function resolveSettingExpression(
  value: string,
  env: Settings,
  where: string,
  options = { strict: true },
): string {
  return value.replace(/%([^%]+)%/g, (match, setting: string) => {
    const resolved = env[setting];
    if (resolved === undefined) {
      if (!options.strict) return match;
      throw new AppError(
        'CONFIG_INVALID',
        `${where}: '%${setting}%' does not resolve to a value. Set the app setting "${setting}" (local.settings.json Values or the environment).`,
        { details: [{ field: setting, message: 'setting is not defined' }] },
      );
    }
    return resolved;
  });
}
