/**
 * The profile API behind who-may-do-what and the audit trail: each handler checks the caller's role first,
 * and each change that succeeded is recorded with the profile before and after it. The handlers themselves
 * stay unaware of either.
 */
import { type Access, type AccessOptions, actorOf, authorize, isAnonymous, nobodyError } from '../auth/access.js';
import { toAppError } from '../errors.js';
import { errorResult, type HttpResult } from '../http/boundary.js';
import type { Logger } from '../log.js';
import type { AuditAction, AuditTrail } from '../profiles/audit.js';
import type { ExportProfile } from '../profiles/schema.js';
import type { ApiHandler, ProfilesApi } from './profiles-api.js';
import { type ApiRequest, flag } from './request.js';

export interface GuardDeps {
  access: AccessOptions;
  audit: AuditTrail;
  getProfile(id: string): Promise<ExportProfile | undefined>;
  logger: Logger;
}

const READS = ['list', 'get', 'status', 'failures', 'registration', 'unattributedFailures'] as const;
/** Writes that change Dataverse's side only (the profile stays as it was), so they leave no audit entry. */
const UNAUDITED_WRITES = ['repairRegistration'] as const;
const CHANGES: Record<
  Exclude<keyof ProfilesApi, (typeof READS)[number] | (typeof UNAUDITED_WRITES)[number]>,
  AuditAction
> = {
  create: 'create',
  replace: 'replace',
  delete: 'delete',
  activate: 'activate',
  deactivate: 'deactivate',
  resyncFailures: 'resync',
};

/** The 401 for a request that brings neither a principal nor a key; undefined when it brings one. */
export function refuseAnonymous(request: ApiRequest): HttpResult | undefined {
  return isAnonymous(request) ? errorResult(nobodyError()) : undefined;
}

/** Runs `run` only when the caller may do `access`; a refusal answers 401/403 as coded JSON. */
export async function guard(
  request: ApiRequest,
  access: Access,
  options: AccessOptions,
  run: (caller: Awaited<ReturnType<typeof authorize>>) => Promise<HttpResult>,
): Promise<HttpResult> {
  let caller: Awaited<ReturnType<typeof authorize>>;
  try {
    caller = await authorize(request, access, options);
  } catch (thrown) {
    return errorResult(toAppError(thrown));
  }
  return run(caller);
}

export function guardProfilesApi(api: ProfilesApi, deps: GuardDeps): ProfilesApi {
  const log = deps.logger.child({ component: 'audit' });
  const guarded = {} as ProfilesApi;
  for (const name of READS) guarded[name] = (request) => guard(request, 'read', deps.access, () => api[name](request));
  for (const name of UNAUDITED_WRITES) {
    guarded[name] = (request) => guard(request, 'write', deps.access, () => api[name](request));
  }
  for (const [name, action] of Object.entries(CHANGES) as [keyof typeof CHANGES, AuditAction][]) {
    guarded[name] = audited(api[name], action);
  }
  return guarded;

  function audited(handler: ApiHandler, action: AuditAction): ApiHandler {
    return (request) =>
      guard(request, 'write', deps.access, async (caller) => {
        const id = request.params?.id;
        const before = id ? await deps.getProfile(id).catch(() => undefined) : undefined;
        const result = await handler(request);
        if (result.status >= 300) return result;
        const body = (result.jsonBody ?? null) as (ExportProfile & Record<string, unknown>) | null;
        const after = action === 'delete' || action === 'resync' ? before : body?.id ? profileOnly(body) : undefined;
        // Activating an active profile (or deactivating an inactive one) changed nothing: no entry.
        if ((action === 'activate' || action === 'deactivate') && before && after && before.state === after.state) {
          return result;
        }
        try {
          await deps.audit.recordAudit({
            actor: actorOf(caller),
            actorKind: caller.kind,
            action,
            profileId: (after ?? before)?.id ?? id ?? '',
            profileName: (after ?? before)?.name ?? null,
            before: before ?? null,
            after: action === 'delete' ? null : (after ?? null),
            details: detailsOf(action, request, body),
          });
        } catch (err) {
          // The change is done and answered; a lost audit entry is an operator alarm, not the caller's failure.
          log.error('audit entry not written', { action, profileId: id, error: toAppError(err) });
        }
        return result;
      });
  }
}

/** The stored profile without what a response adds beside it (`initialSync`). */
function profileOnly(body: ExportProfile & Record<string, unknown>): ExportProfile {
  const { initialSync: _initialSync, ...profile } = body;
  return profile as ExportProfile;
}

function detailsOf(
  action: AuditAction,
  request: ApiRequest,
  body: Record<string, unknown> | null,
): Record<string, unknown> | null {
  // A resync runs as durable work: the trail names its instance (its status URL carries a key).
  if (action === 'resync') return body && typeof body.id === 'string' ? { instanceId: body.id } : null;
  if (action === 'delete') return { dropTables: flag(request, 'dropTables') };
  return body && 'initialSync' in body ? { initialSync: body.initialSync } : null;
}
