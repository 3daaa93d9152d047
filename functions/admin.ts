/**
 * The console and the routes it needs beside the profile API: `GET /api/admin/…` serves the built console
 * (static files from dist/console), `GET /api/audit`, `GET /api/me`, `GET /api/organizations/catalog`.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { createAdminApi } from '../lib/api/admin-api.js';
import { refuseAnonymous } from '../lib/api/guarded.js';
import type { ApiRequest } from '../lib/api/request.js';
import { accessOptionsOf } from '../lib/auth/management-key.js';
import { serveStatic } from '../lib/http/static-files.js';
import { loggerFor } from '../lib/log.js';
import { getRuntime } from '../lib/runtime.js';

const CONSOLE_ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'console');

async function adminApiFor(context: InvocationContext) {
  const runtime = await getRuntime();
  return createAdminApi({
    access: accessOptionsOf(runtime),
    audit: runtime.store,
    catalogFor: (url) => runtime.dataverseFor({ id: 'catalog', source: { url } }).catalog(),
    reach: runtime.config.profileReach,
    logger: loggerFor(context, { function: context.functionName }),
  });
}

async function toApiRequest(request: HttpRequest): Promise<ApiRequest> {
  return { params: request.params, query: request.query, headers: request.headers, body: await request.text() };
}

const handler =
  (name: 'audit' | 'me' | 'catalog') =>
  async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> =>
    refuseAnonymous({ headers: request.headers, query: request.query }) ??
    (await adminApiFor(context))[name](await toApiRequest(request));

// Anonymous at the host: the app admits signed-in principals by app role, or the management key.
app.http('audit', { route: 'audit', methods: ['GET'], authLevel: 'anonymous', handler: handler('audit') });
app.http('me', { route: 'me', methods: ['GET'], authLevel: 'anonymous', handler: handler('me') });
app.http('organizationCatalog', {
  route: 'organizations/catalog',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: handler('catalog'),
});

// The console's files hold no data; App Service Authentication guards them in Azure, the API guards the rest.
app.http('console', {
  route: 'admin/{*path}',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: async (request: HttpRequest): Promise<HttpResponseInit> => {
    const url = new URL(request.url);
    if (!request.params.path && !url.pathname.endsWith('/')) {
      return { status: 308, headers: { location: `${url.pathname}/${url.search}` } };
    }
    return serveStatic(CONSOLE_ROOT, request.params.path);
  },
});
