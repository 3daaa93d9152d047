import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { openApiDocument } from '../lib/api/openapi.js';

/** The OpenAPI 3.1 description of every route, generated from the same JSON Schema ajv validates with. */
export async function openApi(_request: HttpRequest, _context: InvocationContext): Promise<HttpResponseInit> {
  return { status: 200, jsonBody: openApiDocument() };
}

app.http('openapi', { route: 'openapi.json', methods: ['GET'], authLevel: 'function', handler: openApi });
