/**
 * The sample organization in its own process (it plays Dataverse, a remote service): prints its URL, runs until
 * killed. Its argument is JSON: `{"account":N,"contact":N,"limits":{…},"latency":{"fixedMs":…,"perThousandRowsMs":…}}`.
 */
import { sampleOrgProcessOptions } from '../dev/sample-org/cli.js';
import { startSampleOrg } from '../dev/sample-org/index.js';

const org = await startSampleOrg(sampleOrgProcessOptions(process.argv[2]));
process.stdout.write(`${JSON.stringify({ url: org.url, organizationId: org.organizationId, counts: org.counts })}\n`);
process.on('SIGTERM', () => void org.stop().then(() => process.exit(0)));
