/**
 * The azd hooks under bicep/hooks, run as azd runs them (`node <script>`), with `az`, `azd` and `sqlcmd` replaced by
 * small scripts on PATH that answer as those tools do and record how they were called (no Azure here). The names the
 * hooks use are checked against the Bicep, which creates what they act on.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const hook = (name: string) => join(root, 'bicep', 'hooks', name);
const mainBicep = readFileSync(join(root, 'bicep', 'main.bicep'), 'utf8');
const tools = mkdtempSync(join(tmpdir(), 'deploy-hooks-'));
after(() => rmSync(tools, { recursive: true, force: true }));

/** A stand-in command: records its arguments (one call per line) and runs `body` (sh). */
function fakeTool(name: string, body: string): void {
  const file = join(tools, name);
  writeFileSync(file, `#!/bin/sh\necho "$*" >> "${join(tools, `${name}.calls`)}"\n${body}\n`);
  chmodSync(file, 0o755);
}
const calls = (name: string): string[] => {
  try {
    return readFileSync(join(tools, `${name}.calls`), 'utf8')
      .replace(/\n$/, '')
      .split('\n')
      .filter(Boolean);
  } catch {
    return [];
  }
};
const resetCalls = () => {
  for (const name of ['az', 'azd', 'sqlcmd']) rmSync(join(tools, `${name}.calls`), { force: true });
};

function runHook(name: string, env: Record<string, string>, args: string[] = []) {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(AZURE_|SQL_ADMIN_|KEY_VAULT_|PAYLOAD_)/.test(k)),
  );
  const result = spawnSync(process.execPath, [hook(name), ...args], {
    encoding: 'utf8',
    env: { ...clean, PATH: `${tools}${delimiter}${process.env.PATH}`, ...env },
  });
  return { code: result.status, out: result.stdout, err: result.stderr };
}

/** The identity name main.bicep gives the app, with a resource token of the length uniqueString yields. */
const identityName = (() => {
  const pattern = /identity:\s*'([^']*)\$\{resourceToken\}'/.exec(mainBicep);
  assert.ok(pattern, 'main.bicep names the identity from resourceToken');
  return `${pattern[1]}abcdefghijklm`;
})();
const controlDatabase = /sqlDatabase:\s*'([^']+)'/.exec(mainBicep)?.[1] ?? '';

describe('postprovision: the app identity’s user in the control-store database', () => {
  const outputs = {
    AZURE_RESOURCE_GROUP: 'rg-test',
    AZURE_SQL_SERVER_NAME: 'sql-abcdefghijklm',
    AZURE_SQL_SERVER_FQDN: 'sql-abcdefghijklm.database.windows.net',
    AZURE_SQL_DATABASE_NAME: controlDatabase,
    AZURE_MANAGED_IDENTITY_NAME: identityName,
    FIREWALL_RULE_WAIT_SECONDS: '0',
  };

  it('reads only environment values that main.bicep outputs, the identity name among them', () => {
    const script = readFileSync(hook('postprovision.mjs'), 'utf8');
    const read = [...script.matchAll(/required\('([A-Z_]+)'\)/g)].map((m) => m[1]);
    assert.ok(read.includes('AZURE_MANAGED_IDENTITY_NAME'));
    for (const name of read) assert.match(mainBicep, new RegExp(`^output ${name} string`, 'm'), `output ${name}`);
    assert.match(mainBicep, /^output AZURE_MANAGED_IDENTITY_NAME string = identity\.outputs\.name$/m);
    assert.match(mainBicep, /^output AZURE_SQL_DATABASE_NAME string = sql\.outputs\.databaseName$/m);
  });

  it('creates the user once (FROM EXTERNAL PROVIDER) and grants the roles the app migrates its tables with', () => {
    const { code, out } = runHook('postprovision.mjs', { AZURE_MANAGED_IDENTITY_NAME: identityName }, ['--print-sql']);
    assert.equal(code, 0);
    assert.equal(
      out,
      [
        `IF DATABASE_PRINCIPAL_ID(N'${identityName}') IS NULL`,
        `  CREATE USER [${identityName}] FROM EXTERNAL PROVIDER;`,
        'GO',
        `ALTER ROLE db_ddladmin ADD MEMBER [${identityName}];`,
        `ALTER ROLE db_datareader ADD MEMBER [${identityName}];`,
        `ALTER ROLE db_datawriter ADD MEMBER [${identityName}];`,
        'GO',
        '',
      ].join('\n'),
    );
  });

  it('refuses a name that is no managed identity name rather than splice it into T-SQL', () => {
    const { code, err } = runHook('postprovision.mjs', { AZURE_MANAGED_IDENTITY_NAME: "x]; DROP TABLE t; --'" }, [
      '--print-sql',
    ]);
    assert.equal(code, 1);
    assert.match(err, /AZURE_MANAGED_IDENTITY_NAME is .* not a managed identity name/);
  });

  it('says which value is missing when run outside azd', () => {
    const { code, err } = runHook('postprovision.mjs', {});
    assert.equal(code, 1);
    assert.match(err, /AZURE_RESOURCE_GROUP is not set/);
  });

  it('signs in with Entra ID as the az account, and needs no firewall rule when the server admits this machine', () => {
    resetCalls();
    fakeTool('sqlcmd', 'exit 0');
    fakeTool('az', 'exit 0');
    const { code } = runHook('postprovision.mjs', outputs);
    assert.equal(code, 0);
    const [call] = calls('sqlcmd');
    assert.match(call, new RegExp(`-S tcp:${outputs.AZURE_SQL_SERVER_FQDN},1433 -d ${controlDatabase} `));
    assert.match(call, /--authentication-method ActiveDirectoryDefault/);
    assert.match(call, / -b /, 'stops at the first error');
    assert.deepEqual(calls('az'), []);
  });

  it('opens the firewall for the refused address only, retries, and removes the rule again', () => {
    resetCalls();
    // Refused the first time (error 40615 names the address), admitted once the rule is in place.
    fakeTool(
      'sqlcmd',
      `if [ ! -f "${tools}/opened" ]; then echo "Msg 40615: Cannot open server. Client with IP address '203.0.113.7' is not allowed to access the server." >&2; exit 1; fi; exit 0`,
    );
    fakeTool('az', `case "$*" in *"firewall-rule create"*) touch "${tools}/opened";; esac; exit 0`);
    const { code } = runHook('postprovision.mjs', outputs);
    rmSync(join(tools, 'opened'), { force: true });
    assert.equal(code, 0);
    const az = calls('az');
    assert.equal(az.length, 2);
    assert.match(az[0], /^sql server firewall-rule create --resource-group rg-test --server sql-abcdefghijklm /);
    assert.match(
      az[0],
      /--name azd-postprovision-203-0-113-7 --start-ip-address 203\.0\.113\.7 --end-ip-address 203\.0\.113\.7/,
    );
    assert.match(
      az[1],
      /^sql server firewall-rule delete --resource-group rg-test --server sql-abcdefghijklm --name azd-postprovision-203-0-113-7/,
    );
    assert.equal(calls('sqlcmd').length, 2);
  });

  it('removes the rule and prints the T-SQL to run by hand when sign-in still fails', () => {
    resetCalls();
    fakeTool(
      'sqlcmd',
      `if [ ! -f "${tools}/opened" ]; then echo "Client with IP address '203.0.113.7' is not allowed" >&2; exit 1; fi; echo "Msg 33134: Principal could not be resolved." >&2; exit 1`,
    );
    fakeTool('az', `case "$*" in *"firewall-rule create"*) touch "${tools}/opened";; esac; exit 0`);
    const { code, err } = runHook('postprovision.mjs', outputs);
    rmSync(join(tools, 'opened'), { force: true });
    assert.equal(code, 1);
    assert.match(err, /Principal could not be resolved/);
    assert.ok(err.includes(`CREATE USER [${identityName}] FROM EXTERNAL PROVIDER;`), 'prints the manual step');
    assert.match(calls('az').at(-1) ?? '', /firewall-rule delete/);
  });
});

