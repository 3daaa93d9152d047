import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { createLogger, type Logger, silentLogger } from '../../lib/log.js';
import {
  type CleanupDeps,
  DEFAULT_CLAIM_CHECK_GRACE_MINUTES,
  deleteProfileLogs,
  runCleanup,
} from '../../lib/maintenance/cleanup.js';
import { UNATTRIBUTED_PROFILE_ID } from '../../lib/maintenance/dead-letters.js';
import { LocalSecretProvider } from '../../lib/secrets/local-provider.js';
import { ClaimCheckStore } from '../../lib/storage/claim-check.js';
import { type FailureEntry, FailureLog } from '../../lib/storage/failure-log.js';
import { PayloadCipher } from '../../lib/storage/payload-crypto.js';
import { createTestStorage, stopOwnAzurite, type TestStorage } from '../support/azurite.js';

after(stopOwnAzurite);

const cipher = new PayloadCipher({
  secrets: new LocalSecretProvider({ 'payload-key': randomBytes(32).toString('base64') }),
  keySecretName: 'payload-key',
});
const KEPT = '3b1c2d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d';
const DELETED = '9a8b7c6d-5e4f-4321-8765-0fedcba98765';
/** Half past the hour, so a retention cut falls inside an hour folder. */
const NOW = new Date('2026-11-20T12:30:00.000Z');
const RETENTION_DAYS = 30;
const CUTOFF = new Date(NOW.getTime() - RETENTION_DAYS * 24 * 60 * 60 * 1000); // 2026-10-21T12:30Z

interface Fixture {
  storage: TestStorage;
  failureLog: FailureLog;
  /** A claim-check store whose clock reads `at`. */
  claimChecksAt(at: Date): ClaimCheckStore;
  deps(overrides?: Partial<CleanupDeps>): CleanupDeps;
  claimCheckNames(): Promise<string[]>;
  failureLogNames(prefix?: string): Promise<string[]>;
}

async function fixture(storage: TestStorage): Promise<Fixture> {
  const claimChecksAt = (at: Date) =>
    new ClaimCheckStore({ blobs: storage.blobs, cipher, container: storage.container('claimchecks'), now: () => at });
  const failureLog = new FailureLog({ blobs: storage.blobs, container: storage.container('failurelog') });
  const names = async (container: string, prefix?: string) => {
    const out: string[] = [];
    for await (const blob of storage.blobs.list(container, { prefix })) out.push(blob.name);
    return out;
  };
  return {
    storage,
    failureLog,
    claimChecksAt,
    deps: (overrides = {}) => ({
      claimChecks: claimChecksAt(NOW),
      blobs: storage.blobs,
      failureLog,
      knownProfileIds: async () => new Set([KEPT]),
      now: () => NOW,
      failureRetentionDays: RETENTION_DAYS,
      logger: silentLogger,
      ...overrides,
    }),
    claimCheckNames: () => names(storage.container('claimchecks')),
    failureLogNames: (prefix) => names(failureLog.container, prefix),
  };
}

function entry(profileId: string, time: string, recordId = `rec-${time}`): FailureEntry {
  return {
    profileId,
    entity: 'account',
    recordId,
    changeType: 'upsert',
    time,
    reason: 'value too long for column name (nvarchar(100))',
    code: 'TARGET_PERMANENT',
  };
}

const minutesBefore = (minutes: number, from = NOW) => new Date(from.getTime() - minutes * 60_000);
const put = (store: ClaimCheckStore) =>
  store.putClaimCheck('{"entity":"account"}', { organizationId: 'org-1', entity: 'account' });

/** A logger that keeps its lines, for the tests that check what was reported. */
function recordingLogger(): { logger: Logger; lines: { level: string; message: string; [k: string]: unknown }[] } {
  const lines: { level: string; message: string }[] = [];
  return { lines, logger: createLogger({ level: 'debug', sink: (_level, line) => lines.push(JSON.parse(line)) }) };
}

