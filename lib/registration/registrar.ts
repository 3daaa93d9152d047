/**
 * Keeps an organization's webhook registration equal to what its profiles need: the steps of the union of its
 * active profiles exist, are enabled and carry their images; a step only inactive profiles use is disabled;
 * a step no profile uses is removed, and the endpoint with the last one. Every run reads the organization
 * first and changes only what differs, so running it again — or on two instances at once — creates nothing
 * twice (duplicates a race left behind are removed, keeping the oldest).
 */
import type { DataverseClient } from '../dataverse/webapi/client.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ExportProfile } from '../profiles/schema.js';
import { checkProfileEntities, type EntityCheckResult } from './entity-checks.js';
import { type ImageRow, PluginRegistry, type ServiceEndpointRow, type StepRow } from './plugin-registry.js';
import {
  ENDPOINT_NAME,
  type ImageSpec,
  imageFor,
  registersWebhook,
  STEP_MODE,
  STEP_STAGE,
  type StepKey,
  type StepMessage,
  stepName,
  stepsOf,
  unionOfSteps,
} from './steps.js';

/** Where Dataverse posts: the app's public webhook URL and the function key it sends as WebhookKey. */
export interface WebhookTarget {
  url: string;
  key: string;
}

export interface RegistrarOptions {
  /** Every stored profile; the registrar keeps those of one organization. */
  listProfiles(): Promise<ExportProfile[]>;
  dataverseFor(profile: ExportProfile): DataverseClient;
  /** Undefined when the settings are missing: activation then names them. */
  webhook: WebhookTarget | undefined;
  logger: Logger;
}

/** One step of a profile as the organization holds it. */
export interface StepView {
  entity: string | null;
  message: StepMessage;
  name: string;
  exists: boolean;
  enabled: boolean;
  /** The image ordering needs is there (true for messages without one). */
  imageOk: boolean;
  /** What is wrong for an active profile: `missing`, `disabled`, `image missing`; null when in order. */
  drift: string | null;
}

export interface RegistrationView {
  /** False when `options.registerWebhook` is false: an administrator registers by hand. */
  managed: boolean;
  endpoint: { name: string; exists: boolean; url: string | null; drift: string | null };
  steps: StepView[];
  /** Nothing drifted: an active profile's steps all exist, are enabled and have their images. */
  inSync: boolean;
  /** How to repair drift. */
  repair: string;
}

export interface ReconcileReport {
  endpointId: string | null;
  created: string[];
  enabled: string[];
  disabled: string[];
  removed: string[];
  imagesAdded: string[];
}

interface Scope {
  /** A profile of the organization: its URL and credential reach the organization. */
  via: ExportProfile;
  /** Counted as active, with this definition, although the store does not say so yet (it is being activated). */
  activating?: ExportProfile;
  /** Left out although the store still holds it (it is being deleted). */
  removing?: string;
}

const byAge = (a: { createdOn: string; id: string }, b: { createdOn: string; id: string }) =>
  a.createdOn === b.createdOn ? a.id.localeCompare(b.id) : a.createdOn.localeCompare(b.createdOn);

export class WebhookRegistrar {
  /** One registration run per organization at a time in this process; other instances converge (see top). */
  private readonly running = new Map<string, Promise<unknown>>();

  constructor(private readonly options: RegistrarOptions) {}

  private serialize<T>(organizationId: string, run: () => Promise<T>): Promise<T> {
    const previous = this.running.get(organizationId) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(run);
    this.running.set(organizationId, next);
    void next
      .finally(() => {
        if (this.running.get(organizationId) === next) this.running.delete(organizationId);
      })
      .catch(() => undefined);
    return next;
  }

  private registry(profile: ExportProfile): PluginRegistry {
    return new PluginRegistry(this.options.dataverseFor(profile));
  }

  /** Checks the profile's entities, then registers what it needs; refusals leave it to the caller to stay inactive. */
  async activate(profile: ExportProfile): Promise<EntityCheckResult & { registration?: ReconcileReport }> {
    const log = this.options.logger;
    const checked = await refusalsNamed(profile, () => checkProfileEntities(this.registry(profile), profile, log));
    if (!registersWebhook(profile)) return checked;
    if (!this.options.webhook) {
      throw new AppError(
        'CONFIG_INVALID',
        `Profile '${profile.name}' stays inactive: the app does not know its public webhook URL and key (settings PublicBaseUrl, or WEBSITE_HOSTNAME in Azure, and DataverseWebhookKey). Set them, or set options.registerWebhook to false and register the webhook by hand.`,
        { details: [{ field: 'DataverseWebhookKey', message: 'needed to register the webhook' }] },
      );
    }
    const registration = await refusalsNamed(profile, () => this.reconcile({ via: profile, activating: profile }));
    return { ...checked, registration };
  }

  /** After deactivation: steps no active profile needs are disabled. */
  afterDeactivate(profile: ExportProfile): Promise<ReconcileReport> {
    return this.reconcile({ via: profile });
  }

  /** Before the profile's row goes: steps no remaining profile uses are removed. */
  beforeDelete(profile: ExportProfile): Promise<ReconcileReport> {
    return this.reconcile({ via: profile, removing: profile.id });
  }

