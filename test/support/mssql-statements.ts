/** The T-SQL the Azure SQL paths can send, built with fixed inputs: for golden files and the grammar check. */
import { mssqlMigrations } from '../../lib/profiles/migrations/mssql.js';
import { type MssqlStatement, mssqlControlSql } from '../../lib/profiles/sql/mssql.js';

const PROFILE = '0f8fad5b-d9cb-469f-a165-70867728950e';
const NOW = new Date('2026-11-25T10:00:00.123Z');
const definition = {
  name: 'Sales to SQL',
  organizationId: '6f2d8a1c-3b4e-4f5a-9c7d-1e2f3a4b5c6d',
  source: { url: 'https://contoso.crm.dynamics.com' },
  target: { kind: 'mssql' as const, connectionSecret: 'sales-db', schema: 'dbo', tablePrefix: '' },
  entities: ['account', 'contact'],
  relationships: ['accountleads'],
  options: {
    writeDeleteLog: true,
    retryCount: 12,
    retryIntervalSeconds: 5,
    initialSync: true,
    registerWebhook: true,
    enableChangeTracking: false,
  },
};

/** Every statement the control store can send, built with fixed inputs (the golden files' names). */
export function controlStatements(): Record<string, MssqlStatement> {
  const sql = mssqlControlSql('dvexport');
  const migrations = Object.fromEntries(
    mssqlMigrations('dvexport').map((m) => [
      `migration-${String(m.version).padStart(4, '0')}`,
      { text: m.sql, params: [] } satisfies MssqlStatement,
    ]),
  );
  return {
    ...migrations,
    'migration-lock': sql.migrationLock(),
    'create-schema': sql.createSchema(),
    'create-history': sql.createHistory(),
    'applied-versions': sql.appliedVersions(),
    'record-migration': sql.recordMigration(1, 'profiles, entity status, checkpoints'),
    'insert-profile': sql.insertProfile(PROFILE, definition, 'Inactive', NOW),
    'select-profiles': sql.selectProfiles(),
    'select-profile': sql.selectProfile(PROFILE),
    'replace-profile': sql.replaceProfile(PROFILE, definition, ['account', 'contact', 'accountleads'], NOW),
    'delete-profile': sql.deleteProfile(PROFILE),
    'update-profile-state': sql.updateProfileState(PROFILE, 'Active', NOW),
    'select-active-profiles': sql.selectActiveProfiles('6F2D8A1C-3B4E-4F5A-9C7D-1E2F3A4B5C6D'),
    'select-entity-statuses': sql.selectEntityStatuses(PROFILE),
    'upsert-sync-state': sql.upsertSyncState(
      PROFILE,
      'account',
      { syncState: 'InProgress', rowsCopiedDelta: 5000, syncStartedAt: NOW, lastError: null },
      NOW,
    ),
    'upsert-metrics': sql.upsertMetrics(
      PROFILE,
      'account',
      { received: 10, applied: 7, stale: 2, failed: 1, lastAppliedAt: NOW, lagMs: 850 },
      NOW,
    ),
    'select-checkpoint': sql.selectCheckpoint(PROFILE, 'account'),
    'upsert-checkpoint': sql.upsertCheckpoint(
      {
        profileId: PROFILE,
        entity: 'account',
        nextLink: 'https://contoso.crm.dynamics.com/api/data/v9.2/accounts?$skiptoken=x',
        deltaLink: null,
        pagesDone: 3,
      },
      NOW,
    ),
    'save-copy-progress': sql.saveCopyProgress(
      {
        profileId: PROFILE,
        entity: 'account',
        nextLink: 'https://contoso.crm.dynamics.com/api/data/v9.2/accounts?$skiptoken=x',
        deltaLink: null,
        pagesDone: 3,
      },
      5000,
      NOW,
    ),
    'delete-checkpoints': sql.deleteCheckpoints(PROFILE, null),
    'start-partitioned-copy': sql.startPartitionedCopy(
      {
        profileId: PROFILE,
        entity: 'account',
        nextLink: 'https://contoso.crm.dynamics.com/api/data/v9.2/accounts?$select=accountid&$skiptoken=x',
        deltaLink: null,
        pagesDone: 1,
      },
      [
        { partition: 0, after: null, upTo: '7f000000-0000-0000-0000-000000000000' },
        { partition: 1, after: '7f000000-0000-0000-0000-000000000000', upTo: null },
      ],
      NOW,
    ),
    'select-partitions': sql.selectPartitions(PROFILE, 'account'),
    'save-partition-progress': sql.savePartitionProgress(
      {
        profileId: PROFILE,
        entity: 'account',
        partition: 1,
        lastId: '3c2b1a00-0000-0000-0000-0000000a0001',
        pagesDone: 4,
        done: false,
      },
      5000,
      NOW,
    ),
    'split-partition': sql.splitPartition(
      {
        profileId: PROFILE,
        entity: 'account',
        partition: 1,
        upTo: null,
        at: 'c0000000-0000-0000-0000-800000000000',
        added: 2,
      },
      NOW,
    ),
    'claim-organization-share': sql.claimOrganizationShare(
      'https://contoso.crm.dynamics.com',
      '5b0c3e8e-2f4a-4d6b-9a1e-7c3d2b1a0f9e',
      new Date(NOW.getTime() + 15_000),
      NOW,
    ),
    'release-organization-share': sql.releaseOrganizationShare(
      'https://contoso.crm.dynamics.com',
      '5b0c3e8e-2f4a-4d6b-9a1e-7c3d2b1a0f9e',
    ),
    'select-delta-checkpoints': sql.selectDeltaCheckpoints(),
    'upsert-target-state': sql.upsertTargetState(
      PROFILE,
      {
        state: 'misconfigured',
        reason: "The CREATE TABLE permission was denied in database 'sales'.",
        action: 'GRANT CREATE TABLE TO [dvexport];',
      },
      NOW,
    ),
    'delete-target-state': sql.deleteTargetState(PROFILE),
    'select-target-state': sql.selectTargetState(PROFILE),
    'insert-audit': sql.insertAudit(
      '7c9e6679-7425-40de-944b-e07fc1f90ae7',
      {
        actor: 'ada@contoso.com',
        actorKind: 'principal',
        action: 'activate',
        profileId: PROFILE,
        profileName: definition.name,
        before: null,
        after: null,
        details: { full: false },
      },
      NOW,
    ),
    'select-audit': sql.selectAudit({ profileId: PROFILE, from: NOW, limit: 50, offset: 100 }),
  };
}
