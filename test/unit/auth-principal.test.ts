import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodePrincipal, readPrincipal } from '../../lib/auth/principal.js';

const header = (body: unknown) => Buffer.from(JSON.stringify(body)).toString('base64');

describe('x-ms-client-principal', () => {
  it('reads the name, object id and roles as App Service Authentication forwards them for Entra ID', () => {
    const principal = readPrincipal(
      header({
        auth_typ: 'aad',
        name_typ: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name',
        role_typ: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role',
        claims: [
          { typ: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name', val: 'ada@contoso.com' },
          { typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier', val: 'oid-1' },
          { typ: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role', val: 'Export.Admin' },
          { typ: 'roles', val: 'Export.Reader' },
        ],
      }),
    );
    assert.deepEqual(principal, {
      name: 'ada@contoso.com',
      id: 'oid-1',
      identityProvider: 'aad',
      roles: ['Export.Admin', 'Export.Reader'],
    });
  });

  it('round-trips what the dev host forwards', () => {
    const principal = readPrincipal(encodePrincipal({ name: 'dev', roles: ['Export.Reader'] }));
    assert.equal(principal?.name, 'dev');
    assert.deepEqual(principal?.roles, ['Export.Reader']);
  });

  it('reads an absent header as nobody and an unreadable one as a 401', () => {
    assert.equal(readPrincipal(undefined), undefined);
    assert.throws(() => readPrincipal('%%%'), { code: 'UNAUTHORIZED' });
    assert.throws(() => readPrincipal(header({ auth_typ: 'aad' })), { code: 'UNAUTHORIZED' });
  });
});
