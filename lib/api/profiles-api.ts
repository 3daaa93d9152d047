import { AppError } from '../errors.js';
import type { HttpResult } from '../http/boundary.js';
import { httpBoundary } from '../http/boundary.js';
import type { Logger } from '../log.js';
import type { ControlStore } from '../profiles/control-store.js';
import { assertWithinReach, type ProfileReach } from '../profiles/profile-reach.js';
import { type ExportProfile, type ProfileDefinition, withDefaults } from '../profiles/schema.js';
import { validateProfileInput } from '../profiles/validate.js';
import { redactSecrets } from '../redact.js';
import type { WebhookRegistrar } from '../registration/registrar.js';
import type { SecretProvider } from '../secrets/provider.js';
import { type FailureEntry, failuresToCsv, UNATTRIBUTED_PROFILE_ID } from '../storage/failure-log.js';
import { profileStatus } from './profile-status.js';
import {
  type ApiRequest,
  dateParam,
  flag,
  integerParam,
  jsonBody,
  lookup,
  profileIdOf,
  profileNotFound,
} from './request.js';

export interface ProfilesApiDeps {
  store: ControlStore;
  secrets: SecretProvider;
  /** Which source URLs and connection secrets a profile may name (settings DataverseHostAllowList, …). */
  reach: ProfileReach;
  /**
   * Connects to the target and checks what the sink relies on in the schema; throws TARGET_UNREACHABLE with the
   * driver's reason, or TARGET_MISCONFIGURED naming each gap and its fix; answers warnings that do not block.
   */
  probeTarget(
    kind: ExportProfile['target']['kind'],
    connectionString: string,
    schema: string,
  ): Promise<{ warnings?: string[] } | undefined>;
  /** Starts the initial-sync orchestration for the profile's Queued entities; returns its instance id. */
  startInitialSync(profile: ExportProfile, opts: { full: boolean }): Promise<string | undefined>;
  /** Stops a running initial sync (terminates the orchestration); must tolerate none running. */
  stopSync?(profile: ExportProfile): Promise<void>;
  /** Drops the profile's target tables (`DELETE …?dropTables=true`). */
  dropTables?(profile: ExportProfile): Promise<void>;
  failures?: {
    list(profileId: string, range: { from?: Date; to?: Date; limit?: number }): Promise<FailureEntry[]>;
    /**
     * Starts the resync as durable work (it re-reads the failed records from Dataverse and applies them;
     * entries that now succeed leave the failure log) and answers where its status and progress are read.
     */
    resync?(profile: ExportProfile): Promise<ResyncStarted>;
    /** Removes every failure entry of the profile; called when the profile is deleted. */
    purge?(profileId: string): Promise<unknown>;
  };
  /** The Dataverse side (lib/registration): entity checks and the webhook steps; absent, nothing is registered. */
  registration?: Pick<WebhookRegistrar, 'activate' | 'afterDeactivate' | 'beforeDelete' | 'repair' | 'inspect'>;
  logger: Logger;
  now?: () => Date;
}

export type ApiHandler = (request: ApiRequest) => Promise<HttpResult>;

export interface ProfilesApi {
  list: ApiHandler;
  create: ApiHandler;
  get: ApiHandler;
  replace: ApiHandler;
  delete: ApiHandler;
  activate: ApiHandler;
  deactivate: ApiHandler;
  status: ApiHandler;
  failures: ApiHandler;
  resyncFailures: ApiHandler;
  registration: ApiHandler;
  repairRegistration: ApiHandler;
  unattributedFailures: ApiHandler;
}

/** Durable's management links of a started resync (`createHttpManagementPayload`). */
export interface ResyncStarted {
  id: string;
  statusQueryGetUri: string;
  [link: string]: string;
}

/** What activation (and adding entities to an active profile) started, returned beside the profile. */
export interface InitialSyncStarted {
  instanceId: string | null;
  full: boolean;
  entities: string[];
}

interface FailureQuery {
  from?: Date;
  to?: Date;
  limit: number;
}

const DEFAULT_FAILURE_LIMIT = 1000;
const MAX_FAILURE_LIMIT = 100_000;

/**
 * The profile API (docs/architecture.md) as plain handlers: each takes a small request, returns an HttpResult and
 * never throws (errors leave through {@link httpBoundary} as coded JSON). Wiring to routes is the host's job.
 */
