/**
 * The Bicep under bicep/ against the code: every setting lib/config.ts reads is deployed (and nothing we do not
 * read), the control-store connection string is one node-mssql understands, and the security properties the
 * architecture promises are present. No Bicep compiler runs here, so a small lexer also checks that every file
 * has closed strings and balanced brackets.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import sql from 'mssql';
import { deployedWorker } from '../../bench/deployed-worker.js';
import { SETTINGS, WEBHOOK_KEY_SECRET_NAME } from '../../lib/config.js';
import { CHANGES_QUEUE } from '../../lib/queue/envelope.js';

/** Settings that must NOT be deployed, with the reason. Everything else in SETTINGS must be. */
const NOT_IN_AZURE: Record<string, string> = {
  LocalSecrets: 'development only: the local secret provider; Azure reads secrets from KeyVaultUri',
};

/** Host and platform settings the app does not read through lib/config.ts. */
const PLATFORM_SETTINGS = new Set(['AZURE_CLIENT_ID', 'languageWorkers__node__arguments']);
const PLATFORM_PREFIXES = ['AzureWebJobsStorage__', 'APPLICATIONINSIGHTS_'];

/** Flex Consumption rejects these (runtime and package come from functionAppConfig). */
const FORBIDDEN_ON_FLEX = [
  'FUNCTIONS_WORKER_RUNTIME',
  'FUNCTIONS_EXTENSION_VERSION',
  'WEBSITE_NODE_DEFAULT_VERSION',
  'WEBSITE_RUN_FROM_PACKAGE',
  'WEBSITE_CONTENTSHARE',
  'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING',
];

/** Suffixes the Functions host reads next to an identity-based connection (`<name>__credential`, …). */
const IDENTITY_SUFFIXES = ['__credential', '__clientId'];

// ---- locating and lexing the Bicep ----------------------------------------------------------------------------

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bicep', 'main.bicep'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('no directory above this test holds package.json and bicep/main.bicep');
    dir = parent;
  }
}

const root = findRoot();
const bicepDir = join(root, 'bicep');

function bicepFiles(): string[] {
  const modules = join(bicepDir, 'modules');
  const inModules = existsSync(modules)
    ? readdirSync(modules)
        .filter((f) => f.endsWith('.bicep'))
        .map((f) => join(modules, f))
    : [];
  return [join(bicepDir, 'main.bicep'), ...inModules];
}

interface Lexed {
  /** Comments and string contents blanked (same length, newlines kept): only code is left. */
  code: string;
  /** Comments blanked, strings kept. */
  noComments: string;
}

class LexError extends Error {}

/**
 * Splits Bicep into code, strings and comments: `// …`, `/* … *\/`, `'…'` with `\` escapes and `${…}`
 * interpolation (which may hold strings itself), and verbatim `'''…'''`. A one-line string that reaches a line
 * end is an error, as in Bicep.
 */
function lexBicep(src: string): Lexed {
  const code = src.split('');
  const noComments = src.split('');
  const blank = (target: string[], from: number, to: number) => {
    for (let k = from; k < to; k++) if (target[k] !== '\n') target[k] = ' ';
  };
  const lineOf = (i: number) => src.slice(0, i).split('\n').length;

  const scanVerbatim = (i: number): number => {
    const end = src.indexOf("'''", i + 3);
    if (end < 0) throw new LexError(`line ${lineOf(i)}: ''' string is never closed`);
    return end + 3;
  };
  const scanInterpolation = (i: number): number => {
    let depth = 0;
    while (i < src.length) {
      const c = src[i];
      if (c === "'") {
        i = src.startsWith("'''", i) ? scanVerbatim(i) : scanString(i);
        continue;
      }
      if (c === '{') depth++;
      if (c === '}') {
        if (depth === 0) return i + 1;
        depth--;
      }
      i++;
    }
    throw new LexError('an interpolation ${…} is never closed');
  };
  const scanString = (start: number): number => {
    let i = start + 1;
    while (i < src.length) {
      const c = src[i];
      if (c === '\\') i += 2;
      else if (c === "'") return i + 1;
      else if (c === '\n') throw new LexError(`line ${lineOf(start)}: string reaches the end of the line`);
      else if (c === '$' && src[i + 1] === '{') i = scanInterpolation(i + 2);
      else i++;
    }
    throw new LexError(`line ${lineOf(start)}: string is never closed`);
  };

  let i = 0;
  while (i < src.length) {
    if (src.startsWith('//', i)) {
      const end = src.indexOf('\n', i);
      const stop = end < 0 ? src.length : end;
      blank(code, i, stop);
      blank(noComments, i, stop);
      i = stop;
    } else if (src.startsWith('/*', i)) {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) throw new LexError(`line ${lineOf(i)}: block comment is never closed`);
      blank(code, i, end + 2);
      blank(noComments, i, end + 2);
      i = end + 2;
    } else if (src[i] === "'") {
      const end = src.startsWith("'''", i) ? scanVerbatim(i) : scanString(i);
      blank(code, i + 1, end - 1);
      i = end;
    } else {
      i++;
    }
  }
  return { code: code.join(''), noComments: noComments.join('') };
}

