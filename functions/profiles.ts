import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { guardProfilesApi, refuseAnonymous } from '../lib/api/guarded.js';
import { createProfilesApi, type ProfilesApi } from '../lib/api/profiles-api.js';
import type { ApiRequest } from '../lib/api/request.js';
import { accessOptionsOf } from '../lib/auth/management-key.js';
import { loggerFor } from '../lib/log.js';
import type { ExportProfile } from '../lib/profiles/schema.js';
import { getRuntime } from '../lib/runtime.js';
import { probeTarget } from '../lib/sink/index.js';
import { syncDepsFromRuntime } from '../lib/sync/ports.js';
import { resyncFailures } from '../lib/sync/resync.js';

/** One initial-sync instance per profile, so a second activation finds the running one instead of racing it. */
export const initialSyncInstanceId = (profileId: string) => `initialSync-${profileId}`;

const ACTIVE_STATES = new Set<string>(['Running', 'Pending', 'ContinuedAsNew']);

async function apiFor(context: InvocationContext): Promise<ProfilesApi> {
  const runtime = await getRuntime();
  return guardProfilesApi(await profilesApiFor(context), {
    access: accessOptionsOf(runtime),
    audit: runtime.store,
    getProfile: (id) => runtime.store.getProfile(id),
    logger: loggerFor(context),
  });
}

async function profilesApiFor(context: InvocationContext): Promise<ProfilesApi> {
  const runtime = await getRuntime();
  const durable = df.getClient(context);
  return createProfilesApi({
    store: runtime.store,
    secrets: runtime.secrets,
    probeTarget: (kind, connectionString, schema) =>
      probeTarget(kind, connectionString, schema, {
        allowTrustServerCertificate: runtime.config.allowTrustServerCertificate,
      }),
    registration: runtime.registrar,
    async startInitialSync(profile: ExportProfile, { full }) {
      const instanceId = initialSyncInstanceId(profile.id);
      const status = await durable.getStatus(instanceId).catch(() => undefined);
      if (status && ACTIVE_STATES.has(String(status.runtimeStatus))) return instanceId;
      return durable.startNew('initialSync', { instanceId, input: { profileId: profile.id, full } });
    },
    async stopSync(profile) {
      const instanceId = initialSyncInstanceId(profile.id);
      const status = await durable.getStatus(instanceId).catch(() => undefined);
      if (status && ACTIVE_STATES.has(String(status.runtimeStatus))) {
        await durable.terminate(instanceId, 'profile deactivated');
      }
    },
    async dropTables(profile) {
      const sink = await runtime.sinks.sinkFor(profile);
      await sink.dropTables(profile.entities, profile.relationships);
    },
    failures: {
      list: (profileId, range) => runtime.failureLog.listFailures(profileId, range),
      purge: (profileId) => runtime.failureLog.deleteFailures(profileId),
      resync: async (profile) => ({
        ...(await resyncFailures(syncDepsFromRuntime(runtime, { logger: loggerFor(context) }), profile.id)),
      }),
    },
    logger: loggerFor(context, { function: context.functionName }),
  });
}

async function toApiRequest(request: HttpRequest): Promise<ApiRequest> {
  return { params: request.params, query: request.query, headers: request.headers, body: await request.text() };
}

/** Routes one HTTP trigger to the API handler its method names. */
function route(handlers: Partial<Record<string, keyof ProfilesApi>>) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    const refused = refuseAnonymous({ headers: request.headers, query: request.query });
    if (refused) return refused;
    const api = await apiFor(context);
    const name = handlers[request.method.toUpperCase()];
    if (!name)
      return {
        status: 405,
        jsonBody: { code: 'METHOD_NOT_ALLOWED', message: `${request.method} is not allowed here` },
      };
    return api[name](await toApiRequest(request));
  };
}

const durableClient = df.input.durableClient();

// Anonymous at the host: the app itself admits signed-in principals by app role, or the management key.

app.http('profiles', {
  route: 'profiles',
  methods: ['GET', 'POST'],
  authLevel: 'anonymous',
  extraInputs: [durableClient],
  handler: route({ GET: 'list', POST: 'create' }),
});

app.http('profile', {
  route: 'profiles/{id}',
  methods: ['GET', 'PUT', 'DELETE'],
  authLevel: 'anonymous',
  extraInputs: [durableClient],
  handler: route({ GET: 'get', PUT: 'replace', DELETE: 'delete' }),
});

app.http('profileActivate', {
  route: 'profiles/{id}/activate',
  methods: ['POST'],
  authLevel: 'anonymous',
  extraInputs: [durableClient],
  handler: route({ POST: 'activate' }),
});

app.http('profileDeactivate', {
  route: 'profiles/{id}/deactivate',
  methods: ['POST'],
  authLevel: 'anonymous',
  extraInputs: [durableClient],
  handler: route({ POST: 'deactivate' }),
});

app.http('profileStatus', {
  route: 'profiles/{id}/status',
  methods: ['GET'],
  authLevel: 'anonymous',
  extraInputs: [durableClient],
  handler: route({ GET: 'status' }),
});

app.http('profileFailures', {
  route: 'profiles/{id}/failures',
  methods: ['GET'],
  authLevel: 'anonymous',
  extraInputs: [durableClient],
  handler: route({ GET: 'failures' }),
});

app.http('profileFailuresResync', {
  route: 'profiles/{id}/failures/resync',
  methods: ['POST'],
  authLevel: 'anonymous',
  extraInputs: [durableClient],
  handler: route({ POST: 'resyncFailures' }),
});

app.http('profileRegistration', {
  route: 'profiles/{id}/registration',
  methods: ['GET', 'POST'],
  authLevel: 'anonymous',
  extraInputs: [durableClient],
  handler: route({ GET: 'registration', POST: 'repairRegistration' }),
});