export function createProfilesApi(deps: ProfilesApiDeps): ProfilesApi {
  const { store } = deps;
  const now = deps.now ?? (() => new Date());
  const log = deps.logger.child({ component: 'profiles-api' });
  const handle =
    (run: (request: ApiRequest) => Promise<HttpResult>): ApiHandler =>
    (request) =>
      httpBoundary(log, () => run(request));

  /** The body as a profile definition: the schema first, then what it may point at. */
  function validDefinition(request: ApiRequest): ProfileDefinition {
    const definition = withDefaults(validateProfileInput(jsonBody(request)));
    assertWithinReach(definition, deps.reach);
    return definition;
  }

  async function existing(id: string): Promise<ExportProfile> {
    const profile = await store.getProfile(id);
    if (!profile) throw profileNotFound(id);
    return profile;
  }

  /**
   * Marks the entities Queued and starts the copy. Completed entities are skipped unless `full`, so a
   * re-activation resumes rather than repeats; a full copy also forgets the saved page checkpoints.
   */
  async function queueInitialSync(
    profile: ExportProfile,
    candidates: string[],
    full: boolean,
  ): Promise<InitialSyncStarted | undefined> {
    const statuses = new Map((await store.entityStatuses(profile.id)).map((s) => [s.entity, s]));
    const entities = candidates.filter((e) => full || statuses.get(e)?.syncState !== 'Completed');
    if (entities.length === 0) return undefined;
    for (const entity of entities) {
      if (full) {
        await store.clearCheckpoints(profile.id, entity);
        await store.updateSyncState(profile.id, entity, {
          syncState: 'Queued',
          rowsCopied: 0,
          syncStartedAt: null,
          syncCompletedAt: null,
          lastError: null,
        });
      } else {
        await store.updateSyncState(profile.id, entity, { syncState: 'Queued', lastError: null });
      }
    }
    const instanceId = await deps.startInitialSync(profile, { full });
    log.info('initial sync started', { profileId: profile.id, instanceId, entities, full });
    return { instanceId: instanceId ?? null, full, entities };
  }

  return {
    list: handle(async () => json(200, await store.listProfiles())),

    create: handle(async (request) => {
      const definition = validDefinition(request);
      const profile = await store.createProfile(definition);
      log.info('profile created', { profileId: profile.id, name: profile.name });
      return json(201, profile, { location: `/api/profiles/${profile.id}` });
    }),

    get: handle(async (request) => json(200, await existing(profileIdOf(request)))),

    replace: handle(async (request) => {
      const id = profileIdOf(request);
      const definition = validDefinition(request);
      const before = await existing(id);
      if (before.state === 'Active') {
        assertSafeWhileActive(before, definition);
        await deps.registration?.activate({ ...before, ...definition });
      }
      const profile = await store.replaceProfile(id, definition);
      if (!profile) throw profileNotFound(id);
      log.info('profile replaced', { profileId: id, state: profile.state });
      const added = profile.entities.filter((e) => !before.entities.includes(e));
      const initialSync =
        profile.state === 'Active' && profile.options.initialSync && added.length
          ? await queueInitialSync(profile, added, false)
          : undefined;
      return json(200, initialSync ? { ...profile, initialSync } : profile);
    }),

    delete: handle(async (request) => {
      const id = profileIdOf(request);
      const dropTables = flag(request, 'dropTables');
      if (dropTables && !deps.dropTables) {
        throw new AppError('VALIDATION_FAILED', 'This host cannot drop target tables; delete without dropTables.', {
          details: [{ field: 'dropTables', message: 'not supported here', value: 'true' }],
        });
      }
      let profile = await existing(id);
      if (profile.state === 'Active') profile = await deactivate(profile);
      await followRegistration('delete', () => deps.registration?.beforeDelete(profile));
      if (dropTables) await deps.dropTables!(profile);
      await deps.failures?.purge?.(id);
      if (!(await store.deleteProfile(id))) throw profileNotFound(id);
      log.info('profile deleted', { profileId: id, dropTables });
      return { status: 204 };
    }),

    activate: handle(async (request) => {
      const id = profileIdOf(request);
      const full = flag(request, 'full');
      const profile = await existing(id);
      if (profile.state === 'Active') return json(200, profile);
      // A profile stored before a rule tightened is checked again before the app reaches out for it.
      assertWithinReach(profile, deps.reach);

      const connectionString = await resolveConnection(profile);
      let warnings: string[] = [];
      try {
        warnings =
          (await deps.probeTarget(profile.target.kind, connectionString, profile.target.schema))?.warnings ?? [];
      } catch (err) {
        if (err instanceof AppError && err.code === 'TARGET_MISCONFIGURED') {
          throw new AppError('TARGET_MISCONFIGURED', `Profile '${profile.name}' stays inactive: ${err.message}`, {
            cause: err,
            details: err.details,
          });
        }
        const reason = redactSecrets(err instanceof Error ? err.message : String(err), [connectionString]);
        throw new AppError('TARGET_UNREACHABLE', `Profile '${profile.name}' stays inactive: ${reason}`, {
          cause: err,
          details: [{ field: '/target/connectionSecret', message: reason, value: profile.target.connectionSecret }],
        });
      }

      // The Dataverse side: entities checked, webhook steps registered; a refusal keeps the profile Inactive.
      await deps.registration?.activate(profile);

      const active = await store.setProfileState(id, 'Active');
      if (!active) throw profileNotFound(id);
      try {
        // The target just passed its check: what it was waiting for before no longer holds.
        await store.recordTargetState(id, null);
        const initialSync =
          active.options.initialSync || full ? await queueInitialSync(active, active.entities, full) : undefined;
        log.info('profile activated', { profileId: id, initialSync: Boolean(initialSync), warnings });
        return json(200, {
          ...active,
          ...(initialSync ? { initialSync } : {}),
          ...(warnings.length ? { warnings } : {}),
        });
      } catch (err) {
        // Activation is all or nothing: a profile whose copy could not start must not look active.
        const inactive = await store.setProfileState(id, 'Inactive');
        if (inactive) await followRegistration('failed activation', () => deps.registration?.afterDeactivate(inactive));
        throw err;
      }
    }),

    deactivate: handle(async (request) => {
      const profile = await existing(profileIdOf(request));
      if (profile.state === 'Inactive') return json(200, profile);
      return json(200, await deactivate(profile));
    }),

    status: handle(async (request) => {
      const profile = await existing(profileIdOf(request));
      const [statuses, target, partitions] = await Promise.all([
        store.entityStatuses(profile.id),
        store.targetState(profile.id),
        store.copyPartitions(profile.id),
      ]);
      const status = profileStatus(profile, statuses, now(), target, partitions);
      return json(200, deps.registration ? { ...status, registration: await registrationOrError(profile) } : status);
    }),

    registration: handle(async (request) => {
      const profile = await existing(profileIdOf(request));
      if (!deps.registration)
        throw new AppError('CONFIG_INVALID', 'Webhook registration is not configured on this host.');
      return json(200, await deps.registration.inspect(profile));
    }),

    repairRegistration: handle(async (request) => {
      const profile = await existing(profileIdOf(request));
      if (!deps.registration)
        throw new AppError('CONFIG_INVALID', 'Webhook registration is not configured on this host.');
      const repaired = await deps.registration.repair(profile);
      log.info('webhook registration repaired', { profileId: profile.id, ...repaired });
      return json(200, { repaired, ...(await deps.registration.inspect(profile)) });
    }),

    failures: handle(async (request) => {
      const id = profileIdOf(request);
      const range = failureRange(request);
      await existing(id);
      return failureList(id, range, request);
    }),

    unattributedFailures: handle((request) => failureList(UNATTRIBUTED_PROFILE_ID, failureRange(request), request)),

    resyncFailures: handle(async (request) => {
      const profile = await existing(profileIdOf(request));
      if (profile.state !== 'Active') {
        throw new AppError(
          'CONFLICT',
          `Profile '${profile.id}' is Inactive; activate it before resyncing its failed records.`,
        );
      }
      if (!deps.failures?.resync) throw new AppError('CONFIG_INVALID', 'Resync is not configured on this host.');
      const started = await deps.failures.resync(profile);
      log.info('resync started', { profileId: profile.id, instanceId: started.id });
      return json(202, started, { location: started.statusQueryGetUri });
    }),
  };

  /** The failure log of one profile (or of the unattributed folder), filtered, as JSON or CSV. */
  async function failureList(id: string, range: FailureQuery, request: ApiRequest): Promise<HttpResult> {
    if (!deps.failures) throw new AppError('CONFIG_INVALID', 'The failure log is not configured on this host.');
    const entries = (await deps.failures.list(id, range)).sort(newestFirst).slice(0, range.limit);
    if (wantsCsv(lookup(request.headers, 'accept'))) {
      return {
        status: 200,
        headers: {
          'content-type': 'text/csv; charset=utf-8',
          'content-disposition': `attachment; filename="failures-${id}.csv"`,
        },
        body: failuresToCsv(entries),
      };
    }
    return json(200, entries);
  }

  function failureRange(request: ApiRequest): FailureQuery {
    const from = dateParam(request, 'from');
    const to = dateParam(request, 'to');
    const limit = integerParam(request, 'limit', MAX_FAILURE_LIMIT) ?? DEFAULT_FAILURE_LIMIT;
    if (from && to && from > to) {
      throw new AppError(
        'VALIDATION_FAILED',
        `Query parameter 'from' (${from.toISOString()}) is after 'to' (${to.toISOString()}); swap them.`,
        { details: [{ field: 'from', message: "must not be after 'to'", value: lookup(request.query, 'from') }] },
      );
    }
    return { from, to, limit };
  }

  async function deactivate(profile: ExportProfile): Promise<ExportProfile> {
    // Stop first: if stopping fails the profile stays Active, so retrying deactivate retries the stop.
    await deps.stopSync?.(profile);
    const inactive = await store.setProfileState(profile.id, 'Inactive');
    if (!inactive) throw profileNotFound(profile.id);
    await followRegistration('deactivate', () => deps.registration?.afterDeactivate(inactive));
    log.info('profile deactivated', { profileId: profile.id });
    return inactive;
  }

  /**
   * After deactivation or before deletion the stream is already off (ingest routes only to active profiles), so
   * a Dataverse that cannot be reached must not block it: the steps left over are fixed by the next run.
   */
  async function followRegistration(after: string, run: () => Promise<unknown> | undefined): Promise<void> {
    try {
      await run();
    } catch (err) {
      log.warn('webhook registration not updated; the next activation or repair does it', { after, error: err });
    }
  }

  async function registrationOrError(profile: ExportProfile): Promise<unknown> {
    try {
      return await deps.registration!.inspect(profile);
    } catch (err) {
      return { error: err instanceof Error ? err.message : String(err) };
    }
  }

  async function resolveConnection(profile: ExportProfile): Promise<string> {
    const secret = profile.target.connectionSecret;
    try {
      return await deps.secrets.getSecret(secret);
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'SECRET_NOT_FOUND') throw err;
      throw new AppError(
        'SECRET_NOT_FOUND',
        `Profile '${profile.name}' stays inactive: its target.connectionSecret '${secret}' does not exist. ` +
          `Create a secret named '${secret}' holding the ${profile.target.kind} connection string, then activate again. (${err.message})`,
        {
          cause: err,
          details: [{ field: '/target/connectionSecret', message: `no secret named '${secret}'`, value: secret }],
        },
      );
    }
  }
}

