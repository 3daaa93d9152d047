/**
 * Who may do what at the management API: `Export.Admin` everything, `Export.Reader` reading only;
 * a management key (the function key automation sends) acts as an admin unless the setting turns it off.
 * Nobody → 401; signed in without the role the request needs → 403.
 */
import { timingSafeEqual } from 'node:crypto';
import type { ApiRequest } from '../api/request.js';
import { lookup } from '../api/request.js';
import { AppError } from '../errors.js';
import { PRINCIPAL_HEADER, type Principal, ROLES, readPrincipal } from './principal.js';

/** What a request needs: reading (list, get, status, failures, audit) or changing something. */
export type Access = 'read' | 'write';

export type Caller = { kind: 'principal'; principal: Principal } | { kind: 'functionKey' };

export interface AccessOptions {
  /** The key that opens the API without a sign-in; undefined when keys are turned off or none is set. */
  managementKey(): Promise<string | undefined>;
}

/** The name the audit trail records for a caller. */
export function actorOf(caller: Caller): string {
  return caller.kind === 'principal' ? caller.principal.name : 'function key';
}

export function mayWrite(caller: Caller): boolean {
  return caller.kind === 'functionKey' || caller.principal.roles.includes(ROLES.admin);
}

export function mayRead(caller: Caller): boolean {
  return mayWrite(caller) || (caller.kind === 'principal' && caller.principal.roles.includes(ROLES.reader));
}

/** Decides the caller of a request and checks it may do `access`; throws UNAUTHORIZED or FORBIDDEN. */
export async function authorize(request: ApiRequest, access: Access, options: AccessOptions): Promise<Caller> {
  const caller = await identify(request, options);
  const allowed = access === 'write' ? mayWrite(caller) : mayRead(caller);
  if (!allowed) {
    const principal = (caller as { principal: Principal }).principal;
    const needed = access === 'write' ? ROLES.admin : `${ROLES.reader} or ${ROLES.admin}`;
    throw new AppError(
      'FORBIDDEN',
      `${principal.name} may not ${access === 'write' ? 'change' : 'read'} export profiles: this needs the app role ${needed}` +
        ` (has ${principal.roles.length ? principal.roles.join(', ') : 'no role'}). Ask an administrator to assign it.`,
      { details: [{ field: 'roles', message: `needs ${needed}`, value: principal.roles }] },
    );
  }
  return caller;
}

/**
 * Nobody at all: neither a principal nor a key. Answered before the app's runtime is touched, so a stray
 * request costs nothing and gets its 401 even while the control store is down.
 */
export function isAnonymous(request: ApiRequest): boolean {
  return (
    !lookup(request.headers, PRINCIPAL_HEADER) &&
    !lookup(request.headers, 'x-functions-key') &&
    !lookup(request.query, 'code')
  );
}

export function nobodyError(): AppError {
  return new AppError(
    'UNAUTHORIZED',
    'Nobody is signed in: sign in through the app (App Service Authentication) or send the function key in x-functions-key.',
  );
}

/** Who is calling, without checking a role; throws UNAUTHORIZED for nobody or a wrong key. */
export async function identify(request: ApiRequest, options: AccessOptions): Promise<Caller> {
  const principal = readPrincipal(lookup(request.headers, PRINCIPAL_HEADER));
  if (principal) return { kind: 'principal', principal };
  const given = lookup(request.headers, 'x-functions-key') ?? lookup(request.query, 'code');
  if (given !== undefined && given !== '') {
    const key = await options.managementKey();
    if (key !== undefined && sameKey(given, key)) return { kind: 'functionKey' };
    throw new AppError(
      'UNAUTHORIZED',
      key === undefined
        ? 'This app does not accept a function key for the management API; sign in instead.'
        : 'The function key is wrong; send the management key in x-functions-key or ?code=, or sign in.',
    );
  }
  throw nobodyError();
}

function sameKey(given: string, key: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(key);
  return a.length === b.length && timingSafeEqual(a, b);
}