describe('preprovision: the SQL server’s Entra admin', () => {
  it('names a CI service principal by its client id, as an Application', () => {
    resetCalls();
    fakeTool('az', `echo '{"user":{"name":"00000000-aaaa-bbbb-cccc-000000000001","type":"servicePrincipal"}}'`);
    fakeTool('azd', 'exit 0');
    const { code } = runHook('preprovision.mjs', {});
    assert.equal(code, 0);
    assert.deepEqual(calls('azd'), [
      'env set SQL_ADMIN_OBJECT_ID 00000000-aaaa-bbbb-cccc-000000000001',
      'env set SQL_ADMIN_PRINCIPAL_TYPE Application',
      'env set SQL_ADMIN_LOGIN 00000000-aaaa-bbbb-cccc-000000000001',
      'env set AZURE_PRINCIPAL_TYPE ServicePrincipal',
    ]);
  });

  it('names a signed-in user by object id and UPN', () => {
    resetCalls();
    fakeTool(
      'az',
      `case "$*" in "account show"*) echo '{"user":{"name":"ada@contoso.com","type":"user"}}';; *) echo '{"id":"11111111-2222-3333-4444-555555555555","upn":"ada@contoso.com"}';; esac`,
    );
    fakeTool('azd', 'exit 0');
    const { code } = runHook('preprovision.mjs', { AZURE_PRINCIPAL_TYPE: 'User' });
    assert.equal(code, 0);
    assert.deepEqual(calls('azd'), [
      'env set SQL_ADMIN_OBJECT_ID 11111111-2222-3333-4444-555555555555',
      'env set SQL_ADMIN_PRINCIPAL_TYPE User',
      'env set SQL_ADMIN_LOGIN ada@contoso.com',
    ]);
  });

  it('leaves an admin the environment already names alone', () => {
    resetCalls();
    fakeTool('az', 'exit 0');
    fakeTool('azd', 'exit 0');
    const { code } = runHook('preprovision.mjs', { SQL_ADMIN_OBJECT_ID: '11111111-2222-3333-4444-555555555555' });
    assert.equal(code, 0);
    assert.deepEqual([...calls('az'), ...calls('azd')], []);
  });
});

describe('postdown: a Key Vault name the next azd up can take', () => {
  it('picks a new short salt each time and forgets the previous payload keys', () => {
    const salts = new Set<string>();
    for (let i = 0; i < 2; i++) {
      resetCalls();
      fakeTool('azd', 'exit 0');
      const { code } = runHook('postdown.mjs', {});
      assert.equal(code, 0);
      const [salt, previous] = calls('azd');
      const value = /^env set KEY_VAULT_NAME_SALT ([0-9a-f]+)$/.exec(salt)?.[1];
      assert.ok(value && value.length <= 8, `salt ${salt}`);
      salts.add(value);
      assert.equal(previous, 'env set PAYLOAD_PREVIOUS_KEY_SECRET_NAMES ');
    }
    assert.equal(salts.size, 2);
  });
});
