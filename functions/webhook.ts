import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { httpOptions, routesRegisteredBy } from '../lib/api/routes.js';
import { httpBoundary } from '../lib/http/boundary.js';
import { loggerFor } from '../lib/log.js';
import { ingestWebhook } from '../lib/pipeline/ingest.js';
import { getRuntime } from '../lib/runtime.js';

/**
 * Dataverse's webhook (or Service Endpoint) delivery. Validates, routes and enqueues; answers 202 fast.
 * Failures to enqueue answer 503, which Dataverse retries; bad input answers 400, which it does not.
 */
export async function dataverseWebhook(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const logger = loggerFor(context, { function: 'dataverseWebhook' });
  return httpBoundary(logger, async () => {
    const body = await request.text();
    const headers = Object.fromEntries(request.headers.entries());
    const runtime = await getRuntime();
    const result = await ingestWebhook(runtime.ingestDeps(logger), body, headers);
    return { status: result.status, jsonBody: result.body };
  });
}

for (const route of routesRegisteredBy('webhook')) {
  app.http(route.name, { ...httpOptions(route), handler: dataverseWebhook });
}
