/**
 * Serves HTTP triggers at `/<routePrefix>/<route>` with the host's function-key rules: `anonymous` routes
 * are open, every other level needs the key in `x-functions-key` or `?code=`.
 */

import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RpcHttpData, RpcInvocationResponse, RpcTypedData } from './core-api.js';
import { byPrecedence, type CompiledRoute, compileRoute } from './http-routes.js';
import type { FunctionRegistration } from './registry.js';

export interface HttpTriggerDeps {
  routePrefix: string;
  functionKey: string;
  /** The host's master key, which (as in Azure) also opens every function-level route. */
  masterKey?: string;
  functions: FunctionRegistration[];
  /** Forwarded as `x-ms-client-principal` when a request has neither that header nor a key. */
  signedInPrincipal?: string;
  /** Runs the function with the given trigger data; resolves with the RPC response. */
  invoke(fn: FunctionRegistration, request: RpcHttpData): Promise<RpcInvocationResponse>;
  /** Requests the host itself answers (e.g. the durable management API); return false to fall through. */
  hostRoutes?(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer): Promise<boolean>;
}

export function createHttpTriggerHandler(deps: HttpTriggerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const routes = deps.functions
    .filter((fn) => fn.trigger.type === 'httpTrigger')
    .map(compileRoute)
    .sort(byPrecedence);
  const prefix = deps.routePrefix.replace(/^\/+|\/+$/g, '');

  return (req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) sendJson(res, 500, { code: 'INTERNAL', message: String(err?.message ?? err) });
      else res.destroy();
    });
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const host = req.headers.host ?? 'localhost';
    const url = new URL(req.url ?? '/', `http://${host}`);
    const body = await readBody(req);
    if (deps.hostRoutes && (await deps.hostRoutes(req, res, url, body))) return;

    const path = url.pathname.replace(/^\/+|\/+$/g, '');
    const routePath =
      prefix === ''
        ? path
        : path.toLowerCase().startsWith(`${prefix.toLowerCase()}/`) || path.toLowerCase() === prefix.toLowerCase()
          ? path.slice(prefix.length + 1)
          : undefined;
    const method = (req.method ?? 'GET').toUpperCase();
    const matches: { route: CompiledRoute; params: Record<string, string> }[] = [];
    if (routePath !== undefined) {
      for (const route of routes) {
        const params = route.match(routePath);
        if (params) matches.push({ route, params });
      }
    }
    if (matches.length === 0) {
      sendJson(res, 404, { code: 'NOT_FOUND', message: `No function serves ${method} ${url.pathname}.` });
      return;
    }
    const hit = matches.find((m) => !m.route.methods || m.route.methods.includes(method));
    if (!hit) {
      const allowed = [...new Set(matches.flatMap((m) => m.route.methods ?? []))];
      res.setHeader('Allow', allowed.join(', '));
      sendJson(res, 405, {
        code: 'METHOD_NOT_ALLOWED',
        message: `${url.pathname} does not accept ${method}; use ${allowed.join(', ')}.`,
      });
      return;
    }
    if (hit.route.authLevel !== 'anonymous' && !hasValidKey(req, url, [deps.functionKey, deps.masterKey])) {
      sendJson(res, 401, {
        code: 'UNAUTHORIZED',
        message: `${method} ${url.pathname} needs a function key: send it in the x-functions-key header or as ?code=.`,
      });
      return;
    }

    const headers = flattenHeaders(req);
    if (
      deps.signedInPrincipal &&
      !headers['x-ms-client-principal'] &&
      !headers['x-functions-key'] &&
      !url.searchParams.has('code')
    ) {
      headers['x-ms-client-principal'] = deps.signedInPrincipal;
    }
    const rpcRequest: RpcHttpData = {
      method,
      url: url.href,
      headers,
      query: Object.fromEntries(
        [...new Set(url.searchParams.keys())].map((k) => [k, url.searchParams.getAll(k).join(',')]),
      ),
      params: hit.params,
      body: body.length > 0 ? { bytes: body } : null,
    };
    let response: RpcInvocationResponse;
    try {
      response = await deps.invoke(hit.route.fn, rpcRequest);
    } catch {
      // The host answers a failed invocation with a bare 500; the details went to the log.
      sendJson(res, 500, {
        code: 'INTERNAL',
        message: `Exception while executing function: Functions.${hit.route.fn.name}`,
      });
      return;
    }
    writeHttpResponse(res, httpOutputOf(hit.route.fn, response));
  }
}

function hasValidKey(req: IncomingMessage, url: URL, keys: (string | undefined)[]): boolean {
  const header = req.headers['x-functions-key'];
  const given = Buffer.from((Array.isArray(header) ? header[0] : header) ?? url.searchParams.get('code') ?? '');
  return keys.some((key) => {
    if (!key) return false;
    const expected = Buffer.from(key);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

function flattenHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The HTTP output binding's value: the return binding, or an `http` output binding set on the context. */
function httpOutputOf(fn: FunctionRegistration, response: RpcInvocationResponse): RpcHttpData | undefined {
  if (response.returnValue?.http) return response.returnValue.http;
  for (const out of response.outputData ?? []) {
    if (String(fn.bindings[out.name]?.type).toLowerCase() === 'http' && out.data?.http) return out.data.http;
  }
  return undefined;
}

function writeHttpResponse(res: ServerResponse, http: RpcHttpData | undefined): void {
  if (!http) {
    res.statusCode = 204;
    res.end();
    return;
  }
  res.statusCode = Number(http.statusCode ?? 200) || 200;
  for (const [name, value] of Object.entries(http.headers ?? {})) res.setHeader(name, value);
  const cookies = (http.cookies ?? []).map((c) => serializeCookie(c as RpcCookie));
  if (cookies.length) res.setHeader('Set-Cookie', cookies);
  res.end(bodyBytes(http.body));
}

function bodyBytes(body: RpcTypedData | null | undefined): Buffer {
  if (!body) return Buffer.alloc(0);
  if (body.bytes) return Buffer.from(body.bytes);
  if (typeof body.string === 'string') return Buffer.from(body.string);
  if (typeof body.json === 'string') return Buffer.from(body.json);
  return Buffer.alloc(0);
}

interface RpcCookie {
  name: string;
  value: string;
  domain?: { value: string };
  path?: { value: string };
  expires?: { value: { seconds: number } };
  secure?: { value: boolean };
  httpOnly?: { value: boolean };
  sameSite?: 'none' | 'lax' | 'strict' | 'explicitNone';
  maxAge?: { value: number };
}

function serializeCookie(c: RpcCookie): string {
  const parts = [`${c.name}=${c.value}`];
  if (c.domain) parts.push(`Domain=${c.domain.value}`);
  if (c.path) parts.push(`Path=${c.path.value}`);
  if (c.expires) parts.push(`Expires=${new Date(c.expires.value.seconds * 1000).toUTCString()}`);
  if (c.maxAge) parts.push(`Max-Age=${c.maxAge.value}`);
  if (c.secure?.value) parts.push('Secure');
  if (c.httpOnly?.value) parts.push('HttpOnly');
  if (c.sameSite === 'lax') parts.push('SameSite=Lax');
  else if (c.sameSite === 'strict') parts.push('SameSite=Strict');
  else if (c.sameSite === 'explicitNone') parts.push('SameSite=None');
  return parts.join('; ');
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}
