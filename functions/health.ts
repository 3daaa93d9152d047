import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { httpOptions, routesRegisteredBy } from '../lib/api/routes.js';
import { healthReport } from '../lib/health.js';

/** Anonymous liveness probe: answers without touching any dependency, so it works while they start. */
export async function health(_request: HttpRequest, _context: InvocationContext): Promise<HttpResponseInit> {
  return { status: 200, jsonBody: healthReport() };
}

for (const route of routesRegisteredBy('health')) app.http(route.name, { ...httpOptions(route), handler: health });
