// azd preprovision: names the SQL server's Entra admin when the environment does not (SQL_ADMIN_OBJECT_ID unset),
// as whoever `az` is signed in as. A service principal must be named by its client id (Azure SQL keys
// applications by it), which AZURE_PRINCIPAL_ID, an object id, is not; a user by its object id and UPN.
import { azdEnvSet, run } from './run.mjs';

if (process.env.SQL_ADMIN_OBJECT_ID) process.exit(0);

const account = run('az', ['account', 'show', '--output', 'json']);
if (!account.ok) {
  console.warn(
    '[preprovision] `az` is not signed in, so the SQL admin defaults to AZURE_PRINCIPAL_ID as a user. ' +
      'For a service principal, run `az login` as it (or set SQL_ADMIN_OBJECT_ID to its client id and ' +
      'SQL_ADMIN_PRINCIPAL_TYPE=Application) and provision again.',
  );
  process.exit(0);
}

const { user } = JSON.parse(account.stdout);
if (user?.type === 'servicePrincipal') {
  azdEnvSet('SQL_ADMIN_OBJECT_ID', user.name);
  azdEnvSet('SQL_ADMIN_PRINCIPAL_TYPE', 'Application');
  azdEnvSet('SQL_ADMIN_LOGIN', user.name);
  if (!process.env.AZURE_PRINCIPAL_TYPE) azdEnvSet('AZURE_PRINCIPAL_TYPE', 'ServicePrincipal');
} else {
  const me = run('az', [
    'ad',
    'signed-in-user',
    'show',
    '--query',
    '{id:id,upn:userPrincipalName}',
    '--output',
    'json',
  ]);
  if (!me.ok) {
    console.warn(
      `[preprovision] could not read the signed-in user (${me.stderr.trim()}); the SQL admin defaults to AZURE_PRINCIPAL_ID.`,
    );
    process.exit(0);
  }
  const { id, upn } = JSON.parse(me.stdout);
  azdEnvSet('SQL_ADMIN_OBJECT_ID', id);
  azdEnvSet('SQL_ADMIN_PRINCIPAL_TYPE', 'User');
  azdEnvSet('SQL_ADMIN_LOGIN', upn);
  if (!process.env.AZURE_PRINCIPAL_TYPE) azdEnvSet('AZURE_PRINCIPAL_TYPE', 'User');
}
console.log('[preprovision] SQL admin: the principal `az` is signed in as.');
