// Brings a fresh clone (or a stale one) to a runnable state, then optionally runs a script:
//   node dev/setup.mjs [--no-build] [--run <script.js> [args…]]   set up, then run the script with Node 22
//   node dev/setup.mjs --print-node-dir                            only the folder of the Node it uses
// The project runs on the Node major that package.json's `engines` names. When the machine's Node is older,
// that Node is fetched once from the npm registry (the `node` package) into .toolchain/ and used for
// everything that follows, so neither npm's engine checks nor the code ever run on the older one.
// The admin console is type-checked, then bundled by Vite into dist/console (served under /api/admin/).
// Plain JavaScript with no dependencies, because it runs before anything is installed.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const wantedMajor = Number(/\d+/.exec(pkg.engines.node)?.[0]);
const argv = process.argv.slice(2);
const runAt = argv.indexOf('--run');
/** Setup's own flags; everything after `--run` belongs to the script. */
const args = runAt >= 0 ? argv.slice(0, runAt) : argv;
const log = (line) => process.stderr.write(`[setup] ${line}\n`);

/** The folder holding a `node` of the wanted major: this process's own, or the fetched toolchain's. */
function nodeDir() {
  if (Number(process.versions.node.split('.')[0]) >= wantedMajor) return dirname(process.execPath);
  const toolchain = join(root, '.toolchain');
  const bin = join(toolchain, 'node_modules', 'node', 'bin');
  const exe = join(bin, process.platform === 'win32' ? 'node.exe' : 'node');
  if (!existsSync(exe)) {
    log(`Node ${process.versions.node} is older than the ${wantedMajor} this project runs on;`);
    log(`fetching Node ${wantedMajor} from the npm registry into .toolchain/ (once)…`);
    mkdirSync(toolchain, { recursive: true });
    writeFileSync(
      join(toolchain, 'package.json'),
      `${JSON.stringify({ private: true, dependencies: { node: `^${wantedMajor}` }, allowScripts: { node: true } }, null, 2)}\n`,
    );
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    execFileSync(npm, ['install', '--no-audit', '--no-fund', '--loglevel=error'], {
      cwd: toolchain,
      stdio: ['ignore', 2, 2],
      shell: process.platform === 'win32',
    });
  }
  return bin;
}

const dir = nodeDir();
if (args.includes('--print-node-dir')) {
  process.stdout.write(`${dir}\n`);
  process.exit(0);
}

// Every child (npm, tsc, the script) finds the chosen Node first on PATH.
const env = { ...process.env, PATH: `${dir}${delimiter}${process.env.PATH ?? ''}` };
const sh = (cmd) => execFileSync(cmd, { cwd: root, stdio: 'inherit', env, shell: true });

const lock = join(root, 'package-lock.json');
const stamp = join(root, 'node_modules', '.dataverse-export-install');
const lockHash = createHash('sha256')
  .update(readFileSync(lock))
  .update(readFileSync(join(root, 'package.json')))
  .digest('hex');
if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== lockHash) {
  log('installing dependencies from package-lock.json (npm ci)…');
  sh('npm ci --no-audit --no-fund');
  writeFileSync(stamp, lockHash);
}
if (!args.includes('--no-build')) {
  sh('npx tsc -p tsconfig.json');
  // The admin console: type-checked, then bundled by Vite into dist/console (served under /api/admin/).
  sh('npx tsc -p console/tsconfig.json');
  sh('npx vite build --config console/vite.config.ts --logLevel warn');
}

if (runAt >= 0) {
  const exe = join(dir, process.platform === 'win32' ? 'node.exe' : 'node');
  // Azurite, which the local stack runs in-process, still loads Node's deprecated punycode module (through
  // node-fetch 2); the app itself never does, so that one warning is not shown on every start.
  const child = spawn(exe, ['--disable-warning=DEP0040', ...argv.slice(runAt + 1)], {
    cwd: root,
    stdio: 'inherit',
    env,
  });
  // Ctrl-C reaches the whole process group; the script decides how to stop, this process waits for it.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
