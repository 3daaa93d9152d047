/**
 * Every HTTP route of the app, once. `functions/` registers its triggers from this table, the OpenAPI document
 * takes its paths from it, and the route tests walk it. A new route is one entry here, its operation in
 * `openapi.ts` (keyed by operationId) and a registration in the `functions/` file that owns it.
 */
import type { ProfilesApi } from './profiles-api.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';

export interface RouteOperation {
  /** The OpenAPI operationId. */
  operationId: string;
  /** For routes of the profile API: the handler that answers. */
  handler?: keyof ProfilesApi;
}

export interface ApiRoute {
  /** The function's name in the host (`app.http(name, …)`). */
  name: string;
  /** The route under `/api`, in the host's template syntax (`profiles/{id}`). */
  route: string;
  authLevel: 'anonymous' | 'function';
  /** The `functions/` file that registers it. */
  registeredBy: 'profiles' | 'webhook' | 'health' | 'openapi';
  operations: Partial<Record<HttpMethod, RouteOperation>>;
}

/** Anonymous at the host: the app admits signed-in principals by app role, or the management key. */
const profileRoute = (name: string, route: string, operations: ApiRoute['operations']): ApiRoute => ({
  name,
  route,
  authLevel: 'anonymous',
  registeredBy: 'profiles',
  operations,
});

export const ROUTES: readonly ApiRoute[] = [
  profileRoute('profiles', 'profiles', {
    GET: { operationId: 'listProfiles', handler: 'list' },
    POST: { operationId: 'createProfile', handler: 'create' },
  }),
  profileRoute('profile', 'profiles/{id}', {
    GET: { operationId: 'getProfile', handler: 'get' },
    PUT: { operationId: 'replaceProfile', handler: 'replace' },
    DELETE: { operationId: 'deleteProfile', handler: 'delete' },
  }),
  profileRoute('profileActivate', 'profiles/{id}/activate', {
    POST: { operationId: 'activateProfile', handler: 'activate' },
  }),
  profileRoute('profileDeactivate', 'profiles/{id}/deactivate', {
    POST: { operationId: 'deactivateProfile', handler: 'deactivate' },
  }),
  profileRoute('profileStatus', 'profiles/{id}/status', {
    GET: { operationId: 'getProfileStatus', handler: 'status' },
  }),
  profileRoute('profileFailures', 'profiles/{id}/failures', {
    GET: { operationId: 'listFailures', handler: 'failures' },
  }),
  profileRoute('profileFailuresResync', 'profiles/{id}/failures/resync', {
    POST: { operationId: 'resyncFailures', handler: 'resyncFailures' },
  }),
  profileRoute('profileRegistration', 'profiles/{id}/registration', {
    GET: { operationId: 'getRegistration', handler: 'registration' },
    POST: { operationId: 'repairRegistration', handler: 'repairRegistration' },
  }),
  profileRoute('unattributedFailures', 'failures/unattributed', {
    GET: { operationId: 'listUnattributedFailures', handler: 'unattributedFailures' },
  }),
  {
    name: 'dataverseWebhook',
    route: 'webhooks/dataverse',
    authLevel: 'function',
    registeredBy: 'webhook',
    operations: { POST: { operationId: 'receiveDataverseWebhook' } },
  },
  {
    name: 'health',
    route: 'health',
    authLevel: 'anonymous',
    registeredBy: 'health',
    operations: { GET: { operationId: 'health' } },
  },
  {
    name: 'openapi',
    route: 'openapi.json',
    authLevel: 'function',
    registeredBy: 'openapi',
    operations: { GET: { operationId: 'openApi' } },
  },
];

export function routesRegisteredBy(file: ApiRoute['registeredBy']): ApiRoute[] {
  return ROUTES.filter((r) => r.registeredBy === file);
}

/** The route's registration options for `app.http`, without the handler. */
export function httpOptions(route: ApiRoute): {
  route: string;
  methods: HttpMethod[];
  authLevel: ApiRoute['authLevel'];
} {
  return { route: route.route, methods: methodsOf(route), authLevel: route.authLevel };
}

export function methodsOf(route: ApiRoute): HttpMethod[] {
  return Object.keys(route.operations) as HttpMethod[];
}
