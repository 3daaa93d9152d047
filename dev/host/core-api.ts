/**
 * A stand-in for `@azure/functions-core`, the module the Node.js worker injects into the app's process.
 * `@azure/functions` requires it lazily on the first `app.*` call; answering that name ourselves hands us
 * every registration (full binding metadata plus the callback) exactly as the worker would receive it.
 * The shapes below are the subset of the worker's contract that `@azure/functions` 4.16 uses.
 */
import { createRequire } from 'node:module';

export type RpcLogLevel = 'trace' | 'debug' | 'information' | 'warning' | 'error' | 'critical' | 'none';
export type RpcLogCategory = 'user' | 'system' | 'customMetric';

/** Typed data as it travels over the worker's gRPC channel (one field set). */
export interface RpcTypedData {
  string?: string | null;
  json?: string | null;
  bytes?: Uint8Array | null;
  stream?: Uint8Array | null;
  http?: RpcHttpData | null;
  int?: number | null;
  double?: number | null;
  collectionBytes?: { bytes?: Uint8Array[] | null } | null;
  collectionString?: { string?: string[] | null } | null;
  collectionDouble?: { double?: number[] | null } | null;
  collectionSint64?: { sint64?: number[] | null } | null;
}

export interface RpcHttpData {
  method?: string | null;
  url?: string | null;
  headers?: Record<string, string> | null;
  body?: RpcTypedData | null;
  params?: Record<string, string> | null;
  statusCode?: string | null;
  query?: Record<string, string> | null;
  cookies?: unknown[] | null;
  enableContentNegotiation?: boolean | null;
}

/** One binding of a function as `toCoreFunctionMetadata` produces it (`type`, `direction`, plus options). */
export interface RpcBindingInfo {
  type?: string;
  direction?: 'in' | 'out' | 'inout';
  dataType?: string;
  [option: string]: unknown;
}

export interface FunctionMetadata {
  name: string;
  bindings: Record<string, RpcBindingInfo>;
  retryOptions?: Record<string, unknown>;
}

export type FunctionCallback = (...args: unknown[]) => unknown;

export interface RpcInvocationRequest {
  invocationId: string;
  functionId?: string;
  inputData?: { name: string; data?: RpcTypedData | null }[];
  triggerMetadata?: Record<string, RpcTypedData>;
  retryContext?: { retryCount: number; maxRetryCount: number; exception?: { message?: string } } | null;
  traceContext?: { traceParent?: string; traceState?: string; attributes?: Record<string, string> } | null;
}

export interface RpcInvocationResponse {
  invocationId?: string;
  outputData?: { name: string; data?: RpcTypedData | null }[];
  returnValue?: RpcTypedData | null;
}

export type InvocationState = 'preInvocationHooks' | 'postInvocationHooks' | 'invocation' | undefined;

export interface CoreInvocationContext {
  invocationId: string;
  request: RpcInvocationRequest;
  metadata: FunctionMetadata;
  state?: InvocationState;
  log(level: RpcLogLevel, category: RpcLogCategory, message: string): void;
}

/** What `@azure/functions`' `InvocationModel` implements. */
export interface InvocationModel {
  getArguments(): Promise<{ context: unknown; inputs: unknown[] }>;
  invokeFunction(context: unknown, inputs: unknown[], callback: FunctionCallback): Promise<unknown>;
  getResponse(context: unknown, result: unknown): Promise<RpcInvocationResponse>;
}

export interface ProgrammingModel {
  name: string;
  version: string;
  getInvocationModel(coreCtx: CoreInvocationContext): InvocationModel;
  getCapabilities?(capabilities: Record<string, string>): Promise<Record<string, string>>;
}

export type HookName = 'appStart' | 'appTerminate' | 'preInvocation' | 'postInvocation' | 'log';
export type HookCallback = (context: Record<string, unknown>) => unknown;

export interface RegisteredFunction {
  metadata: FunctionMetadata;
  callback: FunctionCallback;
}

type Listener = (fn: RegisteredFunction) => void;

/** Everything the library handed to the worker in this process. */
class CoreApiState {
  programmingModel: ProgrammingModel | undefined;
  readonly functions: RegisteredFunction[] = [];
  readonly hooks = new Map<string, HookCallback[]>();
  readonly appHookData: Record<string, unknown> = {};
  listener: Listener | undefined;
  /** Log sink for `coreApi.log` (system logs the library writes outside an invocation). */
  systemLog: (level: RpcLogLevel, category: RpcLogCategory, message: string) => void = () => {};
}

export const coreState = new CoreApiState();

const coreApi = {
  version: '3.10.1',
  get hostVersion(): string {
    return '4.1000.0';
  },
  setProgrammingModel(model: ProgrammingModel): void {
    coreState.programmingModel = model;
  },
  getProgrammingModel(): ProgrammingModel | undefined {
    return coreState.programmingModel;
  },
  registerFunction(metadata: FunctionMetadata, callback: FunctionCallback): { dispose(): void } {
    if (coreState.functions.some((f) => f.metadata.name.toLowerCase() === metadata.name.toLowerCase())) {
      throw new Error(`A function with the name "${metadata.name}" has already been registered.`);
    }
    const fn: RegisteredFunction = { metadata, callback };
    coreState.functions.push(fn);
    coreState.listener?.(fn);
    return {
      dispose() {
        const at = coreState.functions.indexOf(fn);
        if (at >= 0) coreState.functions.splice(at, 1);
      },
    };
  },
  registerHook(hookName: string, callback: HookCallback): { dispose(): void } {
    const list = coreState.hooks.get(hookName) ?? [];
    list.push(callback);
    coreState.hooks.set(hookName, list);
    return {
      dispose() {
        const at = list.indexOf(callback);
        if (at >= 0) list.splice(at, 1);
      },
    };
  },
  log(level: RpcLogLevel, category: RpcLogCategory, message: string): void {
    coreState.systemLog(level, category, message);
  },
  Disposable: class {
    #callOnDispose: (() => unknown) | undefined;
    static from(...items: { dispose(): unknown }[]) {
      return new coreApi.Disposable(() => {
        for (const item of items) item.dispose();
      });
    }
    constructor(callOnDispose: () => unknown) {
      this.#callOnDispose = callOnDispose;
    }
    dispose(): unknown {
      const fn = this.#callOnDispose;
      this.#callOnDispose = undefined;
      return fn?.();
    }
  },
};

const MODULE_NAME = '@azure/functions-core';
let installed = false;

/**
 * Makes `require('@azure/functions-core')` answer with our stand-in. Must run before `@azure/functions`
 * first calls `app.*` (it caches a failed lookup as "test mode"), so this module installs it on import.
 */
export function installCoreApi(): void {
  if (installed) return;
  installed = true;
  const require = createRequire(import.meta.url);
  const Module = require('node:module') as { _load: (request: string, ...rest: unknown[]) => unknown };
  const originalLoad = Module._load;
  Module._load = function load(this: unknown, request: string, ...rest: unknown[]) {
    if (request === MODULE_NAME) return coreApi;
    return originalLoad.call(this, request, ...rest);
  };
}

installCoreApi();
