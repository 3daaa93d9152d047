// azd prepackage (after azd's own `npm install` and `npm run build`): the package is built here and carries
// node_modules, so devDependencies go first. Removing the install stamp makes the next `npm start` or `npm test`
// (dev/setup.mjs) reinstall them.
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fail, run } from './run.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
// Pruning takes the compiler away: the build must be there already (azd builds before it packages).
if (!existsSync(new URL('../../dist/functions', import.meta.url))) {
  fail('[prepackage] dist/functions is missing: the build did not run; nothing was pruned or packaged.');
}
const pruned = run('npm', ['prune', '--omit=dev', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
if (!pruned.ok) fail('[prepackage] npm prune --omit=dev failed; nothing was packaged.');
rmSync(new URL('../../node_modules/.dataverse-export-install', import.meta.url), { force: true });
