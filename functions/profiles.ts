import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { guardProfilesApi, refuseAnonymous } from '../lib/api/guarded.js';
import { createProfilesApi, type ProfilesApi, type ResyncStarted } from '../lib/api/profiles-api.js';
import type { ApiRequest } from '../lib/api/request.js';
import { type ApiRoute, httpOptions, routesRegisteredBy } from '../lib/api/routes.js';
import { accessOptionsOf } from '../lib/auth/management-key.js';
import { AppError } from '../lib/errors.js';
import { httpBoundary } from '../lib/http/boundary.js';
import { loggerFor } from '../lib/log.js';
import type { ExportProfile } from '../lib/profiles/schema.js';
import { getRuntime } from '../lib/runtime.js';
import { probeTarget } from '../lib/sink/index.js';
import { InitialSyncNames, initialSyncInstanceId, RUNNING_STATUSES } from '../lib/sync/initial-sync-orchestration.js';
import { type ResyncInput, ResyncNames, resyncInstanceId } from '../lib/sync/resync-orchestration.js';

async function apiFor(context: InvocationContext, requestUrl: string): Promise<ProfilesApi> {
  const runtime = await getRuntime();
  return guardProfilesApi(await profilesApiFor(context, requestUrl), {
    access: accessOptionsOf(runtime),
    audit: runtime.store,
    getProfile: (id) => runtime.store.getProfile(id),
    logger: loggerFor(context),
  });
}

async function profilesApiFor(context: InvocationContext, requestUrl: string): Promise<ProfilesApi> {
  const runtime = await getRuntime();
  const durable = df.getClient(context);
  const running = async (instanceId: string) => {
    const status = await durable.getStatus(instanceId).catch(() => undefined);
    return status !== undefined && RUNNING_STATUSES.has(String(status.runtimeStatus));
  };
  return createProfilesApi({
    store: runtime.store,
    secrets: runtime.secrets,
    reach: runtime.config.profileReach,
    probeTarget: (kind, connectionString, schema) =>
      probeTarget(kind, connectionString, schema, {
        allowTrustServerCertificate: runtime.config.allowTrustServerCertificate,
      }),
    registration: runtime.registrar,
    async startInitialSync(profile: ExportProfile, { full }) {
      const instanceId = initialSyncInstanceId(profile.id);
      if (await running(instanceId)) return instanceId;
      return durable.startNew(InitialSyncNames.orchestration, { instanceId, input: { profileId: profile.id, full } });
    },
    async stopSync(profile) {
      const instanceId = initialSyncInstanceId(profile.id);
      if (await running(instanceId)) await durable.terminate(instanceId, 'profile deactivated');
    },
    async dropTables(profile) {
      const sink = await runtime.sinks.sinkFor(profile);
      await sink.dropTables(profile.entities, profile.relationships);
    },
    failures: {
      list: (profileId, range) => runtime.failureLog.listFailures(profileId, range),
      purge: (profileId) => runtime.failureLog.deleteFailures(profileId),
      async resync(profile) {
        const instanceId = resyncInstanceId(profile.id);
        if (!(await running(instanceId))) {
          const input: ResyncInput = { profileId: profile.id, startedAt: new Date().toISOString() };
          await durable.startNew(ResyncNames.orchestration, { instanceId, input });
        }
        // As Durable's createCheckStatusResponse does: the links carry the origin the caller reached us on.
        const origin = new URL(requestUrl).origin;
        const links = durable.createHttpManagementPayload(instanceId) as unknown as Record<string, string>;
        return Object.fromEntries(
          Object.entries(links).map(([name, link]) => [
            name,
            /^https?:\/\//.test(link) ? origin + link.slice(new URL(link).origin.length) : link,
          ]),
        ) as ResyncStarted;
      },
    },
    logger: loggerFor(context, { function: context.functionName }),
  });
}

async function toApiRequest(request: HttpRequest): Promise<ApiRequest> {
  return { params: request.params, query: request.query, headers: request.headers, body: await request.text() };
}

/** Answers one route of the table; a bad setting or a wrong method leaves as the same coded JSON as any error. */
function handlerOf(route: ApiRoute) {
  return (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> =>
    httpBoundary(loggerFor(context, { function: context.functionName }), async () => {
      // Nobody at all is refused before the runtime starts (a broken setting then cannot hide the 401).
      const refused = refuseAnonymous({ headers: request.headers, query: request.query });
      if (refused) return refused;
      const operation = route.operations[request.method.toUpperCase() as keyof ApiRoute['operations']];
      if (!operation?.handler) {
        throw new AppError('METHOD_NOT_ALLOWED', `${request.method} is not allowed on /api/${route.route}.`);
      }
      const api = await apiFor(context, request.url);
      return api[operation.handler](await toApiRequest(request));
    });
}

const durableClient = df.input.durableClient();

// Anonymous at the host: the app itself admits signed-in principals by app role, or the management key.
for (const route of routesRegisteredBy('profiles')) {
  app.http(route.name, { ...httpOptions(route), extraInputs: [durableClient], handler: handlerOf(route) });
}
