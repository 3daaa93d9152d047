/**
 * The host's admin API for running a non-HTTP function on demand: `POST /admin/functions/{name}` with
 * `{"input": "…"}`, authorised by the master key in `x-functions-key`; it answers 202 and runs the function
 * in the background, as the Functions host does.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from './http-trigger.js';
import type { FunctionRegistration } from './registry.js';

export const ADMIN_FUNCTIONS_PATH = '/admin/functions/';

/** Durable triggers are started through the durable client, not on their own. */
const NOT_RUNNABLE = new Set(['httpTrigger', 'orchestrationTrigger', 'activityTrigger', 'entityTrigger']);

export interface AdminApiDeps {
  masterKey: string;
  functions: FunctionRegistration[];
  /** Starts the function with the request's `input`; the returned promise settles when it finished. */
  run(fn: FunctionRegistration, input: string | undefined): Promise<void>;
}

/** Answers a request under `/admin/functions/`; returns false for any other path. */
export function handleAdminFunctions(
  deps: AdminApiDeps,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  body: Buffer,
): boolean {
  if (!url.pathname.toLowerCase().startsWith(ADMIN_FUNCTIONS_PATH)) return false;
  const method = (req.method ?? 'GET').toUpperCase();
  if (method !== 'POST') {
    res.setHeader('Allow', 'POST');
    sendJson(res, 405, { code: 'METHOD_NOT_ALLOWED', message: `${url.pathname} accepts POST only.` });
    return true;
  }
  if (!isMasterKey(req, deps.masterKey)) {
    sendJson(res, 401, {
      code: 'UNAUTHORIZED',
      message: `POST ${url.pathname} needs the host's master key in the x-functions-key header.`,
    });
    return true;
  }
  const name = decodeURIComponent(url.pathname.slice(ADMIN_FUNCTIONS_PATH.length).replace(/\/+$/, ''));
  const fn = deps.functions.find((f) => f.name.toLowerCase() === name.toLowerCase());
  if (!fn) {
    sendJson(res, 404, { code: 'NOT_FOUND', message: `No function named "${name}".` });
    return true;
  }
  if (NOT_RUNNABLE.has(fn.trigger.type)) {
    sendJson(res, 400, {
      code: 'BAD_REQUEST',
      message:
        fn.trigger.type === 'httpTrigger'
          ? `"${fn.name}" is HTTP-triggered: call its route instead of the admin API.`
          : `"${fn.name}" has a ${fn.trigger.type}: start it through the durable client instead of the admin API.`,
    });
    return true;
  }
  const parsed = parseInvocation(body);
  if (typeof parsed === 'string') {
    sendJson(res, 400, { code: 'BAD_REQUEST', message: parsed });
    return true;
  }
  // Failures are the invocation's: the host logs them; the caller already has its 202.
  deps.run(fn, parsed.input).catch(() => {});
  res.statusCode = 202;
  res.end();
  return true;
}

/** `{"input": …}` (string, number or boolean, as the docs allow), or a message saying what is wrong. */
function parseInvocation(body: Buffer): { input: string | undefined } | string {
  const hint = 'Send a JSON body {"input": "<trigger input>"} (the input may be an empty string).';
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return `The body is not JSON. ${hint}`;
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return `The body must be a JSON object. ${hint}`;
  const input = (value as { input?: unknown }).input;
  if (input === undefined || input === null) return { input: undefined };
  if (!['string', 'number', 'boolean'].includes(typeof input)) {
    return `"input" must be a string, number or boolean, got ${Array.isArray(input) ? 'an array' : typeof input}. ${hint}`;
  }
  return { input: String(input) };
}

function isMasterKey(req: IncomingMessage, masterKey: string): boolean {
  const header = req.headers['x-functions-key'];
  const given = Buffer.from((Array.isArray(header) ? header[0] : header) ?? '');
  const expected = Buffer.from(masterKey);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