function unbalanced(code: string): string | undefined {
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  const stack: { ch: string; line: number }[] = [];
  let line = 1;
  for (const ch of code) {
    if (ch === '\n') line++;
    else if (ch === '(' || ch === '[' || ch === '{') stack.push({ ch, line });
    else if (ch in pairs) {
      const open = stack.pop();
      if (!open || open.ch !== pairs[ch])
        return `line ${line}: '${ch}' does not close ${open ? `'${open.ch}' from line ${open.line}` : 'anything'}`;
    }
  }
  const left = stack.pop();
  return left ? `'${left.ch}' from line ${left.line} is never closed` : undefined;
}

const sources = new Map(bicepFiles().map((file) => [file, readFileSync(file, 'utf8')]));
const lexedFiles = new Map<string, Lexed>();
for (const [file, text] of sources) {
  try {
    lexedFiles.set(file, lexBicep(text));
  } catch {
    // Reported by the syntax test below; the other tests then fail on the missing entry.
  }
}

function source(relative: string): { text: string; lexed: Lexed } {
  const file = join(bicepDir, relative);
  const text = sources.get(file);
  const lexed = lexedFiles.get(file);
  assert.ok(text !== undefined && lexed, `${relative} exists and lexes`);
  return { text, lexed };
}

/** `var appSettings = { … }` in main.bicep: each top-level key with its raw value text. */
function deployedAppSettings(): Map<string, string> {
  const { text, lexed } = source('main.bicep');
  const start = lexed.code.search(/\bvar\s+appSettings\s*=\s*\{/);
  assert.ok(start >= 0, 'main.bicep declares `var appSettings = {`');
  const open = lexed.code.indexOf('{', start);
  let depth = 0;
  let end = -1;
  for (let i = open; i < lexed.code.length; i++) {
    if (lexed.code[i] === '{') depth++;
    if (lexed.code[i] === '}' && --depth === 0) {
      end = i;
      break;
    }
  }
  assert.ok(end > open, 'the appSettings object is closed');
  const settings = new Map<string, string>();
  const codeLines = lexed.code.slice(open + 1, end).split('\n');
  const textLines = text.slice(open + 1, end).split('\n');
  codeLines.forEach((codeLine, n) => {
    const key = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:/.exec(codeLine);
    if (key) settings.set(key[1], textLines[n].slice(textLines[n].indexOf(':') + 1).trim());
  });
  return settings;
}

const appSettings = deployedAppSettings();

/** main.bicep's parameters: name → whether it has a default. */
function declaredParams(): Map<string, boolean> {
  const { text, lexed } = source('main.bicep');
  const params = new Map<string, boolean>();
  for (const match of lexed.code.matchAll(/^param\s+(\w+)\s+\w+(\s*=)?/gm)) params.set(match[1], Boolean(match[2]));
  assert.ok(params.size > 0 && text.length > 0, 'main.bicep declares parameters');
  return params;
}

const azdParameters = (
  JSON.parse(readFileSync(join(bicepDir, 'main.parameters.json'), 'utf8')) as {
    parameters: Record<string, { value: unknown }>;
  }
).parameters;

/** `param name = value` lines of bicep/cli.bicepparam. */
function cliParameters(): Map<string, string> {
  const text = readFileSync(join(bicepDir, 'cli.bicepparam'), 'utf8');
  const code = lexBicep(text).code;
  const set = new Map<string, string>();
  const codeLines = code.split('\n');
  text.split('\n').forEach((line, n) => {
    const match = /^param\s+(\w+)\s*=/.exec(codeLines[n]);
    if (match) set.set(match[1], line.slice(line.indexOf('=') + 1).trim());
  });
  return set;
}

// ---- settings ----------------------------------------------------------------------------------------------------

describe('bicep app settings against lib/config.ts', () => {
  const isSet = (names: string[]) => names.some((n) => appSettings.has(n));

  it('sets every required setting, by its name or an identity-based alternative', () => {
    const missing = SETTINGS.filter((s) => s.required && !isSet([s.name, ...(s.alternatives ?? [])])).map(
      (s) => s.name,
    );
    assert.deepEqual(missing, [], `required settings missing from main.bicep appSettings: ${missing.join(', ')}`);
  });

  it('sets every optional setting that has a default, so Azure does not rely on defaults hidden in code', () => {
    const missing = SETTINGS.filter((s) => !s.required && s.default !== undefined && !(s.name in NOT_IN_AZURE))
      .filter((s) => !isSet([s.name, ...(s.alternatives ?? [])]))
      .map((s) => s.name);
    assert.deepEqual(missing, []);
  });

  it('sets every other setting too, except those listed as not for Azure', () => {
    const missing = SETTINGS.filter((s) => !(s.name in NOT_IN_AZURE))
      .filter((s) => !isSet([s.name, ...(s.alternatives ?? [])]))
      .map((s) => s.name);
    assert.deepEqual(missing, [], 'deploy them, or add them to NOT_IN_AZURE with a reason');
  });

  it('keeps profiles in Azure off loopback http, and refuses the webhook key secret Bicep names as a target', () => {
    assert.equal(appSettings.get('AllowLoopbackDataverse'), "'false'");
    const keyVault = readFileSync(join(bicepDir, 'modules', 'key-vault.bicep'), 'utf8');
    assert.match(keyVault, new RegExp(`var webhookKeySecretName = '${WEBHOOK_KEY_SECRET_NAME}'`));
  });

  it('leaves development-only settings out', () => {
    for (const name of Object.keys(NOT_IN_AZURE)) {
      assert.ok(
        SETTINGS.some((s) => s.name === name),
        `${name} is still a setting (else drop it from NOT_IN_AZURE)`,
      );
      assert.ok(!appSettings.has(name), `${name} must not be deployed: ${NOT_IN_AZURE[name]}`);
    }
  });

  it('deploys no setting the app does not read, except host and platform settings', () => {
    const known = new Set<string>();
    for (const s of SETTINGS) {
      known.add(s.name);
      for (const alternative of s.alternatives ?? []) known.add(alternative);
      if (s.alternatives?.length) for (const suffix of IDENTITY_SUFFIXES) known.add(`${s.name}${suffix}`);
    }
    const unknown = [...appSettings.keys()].filter(
      (key) => !known.has(key) && !PLATFORM_SETTINGS.has(key) && !PLATFORM_PREFIXES.some((p) => key.startsWith(p)),
    );
    assert.deepEqual(unknown, [], 'add them to lib/config.ts SETTINGS, or to the platform list here');
  });

  it('uses identity-based connections, each naming the user-assigned identity', () => {
    for (const connection of ['AzureWebJobsStorage', 'ServiceBusConnection', 'PayloadStorageConnection']) {
      assert.equal(appSettings.get(`${connection}__credential`), "'managedidentity'", `${connection}__credential`);
      assert.match(appSettings.get(`${connection}__clientId`) ?? '', /clientId/, `${connection}__clientId`);
    }
    assert.ok(appSettings.has('AzureWebJobsStorage__accountName'));
    assert.ok(!appSettings.has('AzureWebJobsStorage'), 'no storage connection string (shared keys are off)');
    assert.ok(!appSettings.has('ServiceBusConnection'), 'no Service Bus connection string (local auth is off)');
    assert.ok(!appSettings.has('PayloadStorageConnection'), 'no payload storage connection string');
    assert.match(appSettings.get('AZURE_CLIENT_ID') ?? '', /clientId/);
  });

  it('sets nothing Flex Consumption rejects', () => {
    const forbidden = FORBIDDEN_ON_FLEX.filter((name) => appSettings.has(name));
    assert.deepEqual(forbidden, []);
  });

  it('sets every %setting% that host.json refers to', () => {
    const host = readFileSync(join(root, 'host.json'), 'utf8');
    for (const [, name] of host.matchAll(/%([A-Za-z0-9_]+)%/g)) {
      assert.ok(appSettings.has(name), `host.json refers to %${name}%`);
    }
  });

  it('gives the control store a connection string node-mssql signs in with as the managed identity', () => {
    assert.equal(appSettings.get('ControlStoreKind'), "'mssql'");
    const raw = /^'(.*)'$/.exec(appSettings.get('ControlStoreConnection') ?? '');
    assert.ok(raw, 'ControlStoreConnection is one string');
    const clientId = '11111111-2222-3333-4444-555555555555';
    const sample = raw[1]
      .replace(/\$\{[^}]*serverFqdn[^}]*\}/g, 'sql-abc.database.windows.net')
      .replace(/\$\{[^}]*clientId[^}]*\}/g, clientId)
      .replace(/\$\{[^}]*\}/g, 'value');
    const config = sql.ConnectionPool.parseConnectionString(sample) as unknown as Record<string, unknown> & {
      options: { encrypt?: boolean };
    };
    assert.equal(config.authentication_type, 'azure-active-directory-default');
    assert.equal(config.clientId, clientId);
    assert.equal(config.server, 'sql-abc.database.windows.net');
    assert.equal(config.port, 1433);
    assert.equal(config.options.encrypt, true);
    assert.ok(typeof config.database === 'string' && config.database.length > 0, 'names the database');
    assert.equal(config.user, undefined, 'no SQL login');
  });
});

