import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sampleOrgArgs, sampleOrgProcessOptions } from '../../dev/sample-org/cli.js';
import { DATAVERSE_LIMITS } from '../../dev/sample-org/limits.js';

describe('sample org limits and latency from outside', () => {
  it('reads npm start’s flags: Dataverse’s limits, overrides, and latency per page or per part', () => {
    assert.deepEqual(sampleOrgArgs(['--fresh']), {});
    assert.deepEqual(sampleOrgArgs(['--dataverse-limits', '--limit-concurrent=8']), {
      limits: { ...DATAVERSE_LIMITS, concurrent: 8 },
    });
    assert.deepEqual(sampleOrgArgs(['--limit-requests=100', '--limit-window-seconds=10']), {
      limits: { requests: 100, windowSeconds: 10 },
    });
    assert.deepEqual(sampleOrgArgs(['--page-latency-ms=1000']), {
      latency: { fixedMs: 0, perThousandRowsMs: 200 },
    });
    assert.deepEqual(sampleOrgArgs(['--latency-fixed-ms=50', '--latency-per-1000-ms=150']), {
      latency: { fixedMs: 50, perThousandRowsMs: 150 },
    });
  });

  it('refuses a flag value that is not a number, and latency given two ways', () => {
    assert.throws(() => sampleOrgArgs(['--latency-fixed-ms=fast']), /--latency-fixed-ms=fast: expected a number ≥ 0/);
    assert.throws(() => sampleOrgArgs(['--limit-concurrent=']), /--limit-concurrent=: expected a number/);
    assert.throws(() => sampleOrgArgs(['--page-latency-ms=1000', '--latency-fixed-ms=5']), /cannot be combined/);
  });

  it('reads the bench process’s JSON: counts, limits and latency', () => {
    assert.deepEqual(
      sampleOrgProcessOptions('{"account":3,"contact":4,"limits":{"concurrent":52},"latency":{"fixedMs":5}}'),
      { counts: { account: 3, contact: 4 }, limits: { concurrent: 52 }, latency: { fixedMs: 5 } },
    );
    assert.deepEqual(sampleOrgProcessOptions(undefined), { counts: {} });
    assert.throws(() => sampleOrgProcessOptions('{"limit":{}}'), /unknown key 'limit'/);
  });
});