  /** Re-applies what the organization's profiles need (the repair of drift). */
  repair(profile: ExportProfile): Promise<ReconcileReport> {
    return refusalsNamed(profile, () => this.reconcile({ via: profile }));
  }

  reconcile(scope: Scope): Promise<ReconcileReport> {
    return this.serialize(scope.via.organizationId, async () => {
      // Another instance may remove a duplicate this pass was still building on (it keeps the oldest); Dataverse
      // then answers "does not exist", and a fresh pass converges on what both now see.
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.reconcileNow(scope);
        } catch (err) {
          if (attempt >= 3 || !isGoneMeanwhile(err)) throw err;
        }
      }
    });
  }

  private async profilesOf(scope: Scope): Promise<ExportProfile[]> {
    const { activating, removing } = scope;
    const all = (await this.options.listProfiles()).filter((p) => p.id !== activating?.id && p.id !== removing);
    if (activating) all.push({ ...activating, state: 'Active' });
    return all.filter((p) => p.organizationId === scope.via.organizationId && registersWebhook(p));
  }

  private async reconcileNow(scope: Scope): Promise<ReconcileReport> {
    const log = this.options.logger.child({ organizationId: scope.via.organizationId });
    const report: ReconcileReport = {
      endpointId: null,
      created: [],
      enabled: [],
      disabled: [],
      removed: [],
      imagesAdded: [],
    };
    const registry = this.registry(scope.via);
    const profiles = await this.profilesOf(scope);
    const endpoints = (await registry.endpointsNamed(ENDPOINT_NAME)).sort(byAge);

    if (profiles.length === 0) {
      for (const endpoint of endpoints) await this.removeEndpoint(registry, endpoint, report);
      if (endpoints.length) log.info('webhook registration removed', { ...report });
      return report;
    }
    const webhook = this.options.webhook;
    if (!webhook) {
      throw new AppError(
        'CONFIG_INVALID',
        'The public webhook URL and key are not configured; nothing was registered.',
      );
    }
    const endpoint = await this.ensureEndpoint(registry, endpoints, webhook, report);
    report.endpointId = endpoint.id;

    const wantedEnabled = unionOfSteps(profiles.filter((p) => p.state === 'Active'));
    const kept = unionOfSteps(profiles);
    const existing = await this.withoutDuplicates(registry, await registry.stepsOf(endpoint.id), report);

    for (const [key, step] of kept) {
      const name = stepName(step);
      let row = existing.get(name);
      if (row && (row.stage !== STEP_STAGE || row.mode !== STEP_MODE)) {
        // Someone changed it to synchronous or another stage: a step we own is put back as it must be.
        await registry.deleteStep(row.id);
        row = undefined;
      }
      if (!wantedEnabled.has(key)) {
        if (row?.enabled) {
          await registry.setStepEnabled(row.id, false);
          report.disabled.push(name);
        }
        continue;
      }
      if (!row) {
        const id = await this.createStep(registry, endpoint.id, step);
        report.created.push(name);
        row = {
          id,
          name,
          enabled: true,
          stage: STEP_STAGE,
          mode: STEP_MODE,
          messageId: null,
          filterId: null,
          createdOn: '',
        };
      } else if (!row.enabled) {
        await registry.setStepEnabled(row.id, true);
        report.enabled.push(name);
      }
      const spec = imageFor(step.message);
      if (spec && !(await registry.imagesOf(row.id)).some((image) => imageMatches(image, spec))) {
        await registry.createImage(row.id, spec);
        report.imagesAdded.push(name);
      }
    }
    const keptNames = new Set([...kept.values()].map(stepName));
    for (const row of existing.values()) {
      if (keptNames.has(row.name)) continue;
      await registry.deleteStep(row.id);
      report.removed.push(row.name);
    }
    // Another instance may have created the same steps meanwhile: keep the oldest of each.
    if (report.created.length) await this.withoutDuplicates(registry, await registry.stepsOf(endpoint.id), report);
    log.info('webhook registration reconciled', { ...report });
    return report;
  }

  private async ensureEndpoint(
    registry: PluginRegistry,
    endpoints: ServiceEndpointRow[],
    webhook: WebhookTarget,
    report: ReconcileReport,
  ): Promise<ServiceEndpointRow> {
    if (endpoints.length === 0) {
      await registry.createEndpoint({ name: ENDPOINT_NAME, ...webhook });
      report.created.push(ENDPOINT_NAME);
      // Two instances may both have created one: every instance keeps the oldest and removes the others.
      endpoints = (await registry.endpointsNamed(ENDPOINT_NAME)).sort(byAge);
    } else {
      await registry.updateEndpoint(endpoints[0].id, webhook);
    }
    const [winner, ...losers] = endpoints;
    for (const loser of losers) await this.removeEndpoint(registry, loser, report);
    return winner;
  }

  private async removeEndpoint(registry: PluginRegistry, endpoint: ServiceEndpointRow, report: ReconcileReport) {
    // Dataverse refuses to delete an endpoint that steps still use.
    for (const step of await registry.stepsOf(endpoint.id)) {
      await registry.deleteStep(step.id);
      report.removed.push(step.name);
    }
    await registry.deleteEndpoint(endpoint.id);
    report.removed.push(ENDPOINT_NAME);
  }

  private async withoutDuplicates(
    registry: PluginRegistry,
    rows: StepRow[],
    report: ReconcileReport,
  ): Promise<Map<string, StepRow>> {
    const byName = new Map<string, StepRow>();
    for (const row of [...rows].sort(byAge)) {
      if (!byName.has(row.name)) {
        byName.set(row.name, row);
        continue;
      }
      await registry.deleteStep(row.id);
      report.removed.push(`${row.name} (duplicate)`);
    }
    return byName;
  }

  private async createStep(registry: PluginRegistry, endpointId: string, step: StepKey): Promise<string> {
    const messageId = await registry.messageId(step.message);
    let filterId: string | undefined;
    if (step.entity) {
      filterId = await registry.filterId(messageId, step.entity);
      if (!filterId) {
        throw new AppError(
          'ENTITY_NOT_EXPORTABLE',
          `Dataverse has no ${step.message} message for ${step.entity}, so its changes cannot be sent; remove it from the profile.`,
          { details: [{ field: '/entities', message: `no ${step.message} message filter`, value: step.entity }] },
        );
      }
    }
    return registry.createStep({ name: stepName(step), endpointId, messageId, filterId });
  }

  /** The profile's steps as the organization holds them, and whether anything drifted. */
  async inspect(profile: ExportProfile): Promise<RegistrationView> {
    const managed = registersWebhook(profile);
    const registry = this.registry(profile);
    const endpoint = (await registry.endpointsNamed(ENDPOINT_NAME)).sort(byAge)[0];
    const rows = endpoint ? await registry.stepsOf(endpoint.id) : [];
    const byName = new Map(
      [...rows]
        .sort(byAge)
        .reverse()
        .map((r) => [r.name, r]),
    );
    const active = profile.state === 'Active';
    const steps = await Promise.all(
      stepsOf(profile).map(async (step): Promise<StepView> => {
        const name = stepName(step);
        const row = byName.get(name);
        const spec = imageFor(step.message);
        const imageOk = !spec || (row ? (await registry.imagesOf(row.id)).some((i) => imageMatches(i, spec)) : false);
        const drift = !active ? null : !row ? 'missing' : !row.enabled ? 'disabled' : !imageOk ? 'image missing' : null;
        return {
          entity: step.entity,
          message: step.message,
          name,
          exists: Boolean(row),
          enabled: row?.enabled ?? false,
          imageOk,
          drift,
        };
      }),
    );
    const wantedUrl = this.options.webhook?.url;
    const endpointDrift = !active
      ? null
      : !endpoint
        ? 'missing'
        : wantedUrl && endpoint.url !== wantedUrl
          ? `posts to ${endpoint.url}, not ${wantedUrl}`
          : null;
    const inSync = !managed || (endpointDrift === null && steps.every((s) => s.drift === null));
    return {
      managed,
      endpoint: {
        name: ENDPOINT_NAME,
        exists: Boolean(endpoint),
        url: endpoint?.url ?? null,
        drift: managed ? endpointDrift : null,
      },
      steps: managed ? steps : steps.map((s) => ({ ...s, drift: null })),
      inSync,
      repair: managed
        ? `POST /api/profiles/${profile.id}/registration (or deactivate and activate again) re-registers what is missing.`
        : 'options.registerWebhook is false: register the webhook and its steps by hand (see the README).',
    };
  }
}

