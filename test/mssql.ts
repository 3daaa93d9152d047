/**
 * `npm run test:mssql`: the engine suites (test/integration/engines) against the SQL Server named by
 * MSSQL_TEST_URL, beside the embedded PostgreSQL; without it, says so and runs nothing.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

if (!process.env.MSSQL_TEST_URL) {
  console.log(
    '[test:mssql] skipped: MSSQL_TEST_URL not set (an ADO connection string to a database the tests may create schemas in)',
  );
  process.exit(0);
}
const runner = join(fileURLToPath(new URL('.', import.meta.url)), 'run.js');
const child = spawn(process.execPath, [runner, 'integration/engines'], { stdio: 'inherit' });
child.on('exit', (code) => process.exit(code ?? 1));
