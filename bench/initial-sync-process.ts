/**
 * One initial sync, measured in a process of its own so its peak RSS is the engine's alone: plan, then every
 * entity copied page by page in parallel lanes — the steps the `initialSync` orchestration runs as activities.
 */
import { readFileSync } from 'node:fs';
import { createDataverseClient } from '../lib/dataverse/webapi/client.js';
import { silentLogger } from '../lib/log.js';
import { openPostgresControlStore } from '../lib/profiles/postgres-control-store.js';
import { withDefaults } from '../lib/profiles/schema.js';
import { openSink } from '../lib/sink/index.js';
import { completeEntity, copyEntityPages, planInitialSync } from '../lib/sync/initial-sync.js';
import { OrganizationShares } from '../lib/sync/organization-share.js';
import type { SyncDeps } from '../lib/sync/ports.js';

const input = JSON.parse(process.argv[2]) as {
  pgUrl: string;
  sampleUrl: string;
  organizationId: string;
  entities: string[];
};

/** VmHWM: the highest resident set size this process reached. */
function peakRssMb(): number {
  const line = readFileSync('/proc/self/status', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmHWM:'));
  return line ? Number(line.replace(/\D+/g, '')) / 1024 : process.memoryUsage().rss / 1_048_576;
}

const store = await openPostgresControlStore(input.pgUrl);
await store.migrate();
const profile = await store.createProfile(
  withDefaults({
    name: 'bench initial sync',
    organizationId: input.organizationId,
    source: { url: input.sampleUrl },
    target: { kind: 'postgres', connectionSecret: 'bench', tablePrefix: 'sync' },
    entities: input.entities,
  }),
);
await store.setProfileState(profile.id, 'Active');
const sink = await openSink({
  kind: 'postgres',
  connectionString: input.pgUrl,
  schema: 'public',
  tablePrefix: 'sync',
  writeDeleteLog: true,
});
const client = createDataverseClient({ url: input.sampleUrl, logger: silentLogger });
// As deployed: the copies hold this instance's claim on the organization (alone here, so the whole cap).
const shares = new OrganizationShares(store, { logger: silentLogger });
const deps: SyncDeps = {
  store,
  dataverseFor: () => client,
  sinkFor: async () => sink,
  failureLog: {
    writeFailures: async () => undefined,
    listFailures: async () => [],
    deleteFailureEntries: async () => 0,
  },
  logger: silentLogger,
  partitions: { shares },
};

// The heap's high marks, sampled: what of the peak RSS is live JavaScript, V8's reserve, and buffers.
const highs = { heapUsedMb: 0, heapTotalMb: 0, externalMb: 0 };
const sampler = setInterval(() => {
  const m = process.memoryUsage();
  highs.heapUsedMb = Math.max(highs.heapUsedMb, m.heapUsed / 1_048_576);
  highs.heapTotalMb = Math.max(highs.heapTotalMb, m.heapTotal / 1_048_576);
  highs.externalMb = Math.max(highs.externalMb, m.external / 1_048_576);
}, 100);
const started = performance.now();
const entities = await planInitialSync(deps, profile.id);
let rows = 0;
await Promise.all(
  entities.map(async (entity) => {
    for (;;) {
      const result = await copyEntityPages(deps, profile.id, entity, 10);
      rows += result.rows;
      if (result.done) break;
    }
    await completeEntity(deps, profile.id, entity);
  }),
);
const seconds = (performance.now() - started) / 1000;
clearInterval(sampler);
await sink.close();
await shares.close();
await store.close();
const cpu = process.cpuUsage();
process.stdout.write(
  JSON.stringify({ rows, seconds, peakRssMb: peakRssMb(), ...highs, cpuSeconds: (cpu.user + cpu.system) / 1e6 }),
);
