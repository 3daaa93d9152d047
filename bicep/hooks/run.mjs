// What the azd hooks share: running a command line tool without a shell in between (so no argument is re-parsed),
// and writing a value into the azd environment. Plain Node.js: the hooks run before anything is installed.
import { spawnSync } from 'node:child_process';

/** Runs `command args…`; answers its exit code and output. On Windows `az` and `azd` are .cmd files: they need a shell. */
export function run(command, args, options = {}) {
  const result = spawnSync(command, args, {
    encoding: 'utf8',
    shell: process.platform === 'win32' && options.windowsShell !== false,
    ...options,
  });
  return {
    ok: result.status === 0,
    missing: result.error?.code === 'ENOENT',
    stdout: result.stdout ?? '',
    stderr: (result.stderr ?? '') + (result.error ? String(result.error.message) : ''),
  };
}

export function azdEnvSet(name, value) {
  const result = run('azd', ['env', 'set', name, value]);
  if (!result.ok) throw new Error(`azd env set ${name} failed: ${result.stderr.trim()}`);
}

export function fail(message) {
  console.error(message);
  process.exit(1);
}
