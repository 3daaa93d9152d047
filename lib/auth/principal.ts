/**
 * The signed-in caller as App Service Authentication (Easy Auth) forwards it: the `x-ms-client-principal`
 * header holds base64 JSON `{ auth_typ, name_typ, role_typ, claims: [{ typ, val }] }`. The platform strips
 * the header from incoming requests and sets it only after a sign-in, so its presence is the proof.
 */
import { AppError } from '../errors.js';

export const PRINCIPAL_HEADER = 'x-ms-client-principal';

/** The app roles the app registration declares (bicep/modules/app-roles documents them). */
export const ROLES = { admin: 'Export.Admin', reader: 'Export.Reader' } as const;

export interface Principal {
  /** The display or user name the claims carry, for the audit trail. */
  name: string;
  /** The object id (`oid`) when present, else the name. */
  id: string;
  identityProvider: string;
  roles: string[];
}

interface ClientPrincipal {
  auth_typ?: string;
  name_typ?: string;
  role_typ?: string;
  claims?: { typ?: string; val?: string }[];
}

const ROLE_CLAIM = 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role';
const NAME_CLAIM = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name';
const OID_CLAIM = 'http://schemas.microsoft.com/identity/claims/objectidentifier';

/** Reads the header; undefined when absent. A header that is present but unreadable is a 401, not "nobody". */
export function readPrincipal(header: string | undefined): Principal | undefined {
  if (header === undefined || header.trim() === '') return undefined;
  let parsed: ClientPrincipal;
  try {
    parsed = JSON.parse(Buffer.from(header, 'base64').toString('utf8')) as ClientPrincipal;
  } catch {
    throw new AppError('UNAUTHORIZED', `The ${PRINCIPAL_HEADER} header is not base64 JSON; sign in again.`);
  }
  if (!parsed || typeof parsed !== 'object' || !Array.isArray(parsed.claims)) {
    throw new AppError('UNAUTHORIZED', `The ${PRINCIPAL_HEADER} header has no claims; sign in again.`);
  }
  const roleType = parsed.role_typ || ROLE_CLAIM;
  const nameType = parsed.name_typ || NAME_CLAIM;
  const values = (typ: string) =>
    parsed.claims!.filter((c) => c?.typ === typ && typeof c.val === 'string').map((c) => c.val as string);
  const name = values(nameType)[0] ?? values('preferred_username')[0] ?? values('name')[0] ?? 'unknown';
  const roles = [...new Set([...values(roleType), ...(roleType === 'roles' ? [] : values('roles'))])];
  return {
    name,
    id: values(OID_CLAIM)[0] ?? values('oid')[0] ?? name,
    identityProvider: parsed.auth_typ ?? 'unknown',
    roles,
  };
}

/** The header value a platform would send for these claims; used by the dev host and tests. */
export function encodePrincipal(principal: { name: string; roles: string[]; id?: string }): string {
  const claims = [
    { typ: NAME_CLAIM, val: principal.name },
    ...(principal.id ? [{ typ: OID_CLAIM, val: principal.id }] : []),
    ...principal.roles.map((val) => ({ typ: 'roles', val })),
  ];
  const body: ClientPrincipal = { auth_typ: 'aad', name_typ: NAME_CLAIM, role_typ: 'roles', claims };
  return Buffer.from(JSON.stringify(body)).toString('base64');
}
