/** The sample organization in its own process (it plays Dataverse, a remote service): prints its URL, runs until killed. */
import { startSampleOrg } from '../dev/sample-org/index.js';

const counts = JSON.parse(process.argv[2] ?? '{}') as { account?: number; contact?: number };
const org = await startSampleOrg({ counts });
process.stdout.write(`${JSON.stringify({ url: org.url, organizationId: org.organizationId, counts: org.counts })}\n`);
process.on('SIGTERM', () => void org.stop().then(() => process.exit(0)));
