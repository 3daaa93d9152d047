import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { openApiDocument } from '../lib/api/openapi.js';
import { httpOptions, routesRegisteredBy } from '../lib/api/routes.js';

/** The OpenAPI 3.1 description of every route, generated from the same JSON Schema ajv validates with. */
export async function openApi(_request: HttpRequest, _context: InvocationContext): Promise<HttpResponseInit> {
  return { status: 200, jsonBody: openApiDocument() };
}

for (const route of routesRegisteredBy('openapi')) app.http(route.name, { ...httpOptions(route), handler: openApi });