/**
 * An active profile is being fed by the live stream into its target tables; moving it to another
 * organization or target, or dropping entities, would strand that state. Adding entities is fine.
 */
function assertSafeWhileActive(before: ExportProfile, after: ProfileDefinition): void {
  const problems: { field: string; message: string; value: unknown }[] = [];
  if (after.organizationId !== before.organizationId) {
    problems.push({ field: '/organizationId', message: 'cannot change while active', value: after.organizationId });
  }
  for (const key of ['kind', 'connectionSecret', 'schema', 'tablePrefix'] as const) {
    if (after.target[key] !== before.target[key]) {
      problems.push({ field: `/target/${key}`, message: 'cannot change while active', value: after.target[key] });
    }
  }
  for (const key of ['entities', 'relationships'] as const) {
    const removed = before[key].filter((name) => !after[key].includes(name));
    if (removed.length) {
      problems.push({ field: `/${key}`, message: `cannot remove ${removed.join(', ')} while active`, value: removed });
    }
  }
  if (problems.length === 0) return;
  throw new AppError(
    'CONFLICT',
    `Profile '${before.name}' is active: ${problems.map((p) => `${p.field} ${p.message}`).join('; ')}. ` +
      `Deactivate first (POST /api/profiles/${before.id}/deactivate), then replace it and activate again.`,
    { details: problems },
  );
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): HttpResult {
  return { status, jsonBody: body, headers: { 'content-type': 'application/json', ...headers } };
}

/** CSV when the client names text/csv before (or without) application/json. */
function wantsCsv(accept: string | undefined): boolean {
  if (!accept) return false;
  const types = accept.split(',').map((part) => part.split(';')[0].trim().toLowerCase());
  const csv = types.indexOf('text/csv');
  const json = types.indexOf('application/json');
  return csv >= 0 && (json < 0 || csv < json);
}

function newestFirst(a: FailureEntry, b: FailureEntry): number {
  return Date.parse(b.time) - Date.parse(a.time);
}
