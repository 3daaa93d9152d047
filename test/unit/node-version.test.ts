/**
 * One Node version everywhere: the major `engines` names is the one the Function App deploys, the one the
 * README states, the one the set-up script fetches, and the one these tests run on.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const pkg = JSON.parse(read('package.json')) as {
  engines: { node: string };
  devDependencies: Record<string, string>;
};
const major = Number(/^>=(\d+)$/.exec(pkg.engines.node)?.[1]);

describe('Node version', () => {
  it('declares one major in engines', () => {
    assert.ok(major >= 22, `engines.node is ${pkg.engines.node}; expected ">=22" or newer`);
  });

  it('runs these tests on that major', () => {
    assert.equal(Number(process.versions.node.split('.')[0]), major);
  });

  it('deploys the Function App on that major', () => {
    const bicep = read('bicep/modules/function-app.bicep');
    const runtime = /runtime:\s*\{\s*name:\s*'node'\s*version:\s*'(\d+)'/.exec(bicep);
    assert.ok(runtime, 'function-app.bicep names no node runtime version');
    assert.equal(Number(runtime[1]), major);
  });

  it('types Node APIs of that major, not a newer one', () => {
    assert.equal(Number(/\d+/.exec(pkg.devDependencies['@types/node'])?.[0]), major);
  });

  it('states it in the README', () => {
    const readme = read('README.md');
    assert.match(readme, new RegExp(`\\*\\*Node ${major}\\.\\*\\*`));
    assert.doesNotMatch(readme, /Node 20\b(?! is end-of-life)/);
  });

  it('has the set-up script hand out a Node of that major', () => {
    const dir = execFileSync(process.execPath, [join(root, 'dev', 'setup.mjs'), '--print-node-dir'], {
      encoding: 'utf8',
    }).trim();
    const version = execFileSync(join(dir, 'node'), ['--version'], { encoding: 'utf8' }).trim();
    assert.match(version, new RegExp(`^v${major}\\.`));
  });

  it('makes CI put that Node first on PATH before installing', () => {
    const ci = read('.ci/run');
    const path = ci.indexOf('dev/setup.mjs --print-node-dir');
    assert.ok(path >= 0, '.ci/run does not take its Node from dev/setup.mjs');
    const firstCommand = (name: string) => ci.search(new RegExp(`^${name}\\b`, 'm'));
    assert.ok(path < firstCommand('npm test') && path < firstCommand('node dev/setup.mjs --no-build'));
    assert.equal(firstCommand('npm ci'), -1, 'npm ci runs through dev/setup.mjs, with that Node');
  });
});