// ---- structure -------------------------------------------------------------------------------------------------

describe('bicep structure', () => {
  it('lexes every file: strings and comments closed, brackets balanced', () => {
    for (const [file, text] of sources) {
      let lexed: Lexed;
      try {
        lexed = lexBicep(text);
      } catch (err) {
        assert.fail(`${file}: ${(err as Error).message}`);
      }
      const problem = unbalanced(lexed.code);
      assert.equal(problem, undefined, `${file}: ${problem}`);
    }
  });

  it('refers only to module files that exist', () => {
    for (const [file, lexed] of lexedFiles) {
      const text = sources.get(file) ?? '';
      for (const match of lexed.code.matchAll(/^\s*module\s+\w+\s+'/gm)) {
        const at = (match.index ?? 0) + match[0].length;
        const path = text.slice(at, text.indexOf("'", at));
        assert.ok(!path.startsWith('br') || path.endsWith('.bicep'), `${file}: registry module ${path}`);
        assert.ok(existsSync(resolve(dirname(file), path)), `${file}: module '${path}' does not exist`);
      }
    }
  });

  const has = (relative: string, pattern: RegExp, what: string) =>
    assert.match(source(relative).lexed.noComments, pattern, `${relative}: ${what}`);

  it('stores the management key under the secret name the app reads it from', () => {
    const appDefault = SETTINGS.find((s) => s.name === 'ManagementKeySecretName')?.default;
    has('modules/key-vault.bicep', new RegExp(`param managementKeySecretName string = '${appDefault}'`), 'its name');
    has(
      'modules/key-vault.bicep',
      /name:\s*managementKeySecretName\s*properties:\s*\{\s*value:\s*managementKey/,
      'the secret',
    );
    has('main.bicep', /managementKey:\s*managementKey/, 'the key passed to the vault');
  });

  it('keeps the storage account key-less, private and on TLS 1.2', () => {
    has('modules/storage.bicep', /allowSharedKeyAccess:\s*false/, 'shared keys off');
    has('modules/storage.bicep', /allowBlobPublicAccess:\s*false/, 'no public blob access');
    has('modules/storage.bicep', /minimumTlsVersion:\s*'TLS1_2'/, 'TLS 1.2');
    has('modules/storage.bicep', /'claimchecks'/, 'claim-check container');
    has('modules/storage.bicep', /'failurelog'/, 'failure-log container');
    has('modules/storage.bicep', /managementPolicies@/, 'a lifecycle policy');
    has('modules/storage.bicep', /prefixMatch:\s*\[\s*'\$\{failureLogContainerName\}\/'/, 'that deletes failure logs');
  });

  it('keeps Service Bus on Entra ID and TLS 1.2, with a queue that dedups and dead-letters', () => {
    has('modules/service-bus.bicep', /minimumTlsVersion:\s*'1\.2'/, 'TLS 1.2');
    has('modules/service-bus.bicep', /disableLocalAuth:\s*true/, 'SAS keys off');
    has('modules/service-bus.bicep', /requiresDuplicateDetection:\s*true/, 'duplicate detection');
    has('modules/service-bus.bicep', /deadLetteringOnMessageExpiration:\s*true/, 'dead-lettering on expiry');
    has('modules/service-bus.bicep', /maxDeliveryCount:\s*\d+/, 'a delivery limit');
    has('modules/service-bus.bicep', /lockDuration:\s*'PT\d+[MS]'/, 'a lock duration');
    has(
      'modules/service-bus.bicep',
      new RegExp(`param queueName string = '${CHANGES_QUEUE}'`),
      'the queue the code uses',
    );
  });

  it('keeps SQL Entra-only on TLS 1.2', () => {
    has('modules/sql.bicep', /azureADOnlyAuthentication:\s*true/, 'Entra-only');
    has('modules/sql.bicep', /minimalTlsVersion:\s*'1\.2'/, 'TLS 1.2');
    has('modules/sql.bicep', /'GP_S_Gen5'/, 'General Purpose serverless');
    assert.doesNotMatch(source('modules/sql.bicep').lexed.noComments, /administratorLoginPassword/, 'no SQL login');
  });

  it('keeps Key Vault in RBAC mode with purge protection', () => {
    has('modules/key-vault.bicep', /enableRbacAuthorization:\s*true/, 'RBAC mode');
    has('modules/key-vault.bicep', /enablePurgeProtection:\s*true/, 'purge protection');
    has('modules/key-vault.bicep', /enableSoftDelete:\s*true/, 'soft delete');
  });

  it('runs the Function App on Flex Consumption, Node 22, HTTPS and TLS 1.2 only, as the user-assigned identity', () => {
    has('modules/function-app.bicep', /tier:\s*'FlexConsumption'/, 'Flex Consumption plan');
    has('modules/function-app.bicep', /functionAppConfig:/, 'functionAppConfig');
    has('modules/function-app.bicep', /runtime:\s*\{\s*name:\s*'node'\s*version:\s*'22'/, 'Node 22');
    has('modules/function-app.bicep', /httpsOnly:\s*true/, 'HTTPS only');
    has('modules/function-app.bicep', /minTlsVersion:\s*'1\.2'/, 'TLS 1.2');
    has('modules/function-app.bicep', /ftpsState:\s*'Disabled'/, 'FTPS off');
    has('modules/function-app.bicep', /type:\s*'UserAssigned'/, 'user-assigned identity');
    has('modules/function-app.bicep', /'azd-service-name':\s*'api'/, 'the tag azd deploys service api to');
  });

  it('grants roles only in rbac.bicep, with deterministic names, to the identity as a service principal', () => {
    for (const [file, lexed] of lexedFiles) {
      if (file.endsWith(join('modules', 'rbac.bicep'))) continue;
      assert.doesNotMatch(lexed.noComments, /Microsoft\.Authorization\/roleAssignments@/, `${file} assigns a role`);
    }
    const rbac = source('modules/rbac.bicep').lexed.noComments;
    const blocks = rbac.split(/(?=^resource\s)/m).filter((b) => /Microsoft\.Authorization\/roleAssignments@/.test(b));
    assert.ok(blocks.length >= 4, 'role assignments for Service Bus, storage and Key Vault');
    for (const block of blocks) {
      assert.match(block, /name:\s*guid\(/, `deterministic name:\n${block}`);
      assert.match(block, /principalType:/, `principalType:\n${block}`);
    }
    for (const role of [
      '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39', // Azure Service Bus Data Sender
      '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0', // Azure Service Bus Data Receiver
      'b7e6dc6d-f1e8-4753-8033-0f276bb0955b', // Storage Blob Data Owner
      '974c5e8b-45b9-4653-ba55-5f855dd0fb88', // Storage Queue Data Contributor
      '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3', // Storage Table Data Contributor
      '4633458b-17de-408a-b874-0445c86b69e6', // Key Vault Secrets User
    ]) {
      assert.ok(rbac.includes(role), `rbac.bicep grants role ${role}`);
    }
    assert.match(rbac, /principalType:\s*'ServicePrincipal'/);
  });

  it('outputs what azd needs', () => {
    for (const output of ['AZURE_FUNCTION_APP_NAME', 'SERVICE_API_NAME', 'AZURE_LOCATION', 'AZURE_TENANT_ID']) {
      has('main.bicep', new RegExp(`^output ${output} string`, 'm'), `output ${output}`);
    }
  });

  it('has a parameters file whose every parameter main.bicep declares, fed by azd', () => {
    const params = declaredParams();
    for (const name of Object.keys(azdParameters)) assert.ok(params.has(name), `main.bicep declares param ${name}`);
    assert.equal(azdParameters.environmentName?.value, '${AZURE_ENV_NAME}');
    assert.equal(azdParameters.location?.value, '${AZURE_LOCATION}');
  });

  it('has a .bicepparam for the Azure CLI: using main.bicep, only declared params, every required one, no ${…}', () => {
    const text = readFileSync(join(bicepDir, 'cli.bicepparam'), 'utf8');
    const code = lexBicep(text).code;
    assert.equal(unbalanced(code), undefined);
    assert.match(text, /^using '\.\/main\.bicep'$/m);
    assert.doesNotMatch(lexBicep(text).noComments, /\$\{/, 'azd placeholders mean nothing to the Azure CLI');
    const params = declaredParams();
    const set = cliParameters();
    for (const name of set.keys()) assert.ok(params.has(name), `main.bicep declares param ${name}`);
    const required = [...params].filter(([, hasDefault]) => !hasDefault).map(([name]) => name);
    for (const name of required) assert.ok(set.has(name), `cli.bicepparam sets required param ${name}`);
  });

  it('feeds the Azure CLI the same parameters from the same environment variables as azd', () => {
    const fromAzd = new Map(
      Object.entries(azdParameters).map(([name, { value }]) => [name, /^\$\{([A-Z_]+)/.exec(String(value))?.[1]]),
    );
    const fromCli = new Map(
      [...cliParameters()].map(([name, value]) => [name, /readEnvironmentVariable\('([A-Z_]+)'/.exec(value)?.[1]]),
    );
    assert.deepEqual(Object.fromEntries(fromCli), Object.fromEntries(fromAzd));
  });

  it('takes the payload key names from parameters, so a provision cannot undo a key rotation', () => {
    const params = declaredParams();
    for (const [setting, param] of [
      ['PayloadKeySecretName', 'payloadKeySecretName'],
      ['PayloadPreviousKeySecretNames', 'payloadPreviousKeySecretNames'],
    ]) {
      assert.equal(appSettings.get(setting), param, `${setting} is the parameter ${param}`);
      assert.ok(params.has(param), `main.bicep declares param ${param}`);
      assert.ok(param in azdParameters, `main.parameters.json feeds ${param} from the azd environment`);
    }
    has('main.bicep', /payloadKeySecretName:\s*payloadKeySecretName/, 'the vault writes the key under that name');
  });

  it('accepts any kind of deploying principal: no principalType is assumed', () => {
    const main = source('main.bicep').lexed.noComments;
    assert.match(main, /^param principalType string = ''$/m);
    assert.match(main, /^param sqlAdminPrincipalType string = ''$/m);
    has(
      'modules/rbac.bicep',
      /principalType:\s*empty\(operatorPrincipalType\)\s*\?\s*null\s*:\s*operatorPrincipalType/,
      "an empty type is left out of the operator's role assignment",
    );
    has('modules/sql.bicep', /@minLength\(36\)\s*@maxLength\(36\)\s*param adminObjectId string/, 'no empty SQL admin');
  });

  it('names the Key Vault with a salt that the postdown hook renews, so azd down then up works', () => {
    has('main.bicep', /keyVault:\s*'kv-\$\{resourceToken\}\$\{toLower\(keyVaultNameSalt\)\}'/, 'salted vault name');
    has(
      'main.bicep',
      /@maxLength\(8\)\s*param keyVaultNameSalt string = ''/,
      'kv- + 13 + 8 stays within 24 characters',
    );
    assert.equal(azdParameters.keyVaultNameSalt?.value, '${KEY_VAULT_NAME_SALT}');
    const postdown = readFileSync(join(bicepDir, 'hooks', 'postdown.mjs'), 'utf8');
    assert.match(postdown, /azdEnvSet\('KEY_VAULT_NAME_SALT'/);
    has('modules/key-vault.bicep', /enablePurgeProtection:\s*true/, 'purge protection stays');
  });

  it('sends telemetry with Entra ID only: local auth off, the identity as Monitoring Metrics Publisher', () => {
    has('modules/monitoring.bicep', /DisableLocalAuth:\s*true/, 'local auth off');
    has('modules/rbac.bicep', /'3913510d-42f4-4e42-8a64-420c390055eb'/, 'Monitoring Metrics Publisher');
    assert.match(
      appSettings.get('APPLICATIONINSIGHTS_AUTHENTICATION_STRING') ?? '',
      /^'ClientId=\$\{identity\.outputs\.clientId\};Authorization=AAD'$/,
    );
    const host = JSON.parse(readFileSync(join(root, 'host.json'), 'utf8'));
    assert.equal(host.telemetryMode, 'OpenTelemetry', 'host and worker telemetry correlate');
  });

  it('gives batches a lock that must outlast them: the longest Service Bus allows, no renewal settings', () => {
    has('modules/service-bus.bicep', /lockDuration:\s*'PT5M'/, 'five minutes');
    const serviceBus = JSON.parse(readFileSync(join(root, 'host.json'), 'utf8')).extensions.serviceBus;
    for (const key of ['maxAutoLockRenewalDuration', 'maxConcurrentCalls', 'maxConcurrentSessions']) {
      assert.ok(!(key in serviceBus), `host.json sets ${key}, which does not apply to a batch trigger`);
    }
  });

  it('caps the Node worker at a quarter of the instance memory, the arguments the bench measures with', () => {
    assert.equal(appSettings.get('languageWorkers__node__arguments'), "'--max-old-space-size=${instanceMemoryMB / 4}'");
    has('main.bicep', /^param instanceMemoryMB int = 2048$/m, 'a 2,048 MB instance by default');
    assert.deepEqual(deployedWorker(root), { instanceMemoryMB: 2048, args: ['--max-old-space-size=512'] });
  });

  it("parses the app's JSON log lines in the workbook's error panel (they arrive in traces.message)", () => {
    const workbook = source('modules/workbook.bicep').text;
    const errors = /var errorsQuery = '''([\s\S]*?)'''/.exec(workbook)?.[1] ?? '';
    assert.match(errors, /parse_json\(message\)/);
    assert.doesNotMatch(errors, /customDimensions/);
  });

  it('matches azure.yaml: infra in bicep/, service api (TypeScript, built by azd) deployed to a function app', () => {
    const yaml = readFileSync(join(root, 'azure.yaml'), 'utf8');
    assert.match(yaml, /^\s+path:\s*bicep\s*$/m);
    assert.match(yaml, /^\s+api:\s*$/m);
    assert.match(yaml, /^\s+host:\s*function\s*$/m);
    assert.match(yaml, /^\s+language:\s*ts\s*$/m);
    assert.match(yaml, /^\s+remoteBuild:\s*false\s*$/m);
    const commands = yaml.replace(/#.*$/gm, '');
    assert.doesNotMatch(commands, /npm (ci|install|run build)/, 'azd restores and builds a ts project itself');
    for (const [, script] of yaml.matchAll(/run:\s*node\s+(\S+)/g)) {
      assert.ok(existsSync(join(root, script)), `azure.yaml runs ${script}, which does not exist`);
    }
    for (const hook of ['preprovision', 'postprovision', 'postdown', 'prepackage']) {
      assert.match(yaml, new RegExp(`^\\s+${hook}:\\s*$`, 'm'), `azure.yaml has the ${hook} hook`);
    }
    // Subscription scope is what lets azd create the resource group main.bicep names.
    has('main.bicep', /^targetScope = 'subscription'/m, 'subscription scope');
  });
});
