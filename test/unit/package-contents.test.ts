/**
 * What `azd deploy` (or `func azure functionapp publish`) uploads: the project folder less what .funcignore excludes,
 * matched with gitignore rules from the project root, as both tools do (here through `ignore`, the gitignore matcher
 * eslint uses). The package must hold the app and nothing local, secret or development-only; and the app must run
 * from it with production dependencies alone (the prepackage hook prunes the rest).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ignore from 'ignore';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const rules = ignore().add(readFileSync(join(root, '.funcignore'), 'utf8'));
const toPosix = (path: string) => path.split(sep).join('/');
const shipped = (path: string) => !rules.ignores(path);

/** Walks the project as the packaging tools do: an excluded folder is not entered (gitignore cannot re-include in it). */
function packageFiles(dir = root, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = toPosix(relative(root, join(dir, entry.name)));
    if (entry.isDirectory()) {
      if (shipped(`${path}/`) && !(path === 'node_modules' || path.startsWith('node_modules/')))
        packageFiles(join(dir, entry.name), out);
      else if (shipped(`${path}/`)) out.push(`${path}/`);
    } else if (shipped(path)) {
      out.push(path);
    }
  }
  return out;
}

/** Local state and secrets that exist on a developer's machine, whether or not this checkout has them now. */
const LOCAL_PATHS = [
  '.local/postgres/PG_VERSION',
  '.local/payload-key',
  '.local/function-key',
  '.local/stack.json',
  '.local/azurite/__blobstorage__/blob',
  'local.settings.json',
  '.git',
  '.git/HEAD',
  '.azure/prod/.env',
  '.env',
  'bench/results.json',
  'npm-debug.log',
  'dist/functions/local.settings.json',
  'node_modules/.local/x',
];

/** Whole areas that must never ship, by path prefix. */
const FORBIDDEN_PREFIXES = [
  '.local/',
  '.git',
  '.azure/',
  'test/',
  'bench/',
  'dev/',
  'dist/test/',
  'dist/dev/',
  'dist/bench/',
  'bicep/',
  '.ci/',
];

const files = packageFiles();

describe('deployment package (.funcignore)', () => {
  it('leaves out local data, secrets and settings, wherever they are', () => {
    const leaked = LOCAL_PATHS.filter(shipped);
    assert.deepEqual(leaked, []);
  });

  it('leaves out sources, tests, benchmarks, the development host and tooling', () => {
    const leaked = files.filter(
      (f) =>
        FORBIDDEN_PREFIXES.some((p) => f.startsWith(p)) ||
        (f.endsWith('.ts') && !f.startsWith('node_modules/')) ||
        /^(tsconfig|biome|azure|local\.settings\.sample)\.(json|yaml)$/.test(f) ||
        f === '.funcignore' ||
        f === '.gitignore' ||
        f === 'README.md',
    );
    assert.deepEqual(leaked, []);
  });

  it('holds host.json, package.json, node_modules and every compiled function', () => {
    for (const needed of ['host.json', 'package.json', 'package-lock.json', 'node_modules/']) {
      assert.ok(files.includes(needed), `${needed} is in the package`);
    }
    const functions = readdirSync(join(root, 'dist', 'functions')).filter((f) => f.endsWith('.js'));
    assert.ok(functions.length > 0, 'dist/functions is built');
    for (const f of functions) assert.ok(files.includes(`dist/functions/${f}`), `dist/functions/${f} ships`);
  });

  it('holds every module the functions load, and they need only production dependencies', () => {
    const { dependencies = {} } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
    };
    const builtins = new Set(builtinModules);
    const seen = new Set<string>();
    const bare = new Set<string>();
    const queue = readdirSync(join(root, 'dist', 'functions'))
      .filter((f) => f.endsWith('.js'))
      .map((f) => join(root, 'dist', 'functions', f));
    while (queue.length) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const text = readFileSync(file, 'utf8');
      for (const [, spec] of text.matchAll(
        /(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*'([^']+)'|import\('([^']+)'\)/g,
      )) {
        if (!spec) continue;
        if (spec.startsWith('.')) queue.push(resolve(dirname(file), spec));
        else if (!spec.startsWith('node:') && !builtins.has(spec))
          bare.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
      }
    }
    for (const file of seen) {
      assert.ok(existsSync(file), `${relative(root, file)} exists`);
      assert.ok(
        files.includes(toPosix(relative(root, file))),
        `${toPosix(relative(root, file))} is loaded but not shipped`,
      );
    }
    assert.ok(
      [...seen].some((f) => f.includes(`${sep}dist${sep}lib${sep}`)),
      'the functions load lib/',
    );
    assert.ok(bare.has('@azure/functions'), 'imports are found');
    const notProduction = [...bare].filter((name) => !(name in dependencies));
    assert.deepEqual(notProduction, [], 'the package carries production dependencies only: move these to dependencies');
  });

  it('prunes devDependencies before packaging, in azd and in the runbook', () => {
    const hook = readFileSync(join(root, 'bicep', 'hooks', 'prepackage.mjs'), 'utf8');
    assert.match(hook, /'prune', '--omit=dev'/);
    const yaml = readFileSync(join(root, 'azure.yaml'), 'utf8');
    assert.match(yaml, /prepackage:[\s\S]*?run: node bicep\/hooks\/prepackage\.mjs/);
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    assert.match(readme, /npm prune --omit=dev\nfunc azure functionapp publish/);
  });
});