/** Whether an image on the step gives what the spec asks (a both-image satisfies either side). */
export function imageMatches(image: ImageRow, spec: ImageSpec): boolean {
  if (image.imageType !== spec.imageType && image.imageType !== 2) return false;
  if ((image.messagePropertyName ?? spec.messagePropertyName) !== spec.messagePropertyName) return false;
  const attributes = (image.attributes ?? '')
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  if (attributes.length === 0) return true;
  return (spec.attributes ?? '').split(',').every((a) => attributes.includes(a));
}

/** A Dataverse refusal (403 and other 4xx) becomes a 422 saying what to do; other errors pass unchanged. */
async function refusalsNamed<T>(profile: ExportProfile, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (!(err instanceof AppError) || err.code !== 'DATAVERSE_REQUEST_FAILED') throw err;
    throw new AppError(
      'REGISTRATION_REFUSED',
      `Profile '${profile.name}' stays inactive: Dataverse refused the registration: ${err.message}. ` +
        'Give the application user the privileges the README lists, or set options.registerWebhook to false and register the webhook by hand.',
      { cause: err, details: [{ field: '/source/url', message: err.message, value: profile.source.url }] },
    );
  }
}

/** Dataverse's ObjectDoesNotExist (0x80040217): a row another instance removed while this one used it. */
function isGoneMeanwhile(err: unknown): boolean {
  return (
    err instanceof AppError &&
    err.code === 'DATAVERSE_REQUEST_FAILED' &&
    (err.details ?? []).some((d) => String(d.value).toLowerCase() === '0x80040217')
  );
}
