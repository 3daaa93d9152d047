/**
 * `npm test`: starts one embedded PostgreSQL for the whole run, then runs every compiled test file under
 * dist/test/{unit,integration,e2e,browser} with Node's test runner. Pass folder names to run a subset:
 * `node dist/test/run.js unit`.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmbeddedPostgres } from '../dev/embedded/postgres.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..', '..');

function testFiles(dir: string): string[] {
  let out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const full = join(dir, entry);
    if (statSync(full).isDirectory()) out = out.concat(testFiles(full));
    else if (entry.endsWith('.test.js')) out.push(full);
  }
  return out.sort();
}

const suites = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const folders = suites.length ? suites : ['unit', 'integration', 'e2e', 'browser'];
const files = folders.flatMap((f) => (existsSync(join(here, f)) ? testFiles(join(here, f)) : []));

const started = Date.now();
const pg = await startEmbeddedPostgres({ dataDir: join(root, '.local', 'test', 'pg-shared'), fresh: true });
console.log(`[test] embedded PostgreSQL on port ${pg.port} (${Date.now() - started} ms); ${files.length} test files`);

// No --test-force-exit: with it the runner could exit while the last files were still reporting, so their
// remaining tests were neither run nor counted as failed.
const child = spawn(process.execPath, ['--test', '--test-concurrency=2', ...files], {
  stdio: 'inherit',
  env: { ...process.env, TEST_PG_URL: pg.url },
  cwd: root,
});
const code: number = await new Promise((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
await pg.stop();
console.log(`[test] finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(code);
