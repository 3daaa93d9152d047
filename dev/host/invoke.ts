/**
 * Runs one invocation the way the Node.js worker does: RPC-shaped request → the library's invocation model
 * (which builds the real `HttpRequest` / `InvocationContext`) → pre-invocation hooks → handler →
 * post-invocation hooks → RPC-shaped response.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../lib/log.js';
import {
  type CoreInvocationContext,
  coreState,
  type RpcInvocationRequest,
  type RpcInvocationResponse,
  type RpcLogLevel,
  type RpcTypedData,
} from './core-api.js';
import type { FunctionRegistration } from './registry.js';

export interface InvocationInput {
  invocationId?: string;
  /** Trigger and input binding values by binding name. */
  inputData: { name: string; data?: RpcTypedData | null }[];
  triggerMetadata?: Record<string, RpcTypedData>;
  retryContext?: RpcInvocationRequest['retryContext'];
}

export interface InvocationOutcome {
  invocationId: string;
  response: RpcInvocationResponse;
  /** The `InvocationContext` the library built (the handler's second argument). */
  context: unknown;
}

/** Raised when a handler (or a hook) threw; `cause` is what was thrown. */
export class InvocationFailedError extends Error {
  constructor(
    readonly functionName: string,
    readonly invocationId: string,
    cause: unknown,
  ) {
    super(`Exception while executing function: Functions.${functionName}: ${messageOf(cause)}`, { cause });
    this.name = 'InvocationFailedError';
  }
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function invokeFunction(
  fn: FunctionRegistration,
  input: InvocationInput,
  logger: Logger,
): Promise<InvocationOutcome> {
  const model = coreState.programmingModel;
  if (!model) throw new Error('No programming model was registered: did the app import @azure/functions?');
  const invocationId = input.invocationId ?? randomUUID();
  const log = logger.child({ function: fn.name, invocationId });
  const coreCtx: CoreInvocationContext = {
    invocationId,
    request: {
      invocationId,
      functionId: fn.name,
      inputData: input.inputData,
      triggerMetadata: input.triggerMetadata ?? {},
      retryContext: input.retryContext ?? null,
      traceContext: null,
    },
    metadata: fn.metadata,
    state: undefined,
    log: (level, category, message) => writeLog(log, level, message, category),
  };
  const invocation = model.getInvocationModel(coreCtx);
  const { context, inputs: initialInputs } = await invocation.getArguments();
  const hookData: Record<string, unknown> = {};

  const pre = {
    hookData,
    appHookData: coreState.appHookData,
    invocationContext: context,
    functionCallback: fn.callback,
    inputs: initialInputs,
  };
  coreCtx.state = 'preInvocationHooks';
  try {
    await runHooks('preInvocation', pre);
  } finally {
    coreCtx.state = undefined;
  }

  const post = {
    hookData,
    appHookData: coreState.appHookData,
    invocationContext: context,
    inputs: pre.inputs,
    result: null as unknown,
    error: null as unknown,
  };
  coreCtx.state = 'invocation';
  try {
    post.result = await invocation.invokeFunction(context, pre.inputs, pre.functionCallback);
  } catch (err) {
    post.error = err;
  } finally {
    coreCtx.state = undefined;
  }
  coreCtx.state = 'postInvocationHooks';
  try {
    await runHooks('postInvocation', post);
  } finally {
    coreCtx.state = undefined;
  }
  if (post.error !== null && post.error !== undefined) {
    throw new InvocationFailedError(fn.name, invocationId, post.error);
  }
  const response = await invocation.getResponse(context, post.result);
  return { invocationId, response, context };
}

export async function runHooks(name: string, context: Record<string, unknown>): Promise<void> {
  for (const hook of coreState.hooks.get(name) ?? []) await hook(context);
}

export function writeLog(logger: Logger, level: RpcLogLevel, text: string, category: string): void {
  let message = text;
  let fields: Record<string, unknown> | undefined = category === 'user' ? undefined : { category };
  // The app's own logger writes JSON lines through context.log; keep them one line, not JSON in a string.
  const line = jsonLogLine(text);
  if (line) {
    const { time: _time, level: _level, message: inner, ...rest } = line;
    message = String(inner);
    fields = { ...fields, ...rest };
  }
  switch (level) {
    case 'trace':
    case 'debug':
      logger.debug(message, fields);
      break;
    case 'warning':
      logger.warn(message, fields);
      break;
    case 'error':
    case 'critical':
      logger.error(message, fields);
      break;
    case 'none':
      break;
    default:
      logger.info(message, fields);
  }
}

function jsonLogLine(text: string): Record<string, unknown> | undefined {
  if (!text.startsWith('{"') || !text.endsWith('}')) return undefined;
  try {
    const value = JSON.parse(text) as unknown;
    return value && typeof value === 'object' && 'message' in value ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The JS value the host would see in a typed-data return value (JSON parsed, strings kept). */
export function fromTypedData(data: RpcTypedData | null | undefined): unknown {
  if (!data) return undefined;
  if (data.json !== undefined && data.json !== null) return JSON.parse(data.json);
  if (data.string !== undefined && data.string !== null) return data.string;
  if (data.int !== undefined && data.int !== null) return data.int;
  if (data.double !== undefined && data.double !== null) return data.double;
  if (data.bytes) return Buffer.from(data.bytes);
  if (data.stream) return Buffer.from(data.stream);
  return undefined;
}

/** Typed data for a JSON-able value, as the host sends binding data (`json` for structures). */
export function jsonData(value: unknown): RpcTypedData {
  if (typeof value === 'string') return { string: value };
  return { json: JSON.stringify(value ?? null) };
}
