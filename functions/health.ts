import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { healthReport } from '../lib/health.js';

/** Anonymous liveness probe: answers without touching any dependency, so it works while they start. */
export async function health(_request: HttpRequest, _context: InvocationContext): Promise<HttpResponseInit> {
  return { status: 200, jsonBody: healthReport() };
}

app.http('health', { route: 'health', methods: ['GET'], authLevel: 'anonymous', handler: health });
