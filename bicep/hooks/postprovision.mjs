// azd postprovision: gives the Function App's identity its user in the control-store database, which Bicep
// cannot (database users are not ARM resources). Signs in to Azure SQL with Entra ID (go-sqlcmd,
// ActiveDirectoryDefault: the `az login` account), as the server's Entra admin. When the server's firewall refuses
// this machine, it opens a rule for this machine's address alone, and removes it again however the run ends.
// Idempotent: run it again with `azd hooks run postprovision`. `--print-sql` prints the T-SQL and exits.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from './run.mjs';

/** Roles the app needs in its control database: it creates and migrates its own schema and tables there. */
export const CONTROL_DATABASE_ROLES = ['db_ddladmin', 'db_datareader', 'db_datawriter'];

/** The T-SQL that creates the identity's database user (once) and adds it to the roles (again and again). */
export function controlDatabaseGrantSql(identityName) {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{2,127}$/.test(identityName ?? '')) {
    throw new Error(`AZURE_MANAGED_IDENTITY_NAME is ${JSON.stringify(identityName)}: not a managed identity name.`);
  }
  const user = `[${identityName}]`;
  return [
    `IF DATABASE_PRINCIPAL_ID(N'${identityName}') IS NULL`,
    `  CREATE USER ${user} FROM EXTERNAL PROVIDER;`,
    'GO',
    ...CONTROL_DATABASE_ROLES.map((role) => `ALTER ROLE ${role} ADD MEMBER ${user};`),
    'GO',
    '',
  ].join('\n');
}

function required(name) {
  const value = process.env[name];
  if (!value)
    throw new Error(
      `[postprovision] ${name} is not set: run this as an azd hook after a provision (azd hooks run postprovision).`,
    );
  return value;
}

/** Thrown, not exited, so the firewall rule is removed on the way out. */
function manualSteps(reason) {
  return new Error(
    [
      `[postprovision] ${reason}`,
      'The app cannot sign in to its control database until this is done. Either fix the cause and run',
      '`azd hooks run postprovision`, or run this T-SQL in database',
      `${process.env.AZURE_SQL_DATABASE_NAME} on ${process.env.AZURE_SQL_SERVER_FQDN} as the server's Entra admin:`,
      '',
      controlDatabaseGrantSql(process.env.AZURE_MANAGED_IDENTITY_NAME),
    ].join('\n'),
  );
}

async function main() {
  if (process.argv.includes('--print-sql')) {
    process.stdout.write(controlDatabaseGrantSql(required('AZURE_MANAGED_IDENTITY_NAME')));
    return;
  }
  const resourceGroup = required('AZURE_RESOURCE_GROUP');
  const server = required('AZURE_SQL_SERVER_NAME');
  const fqdn = required('AZURE_SQL_SERVER_FQDN');
  const database = required('AZURE_SQL_DATABASE_NAME');
  const sql = controlDatabaseGrantSql(required('AZURE_MANAGED_IDENTITY_NAME'));

  const dir = mkdtempSync(join(tmpdir(), 'dvexport-sql-'));
  const script = join(dir, 'control-database-user.sql');
  writeFileSync(script, sql);
  // sqlcmd is an executable on every platform: no shell, so the path and names pass as they are.
  const sqlcmd = () =>
    run(
      'sqlcmd',
      [
        '-S',
        `tcp:${fqdn},1433`,
        '-d',
        database,
        '--authentication-method',
        'ActiveDirectoryDefault',
        '-l',
        '60',
        '-b',
        '-i',
        script,
      ],
      { windowsShell: false },
    );

  let rule;
  try {
    let result = sqlcmd();
    if (result.missing) throw manualSteps('sqlcmd is not installed (go-sqlcmd: https://aka.ms/go-sqlcmd).');
    // Azure SQL names the refused address in error 40615: "Client with IP address 'a.b.c.d' is not allowed …".
    const refused = /Client with IP address '([0-9A-Fa-f.:]+)'/.exec(result.stdout + result.stderr);
    if (!result.ok && refused) {
      rule = `azd-postprovision-${refused[1].replace(/[.:]/g, '-')}`;
      const opened = run('az', [
        'sql',
        'server',
        'firewall-rule',
        'create',
        '--resource-group',
        resourceGroup,
        '--server',
        server,
        '--name',
        rule,
        '--start-ip-address',
        refused[1],
        '--end-ip-address',
        refused[1],
        '--output',
        'none',
      ]);
      if (!opened.ok) throw manualSteps(`could not open the firewall for ${refused[1]}: ${opened.stderr.trim()}`);
      // A new rule takes effect within a few minutes.
      const waitMs = Number(process.env.FIREWALL_RULE_WAIT_SECONDS ?? 15) * 1000;
      for (let attempt = 0; attempt < 12; attempt++) {
        await sleep(waitMs);
        result = sqlcmd();
        if (result.ok || !/40615|Client with IP address/.test(result.stdout + result.stderr)) break;
      }
    }
    if (!result.ok) throw manualSteps(`sqlcmd failed: ${(result.stdout + result.stderr).trim()}`);
    console.log(`[postprovision] ${process.env.AZURE_MANAGED_IDENTITY_NAME} has its user in ${database}.`);
  } finally {
    if (rule) {
      const closed = run('az', [
        'sql',
        'server',
        'firewall-rule',
        'delete',
        '--resource-group',
        resourceGroup,
        '--server',
        server,
        '--name',
        rule,
        '--output',
        'none',
      ]);
      if (!closed.ok) console.error(`[postprovision] remove firewall rule ${rule} by hand: ${closed.stderr.trim()}`);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (err) {
  console.error(err.message);
  process.exitCode = 1;
}
