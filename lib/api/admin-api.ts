/**
 * The routes the console needs beside the profile API: the audit trail, who the caller is, and what an
 * organization offers to export. Each handler checks the caller's role and answers coded JSON on failure.
 */
import { type AccessOptions, identify, mayRead, mayWrite } from '../auth/access.js';
import type { OrganizationCatalog } from '../dataverse/webapi/catalog.js';
import { AppError } from '../errors.js';
import { type HttpResult, httpBoundary } from '../http/boundary.js';
import type { Logger } from '../log.js';
import type { AuditTrail } from '../profiles/audit.js';
import { type ProfileReach, sourceUrlProblem } from '../profiles/profile-reach.js';
import { guard } from './guarded.js';
import { type ApiRequest, dateParam, integerParam, lookup } from './request.js';

export interface AdminApiDeps {
  access: AccessOptions;
  audit: AuditTrail;
  /** Reads the organization's tables and N:N relationships through the Web API. */
  catalogFor(url: string): Promise<OrganizationCatalog>;
  /** The same rule as a profile's source.url: the catalog read carries the app's Dataverse token too. */
  reach: ProfileReach;
  logger: Logger;
}

export interface AdminApi {
  audit(request: ApiRequest): Promise<HttpResult>;
  me(request: ApiRequest): Promise<HttpResult>;
  catalog(request: ApiRequest): Promise<HttpResult>;
}

const DEFAULT_AUDIT_LIMIT = 100;
const MAX_AUDIT_LIMIT = 1000;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function createAdminApi(deps: AdminApiDeps): AdminApi {
  const log = deps.logger.child({ component: 'admin-api' });
  const json = (body: unknown): HttpResult => ({
    status: 200,
    jsonBody: body,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
  });

  return {
    audit: (request) =>
      guard(request, 'read', deps.access, () =>
        httpBoundary(log, async () => {
          const profileId = lookup(request.query, 'profileId') || undefined;
          if (profileId !== undefined && !GUID.test(profileId)) {
            throw new AppError(
              'VALIDATION_FAILED',
              `Query parameter 'profileId' is ${JSON.stringify(profileId)}; use a profile's GUID.`,
              {
                details: [{ field: 'profileId', message: 'expected a GUID', value: profileId }],
              },
            );
          }
          const from = dateParam(request, 'from');
          const to = dateParam(request, 'to');
          const limit = integerParam(request, 'limit', MAX_AUDIT_LIMIT) ?? DEFAULT_AUDIT_LIMIT;
          const offset = lookup(request.query, 'offset') ? (integerParam(request, 'offset', 1_000_000_000) ?? 0) : 0;
          // One row more than asked says whether another page follows.
          const rows = await deps.audit.listAudit({ profileId, from, to, limit: limit + 1, offset });
          return json({ entries: rows.slice(0, limit), nextOffset: rows.length > limit ? offset + limit : null });
        }),
      ),

    me: (request) =>
      httpBoundary(log, async () => {
        const caller = await identify(request, deps.access);
        return json({
          name: caller.kind === 'principal' ? caller.principal.name : 'function key',
          kind: caller.kind,
          roles: caller.kind === 'principal' ? caller.principal.roles : [],
          canRead: mayRead(caller),
          canWrite: mayWrite(caller),
        });
      }),

    // Admins only: the app sends its Dataverse token to the URL, so readers may not point it anywhere.
    catalog: (request) =>
      guard(request, 'write', deps.access, () =>
        httpBoundary(log, async () => {
          const url = organizationUrl(lookup(request.query, 'url'), deps.reach);
          return json(await deps.catalogFor(url));
        }),
      ),
  };
}

/** An organization's base URL, under the rule for a profile's source.url. */
function organizationUrl(raw: string | undefined, reach: ProfileReach): string {
  const problem = (message: string) =>
    new AppError('VALIDATION_FAILED', `Query parameter 'url' ${message}.`, {
      details: [{ field: 'url', message, value: raw }],
    });
  if (!raw) throw problem('is missing: name the organization, e.g. ?url=https://contoso.crm.dynamics.com');
  const refused = sourceUrlProblem(raw, reach);
  if (refused) throw problem(`is refused: ${refused}`);
  return new URL(raw).origin;
}
