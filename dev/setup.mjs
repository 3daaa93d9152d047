// Brings a fresh clone (or a stale one) to a runnable state: installs from the lockfile when
// node_modules is missing or older than package-lock.json, then compiles the TypeScript and builds the console.
// Plain JavaScript with no dependencies, because it runs before anything is installed.
import { execSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd) => execSync(cmd, { cwd: root, stdio: 'inherit' });
const lock = join(root, 'package-lock.json');
const stamp = join(root, 'node_modules', '.dataverse-export-install');
const lockHash = createHash('sha256')
  .update(readFileSync(lock))
  .update(readFileSync(join(root, 'package.json')))
  .digest('hex');

if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== lockHash) {
  console.log('[setup] installing dependencies from package-lock.json (npm ci)…');
  run('npm ci --no-audit --no-fund');
  writeFileSync(stamp, lockHash);
}
if (!process.argv.includes('--no-build')) {
  run('npx tsc -p tsconfig.json');
  // The admin console: type-checked, then bundled by Vite into dist/console (served under /api/admin/).
  run('npx tsc -p console/tsconfig.json');
  run('npx vite build --config console/vite.config.ts --logLevel warn');
}