describe('cleanup of claim checks', () => {
  it('deletes a claim check just past the grace period and keeps one just inside it', async () => {
    await using storage = await createTestStorage();
    const f = await fixture(storage);
    const grace = DEFAULT_CLAIM_CHECK_GRACE_MINUTES;
    const expired = await put(f.claimChecksAt(new Date(minutesBefore(grace).getTime() - 1000)));
    const inside = await put(f.claimChecksAt(new Date(minutesBefore(grace).getTime() + 1000)));
    const fresh = await put(f.claimChecksAt(minutesBefore(1)));

    const report = await runCleanup(f.deps());

    assert.equal(report.claimChecksDeleted, 1);
    assert.equal(report.failed, 0);
    assert.deepEqual((await f.claimCheckNames()).sort(), [inside.blobName, fresh.blobName].sort());
    assert.ok(!(await f.claimCheckNames()).includes(expired.blobName));
  });

  it('honours a shorter grace period when one is configured', async () => {
    await using storage = await createTestStorage();
    const f = await fixture(storage);
    await put(f.claimChecksAt(minutesBefore(61)));
    const kept = await put(f.claimChecksAt(minutesBefore(59)));

    const report = await runCleanup(f.deps({ claimCheckGraceMinutes: 60 }));

    assert.equal(report.claimChecksDeleted, 1);
    assert.deepEqual(await f.claimCheckNames(), [kept.blobName]);
  });

  it('lists in pages no larger than the page size and keeps deletes within the concurrency cap', async () => {
    await using storage = await createTestStorage();
    const f = await fixture(storage);
    const old = f.claimChecksAt(minutesBefore(DEFAULT_CLAIM_CHECK_GRACE_MINUTES + 60));
    for (let i = 0; i < 23; i++) await put(old);
    const real = f.claimChecksAt(NOW);
    const pageLengths: number[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const observed: CleanupDeps['claimChecks'] = {
      async *listClaimChecks(olderThan, pageSize) {
        for await (const page of real.listClaimChecks(olderThan, pageSize)) {
          pageLengths.push(page.length);
          yield page;
        }
      },
      async deleteClaimCheck(name) {
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        try {
          return await real.deleteClaimCheck(name);
        } finally {
          inFlight--;
        }
      },
    };

    const report = await runCleanup(f.deps({ claimChecks: observed, pageSize: 4, concurrency: 3 }));

    assert.equal(report.claimChecksDeleted, 23);
    assert.deepEqual(await f.claimCheckNames(), []);
    assert.equal(
      pageLengths.reduce((a, b) => a + b, 0),
      23,
    );
    assert.ok(Math.max(...pageLengths) <= 4, `pages of ${pageLengths.join(', ')}`);
    assert.ok(maxInFlight <= 3 && maxInFlight > 1, `at most 3 deletes at once, saw ${maxInFlight}`);
  });
});

describe('cleanup of failure logs', () => {
  it('deletes hour folders that ended before the retention cut and keeps the hour it falls in', async () => {
    await using storage = await createTestStorage();
    const f = await fixture(storage);
    const times = [
      '2026-10-20T08:00:00.000Z', // days past retention
      '2026-10-21T11:59:59.999Z', // its hour ends at 12:00, before the 12:30 cut
      '2026-10-21T12:10:00.000Z', // older than the cut, but its hour straddles it: kept whole
      '2026-10-21T12:45:00.000Z', // inside retention
      '2026-11-20T12:00:00.000Z', // today
    ];
    for (const time of times) await f.failureLog.writeFailures(KEPT, [entry(KEPT, time)]);

    const report = await runCleanup(f.deps());

    assert.equal(report.failureLogBlobsDeleted, 2);
    assert.equal(report.deletedProfileLogsDeleted, 0);
    const left = (await f.failureLog.listFailures(KEPT)).map((e) => e.time).sort();
    assert.deepEqual(left, times.slice(2));
    assert.ok(left.every((t) => new Date(t) >= new Date(CUTOFF.getTime() - 60 * 60 * 1000)));
  });

  it('deletes every failure-log blob of a profile the control store no longer knows, however recent', async () => {
    await using storage = await createTestStorage();
    const f = await fixture(storage);
    for (const time of ['2026-11-01T10:00:00.000Z', '2026-11-20T12:00:00.000Z', '2026-11-20T12:29:00.000Z']) {
      await f.failureLog.writeFailures(DELETED, [entry(DELETED, time)]);
    }
    await f.failureLog.writeFailures(KEPT, [entry(KEPT, '2026-11-20T12:00:00.000Z')]);

    const report = await runCleanup(f.deps());

    assert.equal(report.deletedProfileLogsDeleted, 3);
    assert.deepEqual(await f.failureLogNames(`${DELETED}/`), []);
    assert.equal((await f.failureLog.listFailures(KEPT)).length, 1);
  });

  it('keeps the unattributed dead-letter lines until their retention ends', async () => {
    await using storage = await createTestStorage();
    const f = await fixture(storage);
    const id = UNATTRIBUTED_PROFILE_ID;
    await f.failureLog.writeFailures(id, [entry(id, '2026-10-01T00:00:00.000Z')]);
    await f.failureLog.writeFailures(id, [entry(id, '2026-11-19T00:00:00.000Z')]);

    const report = await runCleanup(f.deps());

    assert.equal(report.failureLogBlobsDeleted, 1);
    assert.equal(report.deletedProfileLogsDeleted, 0);
    assert.deepEqual(
      (await f.failureLog.listFailures(id)).map((e) => e.time),
      ['2026-11-19T00:00:00.000Z'],
    );
  });

  it('still applies retention, and deletes no profile’s logs, when the profiles cannot be read', async () => {
    await using storage = await createTestStorage();
    const f = await fixture(storage);
    await f.failureLog.writeFailures(DELETED, [entry(DELETED, '2026-10-01T00:00:00.000Z')]);
    await f.failureLog.writeFailures(DELETED, [entry(DELETED, '2026-11-20T00:00:00.000Z')]);
    const { logger, lines } = recordingLogger();

    const report = await runCleanup(
      f.deps({
        logger,
        knownProfileIds: () => Promise.reject(new Error('connection refused')),
      }),
    );

    assert.equal(report.failureLogBlobsDeleted, 1);
    assert.equal(report.deletedProfileLogsDeleted, 0);
    assert.equal(report.failed, 1);
    assert.equal((await f.failureLog.listFailures(DELETED)).length, 1);
    assert.ok(lines.some((l) => l.level === 'error' && JSON.stringify(l).includes('connection refused')));
  });

  it('goes on past a blob it cannot delete, and counts and logs it', async () => {
    await using storage = await createTestStorage();
    const f = await fixture(storage);
    const written: string[] = [];
    for (let day = 1; day <= 5; day++) {
      const time = `2026-10-0${day}T10:00:00.000Z`;
      written.push(...(await f.failureLog.writeFailures(KEPT, [entry(KEPT, time)])));
    }
    // A leased blob refuses a delete without the lease id: a real per-blob failure.
    const leased = storage.service.getContainerClient(f.failureLog.container).getBlobClient(written[2]);
    const lease = leased.getBlobLeaseClient();
    await lease.acquireLease(-1);
    const { logger, lines } = recordingLogger();

    const report = await runCleanup(f.deps({ logger, pageSize: 2 }));
    await lease.releaseLease();

    assert.equal(report.failureLogBlobsDeleted, 4);
    assert.equal(report.failed, 1);
    assert.deepEqual(await f.failureLogNames(), [written[2]]);
    assert.ok(lines.some((l) => l.level === 'warn' && l.blob === written[2]));
  });

  it('pages through many blobs with a small page size', async () => {
    await using storage = await createTestStorage();
    const f = await fixture(storage);
    for (let hour = 0; hour < 14; hour++) {
      const time = `2026-10-01T${String(hour).padStart(2, '0')}:15:00.000Z`;
      await f.failureLog.writeFailures(KEPT, [entry(KEPT, time)]);
      await f.failureLog.writeFailures(DELETED, [entry(DELETED, time)]);
    }
    await f.failureLog.writeFailures(KEPT, [entry(KEPT, '2026-11-20T10:00:00.000Z')]);

    const report = await runCleanup(f.deps({ pageSize: 3, concurrency: 2 }));

    assert.equal(report.failureLogBlobsDeleted, 14);
    assert.equal(report.deletedProfileLogsDeleted, 14);
    assert.equal((await f.failureLogNames()).length, 1);
  });
});

describe('cleanup runs', () => {
  it('can run twice at once: every blob is deleted once, and neither run reports a failure', async () => {
    await using storage = await createTestStorage();
    const f = await fixture(storage);
    const old = f.claimChecksAt(minutesBefore(DEFAULT_CLAIM_CHECK_GRACE_MINUTES + 5));
    for (let i = 0; i < 30; i++) await put(old);
    for (let i = 0; i < 12; i++) {
      const time = `2026-10-0${1 + (i % 9)}T0${i % 10}:00:00.000Z`;
      await f.failureLog.writeFailures(KEPT, [entry(KEPT, time, `k-${i}`)]);
      await f.failureLog.writeFailures(DELETED, [entry(DELETED, time, `d-${i}`)]);
    }

    const [a, b] = await Promise.all([
      runCleanup(f.deps({ pageSize: 5, concurrency: 4 })),
      runCleanup(f.deps({ pageSize: 5, concurrency: 4 })),
    ]);

    assert.equal(a.failed + b.failed, 0);
    assert.equal(a.claimChecksDeleted + b.claimChecksDeleted, 30);
    assert.equal(a.failureLogBlobsDeleted + b.failureLogBlobsDeleted, 12);
    assert.equal(a.deletedProfileLogsDeleted + b.deletedProfileLogsDeleted, 12);
    assert.deepEqual(await f.claimCheckNames(), []);
    assert.deepEqual(await f.failureLogNames(), []);
  });

  it('purges tombstones older than the tombstone retention and reports how many', async () => {
    await using storage = await createTestStorage();
    const f = await fixture(storage);
    const asked: Date[] = [];

    const report = await runCleanup(
      f.deps({
        tombstoneRetentionDays: 45,
        purgeTombstones: async (olderThan) => {
          asked.push(olderThan);
          return 7;
        },
      }),
    );

    assert.equal(report.tombstonesPurged, 7);
    assert.deepEqual(asked, [new Date('2026-10-06T12:30:00.000Z')]);
    assert.ok(report.durationMs >= 0);
  });

  it('refuses a retention that is not a positive number, naming the option', async () => {
    await using storage = await createTestStorage();
    const f = await fixture(storage);
    await assert.rejects(runCleanup(f.deps({ failureRetentionDays: 0 })), /failureRetentionDays must be a positive/);
  });
});

describe('deleteProfileLogs', () => {
  it("removes all of one profile's failure logs, leaves the others, and can be repeated", async () => {
    await using storage = await createTestStorage();
    const f = await fixture(storage);
    for (const time of ['2026-11-01T10:00:00.000Z', '2026-11-20T12:00:00.000Z']) {
      await f.failureLog.writeFailures(DELETED, [entry(DELETED, time)]);
      await f.failureLog.writeFailures(KEPT, [entry(KEPT, time)]);
    }
    const log = { blobs: storage.blobs, failureLog: f.failureLog };

    assert.deepEqual(await deleteProfileLogs(log, DELETED, { logger: silentLogger }), { deleted: 2, failed: 0 });
    assert.deepEqual(await deleteProfileLogs(log, DELETED, { logger: silentLogger }), { deleted: 0, failed: 0 });
    assert.equal((await f.failureLog.listFailures(KEPT)).length, 2);
    await assert.rejects(deleteProfileLogs(log, '', { logger: silentLogger }), /not a valid profile id/);
  });
});
