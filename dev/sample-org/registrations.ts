/**
 * The sample org's plug-in registration, as Dataverse keeps it: `serviceendpoints`, `sdkmessages`,
 * `sdkmessagefilters`, `sdkmessageprocessingsteps`, `sdkmessageprocessingstepimages`, served with create, read
 * (`$select`, `$filter` of `eq` terms joined by `and`), update and delete. A write fires a webhook only for a
 * registered, enabled post-operation step whose message and filter match, carrying the images the step asks.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseJsonLossless } from '../../lib/dataverse/webapi/json.js';
import { errorBody, parseSelect } from './odata.js';
import { stringifyJson } from './render.js';
import type { SampleEntity } from './schema.js';

type Row = Record<string, unknown>;

export interface RegistrationResult {
  status: number;
  body?: string;
  headers?: Record<string, string>;
}

/** What one registered step asks a write to send. */
export interface StepDelivery {
  stepId: string;
  url: string;
  /** The WebhookKey, sent as `?code=`. */
  key: string | undefined;
  /** The post-image's attributes: null = all; undefined = no post-image. */
  postImage: string[] | null | undefined;
  /** The pre-image's attributes (Delete): null = all; undefined = no pre-image. */
  preImage: string[] | null | undefined;
}

interface SetSpec {
  key: string;
  /** `<navigation>@odata.bind` → the lookup column it fills and the set it points into. */
  binds: Record<string, { column: string; set: string }>;
  /** Columns never read back (Dataverse keeps `authvalue` write-only). */
  writeOnly?: string[];
  defaults?: Row;
  /** The set's own rows are created by the platform, not through the API. */
  readOnly?: boolean;
}

const SETS: Record<string, SetSpec> = {
  serviceendpoints: { key: 'serviceendpointid', binds: {}, writeOnly: ['authvalue'] },
  sdkmessages: { key: 'sdkmessageid', binds: {}, readOnly: true },
  sdkmessagefilters: { key: 'sdkmessagefilterid', binds: {}, readOnly: true },
  sdkmessageprocessingsteps: {
    key: 'sdkmessageprocessingstepid',
    binds: {
      eventhandler_serviceendpoint: { column: '_eventhandler_value', set: 'serviceendpoints' },
      sdkmessageid: { column: '_sdkmessageid_value', set: 'sdkmessages' },
      sdkmessagefilterid: { column: '_sdkmessagefilterid_value', set: 'sdkmessagefilters' },
    },
    defaults: { statecode: 0, statuscode: 1, rank: 1, asyncautodelete: false },
  },
  sdkmessageprocessingstepimages: {
    key: 'sdkmessageprocessingstepimageid',
    binds: {
      sdkmessageprocessingstepid: { column: '_sdkmessageprocessingstepid_value', set: 'sdkmessageprocessingsteps' },
    },
  },
};

const MESSAGES = ['Create', 'Update', 'Delete', 'Associate', 'Disassociate', 'Retrieve'] as const;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Dataverse's code for a privilege the caller lacks. */
export const MISSING_PRIVILEGE = '0x80040220';
const HAND_REGISTERED = 'Registered by hand';

export class RegistrationStore {
  private readonly rows = new Map<string, Map<string, Row>>(Object.keys(SETS).map((s) => [s, new Map()]));
  private lastCreated = 0;
  /** While set, every registration write answers this status (a user without the privileges). */
  refuseWrites: number | undefined;

  constructor(
    private readonly baseUrl: () => string,
    entities: readonly SampleEntity[],
    /** Where the registration survives a restart (an organization keeps its steps); none: in memory only. */
    private readonly file?: string,
  ) {
    if (file && existsSync(file)) {
      const saved = JSON.parse(readFileSync(file, 'utf8')) as Record<string, Row[]>;
      for (const [set, rows] of Object.entries(saved)) {
        const table = this.rows.get(set);
        for (const row of rows) table?.set(row[SETS[set].key] as string, row);
      }
      return;
    }
    for (const name of MESSAGES) this.insert('sdkmessages', { name });
    for (const entity of entities.filter((e) => !e.isIntersect)) {
      for (const message of ['Create', 'Update', 'Delete', 'Retrieve']) {
        this.insert('sdkmessagefilters', {
          _sdkmessageid_value: this.messageId(message),
          primaryobjecttypecode: entity.logicalName,
          iscustomprocessingstepallowed: true,
        });
      }
    }
  }

  static handles(head: string): boolean {
    return /^([a-z]+)(\(|$)/.test(head) && (/^([a-z]+)/.exec(head)?.[1] ?? '') in SETS;
  }

  private table(set: string): Map<string, Row> {
    return this.rows.get(set)!;
  }

  /** createdon strictly increases, so "the oldest" is always one row. */
  private now(): string {
    this.lastCreated = Math.max(Date.now(), this.lastCreated + 1);
    return new Date(this.lastCreated).toISOString();
  }

  private insert(set: string, values: Row): string {
    const spec = SETS[set];
    const id = randomUUID();
    const createdon = this.now();
    this.table(set).set(id, { ...spec.defaults, ...values, [spec.key]: id, createdon, modifiedon: createdon });
    this.save();
    return id;
  }

  private save(): void {
    if (!this.file) return;
    const snapshot = Object.fromEntries([...this.rows].map(([set, rows]) => [set, [...rows.values()]]));
    writeFileSync(this.file, JSON.stringify(snapshot));
  }

  private messageId(name: string): string {
    return [...this.table('sdkmessages').values()].find((m) => m.name === name)!.sdkmessageid as string;
  }

  // ---------------------------------------------------------------- HTTP

  route(method: string, head: string, url: URL, body: string): RegistrationResult {
    const m = /^([a-z]+)(?:\(([^)]*)\))?$/.exec(head);
    if (!m) return fail(404, `Resource not found for the segment '${head}'.`);
    const set = m[1];
    const spec = SETS[set];
    const id = m[2]?.toLowerCase();
    if (id !== undefined && !GUID.test(id)) return fail(400, `Invalid key '${m[2]}'.`);
    if (method !== 'GET') {
      if (spec.readOnly) return fail(405, `${set} rows are created by the platform.`);
      if (this.refuseWrites) {
        return fail(
          this.refuseWrites,
          `Principal user is missing prv${method === 'DELETE' ? 'Delete' : method === 'POST' ? 'Create' : 'Write'}SdkMessageProcessingStep privilege.`,
          MISSING_PRIVILEGE,
        );
      }
    }
    if (id === undefined) {
      if (method === 'GET') return this.list(set, url);
      if (method === 'POST') return this.create(set, body);
    } else {
      const row = this.table(set).get(id);
      if (!row) return fail(404, `${spec.key.replace(/id$/, '')} With Id = ${id} Does Not Exist`);
      if (method === 'GET') return json(this.readable(set, row, parseSelect(url.searchParams.get('$select'))));
      if (method === 'PATCH') return this.update(set, row, body);
      if (method === 'DELETE') return this.remove(set, id);
    }
    return fail(405, `Method ${method} is not allowed on '${head}'.`);
  }

  private readable(set: string, row: Row, select: string[] | undefined): Row {
    const spec = SETS[set];
    const out: Row = {};
    for (const [k, v] of Object.entries(row)) {
      if (spec.writeOnly?.includes(k)) continue;
      if (select && k !== spec.key && !select.includes(k)) continue;
      out[k] = v;
    }
    return out;
  }

  private list(set: string, url: URL): RegistrationResult {
    const filter = url.searchParams.get('$filter');
    let terms: [string, unknown][] = [];
    if (filter) {
      const parsed = parseFilter(filter);
      if (!parsed) return fail(400, `The $filter '${filter}' is not supported.`);
      terms = parsed;
    }
    const select = parseSelect(url.searchParams.get('$select'));
    const value = [...this.table(set).values()]
      .filter((row) => terms.every(([column, v]) => sameValue(row[column], v)))
      .map((row) => this.readable(set, row, select));
    return json({ '@odata.context': `${this.baseUrl()}$metadata#${set}`, value });
  }

  /** Body → columns, with `@odata.bind` turned into lookups that must point at an existing row. */
  private columns(set: string, body: string): { row: Row } | { error: RegistrationResult } {
    let payload: Row;
    try {
      payload = parseJsonLossless(body || '{}') as Row;
    } catch {
      return { error: fail(400, 'The request body is not valid JSON.') };
    }
    const spec = SETS[set];
    const out: Row = {};
    for (const [k, v] of Object.entries(payload)) {
      if (!k.endsWith('@odata.bind')) {
        out[k] = v;
        continue;
      }
      const bind = spec.binds[k.slice(0, -'@odata.bind'.length)];
      const target = /^\/?([a-z]+)\(([^)]+)\)$/.exec(String(v));
      if (!bind || !target || target[1] !== bind.set) {
        return { error: fail(400, `Invalid reference '${String(v)}' for ${k}.`) };
      }
      const targetId = target[2].toLowerCase();
      if (!this.table(bind.set).has(targetId)) {
        return { error: fail(404, `${bind.set} With Id = ${targetId} Does Not Exist`) };
      }
      out[bind.column] = targetId;
    }
    return { row: out };
  }

  private create(set: string, body: string): RegistrationResult {
    const columns = this.columns(set, body);
    if ('error' in columns) return columns.error;
    const id = this.insert(set, columns.row);
    return { status: 204, headers: { 'OData-EntityId': `${this.baseUrl()}${set}(${id})` } };
  }

  private update(set: string, row: Row, body: string): RegistrationResult {
    const columns = this.columns(set, body);
    if ('error' in columns) return columns.error;
    Object.assign(row, columns.row, { modifiedon: this.now() });
    this.save();
    return { status: 204 };
  }

  private remove(set: string, id: string): RegistrationResult {
    if (set === 'serviceendpoints' && this.stepsOf(id).length) {
      return fail(400, 'The object you tried to delete is associated with another object and cannot be deleted.');
    }
    this.table(set).delete(id);
    if (set === 'sdkmessageprocessingsteps') {
      // Deleting a step deletes its images, as in Dataverse.
      for (const [imageId, image] of this.table('sdkmessageprocessingstepimages')) {
        if (image._sdkmessageprocessingstepid_value === id)
          this.table('sdkmessageprocessingstepimages').delete(imageId);
      }
    }
    return { status: 204 };
  }

  private stepsOf(endpointId: string): Row[] {
    return [...this.table('sdkmessageprocessingsteps').values()].filter((s) => s._eventhandler_value === endpointId);
  }

  // ---------------------------------------------------------------- firing

  /** The enabled post-operation steps a write of `message` on `entity` triggers, each with its endpoint and images. */
  deliveriesFor(message: string, entity: string): StepDelivery[] {
    const messageId = this.messageId(message);
    const out: StepDelivery[] = [];
    for (const step of this.table('sdkmessageprocessingsteps').values()) {
      if (step._sdkmessageid_value !== messageId || Number(step.statecode) !== 0 || Number(step.stage) !== 40) continue;
      const filterId = step._sdkmessagefilterid_value as string | undefined;
      if (filterId && this.table('sdkmessagefilters').get(filterId)?.primaryobjecttypecode !== entity) continue;
      const endpoint = this.table('serviceendpoints').get(step._eventhandler_value as string);
      if (!endpoint || typeof endpoint.url !== 'string') continue;
      const images = [...this.table('sdkmessageprocessingstepimages').values()].filter(
        (i) => i._sdkmessageprocessingstepid_value === step.sdkmessageprocessingstepid,
      );
      const imageOf = (types: number[]) => {
        const image = images.find((i) => types.includes(Number(i.imagetype)));
        if (!image) return undefined;
        const names = String(image.attributes ?? '')
          .split(',')
          .map((a) => a.trim())
          .filter(Boolean);
        return names.length ? names : null;
      };
      out.push({
        stepId: step.sdkmessageprocessingstepid as string,
        url: endpoint.url,
        key: typeof endpoint.authvalue === 'string' ? endpoint.authvalue : undefined,
        postImage: message === 'Create' || message === 'Update' ? imageOf([1, 2]) : undefined,
        preImage: message === 'Delete' || message === 'Update' ? imageOf([0, 2]) : undefined,
      });
    }
    return out;
  }

  /**
   * What an administrator does in the Plug-in Registration Tool: a webhook plus Create/Update/Delete steps for
   * every table and Associate/Disassociate, with a whole-row post-image (`full`) or none (`changed`) and a
   * versionnumber pre-image on Delete. `undefined` removes that hand registration again.
   */
  registerByHand(url: string | undefined, key: string | undefined, images: 'full' | 'changed'): void {
    for (const endpoint of [...this.table('serviceendpoints').values()]) {
      if (endpoint.name !== HAND_REGISTERED) continue;
      for (const step of this.stepsOf(endpoint.serviceendpointid as string)) {
        this.remove('sdkmessageprocessingsteps', step.sdkmessageprocessingstepid as string);
      }
      this.table('serviceendpoints').delete(endpoint.serviceendpointid as string);
    }
    this.save();
    if (!url) return;
    const endpointId = this.insert('serviceendpoints', {
      name: HAND_REGISTERED,
      contract: 8,
      authtype: 4,
      url,
      authvalue: key,
    });
    const step = (message: string, filterId?: string) =>
      this.insert('sdkmessageprocessingsteps', {
        name: `${HAND_REGISTERED}: ${message}`,
        stage: 40,
        mode: 1,
        _eventhandler_value: endpointId,
        _sdkmessageid_value: this.messageId(message),
        ...(filterId ? { _sdkmessagefilterid_value: filterId } : {}),
      });
    const image = (stepId: string, imagetype: number, attributes: string | null) =>
      this.insert('sdkmessageprocessingstepimages', {
        imagetype,
        attributes,
        entityalias: imagetype === 0 ? 'PreImage' : 'PostImage',
        _sdkmessageprocessingstepid_value: stepId,
      });
    for (const filter of [...this.table('sdkmessagefilters').values()]) {
      const message = [...this.table('sdkmessages').values()].find((m) => m.sdkmessageid === filter._sdkmessageid_value)
        ?.name as string;
      if (!['Create', 'Update', 'Delete'].includes(message)) continue;
      const stepId = step(message, filter.sdkmessagefilterid as string);
      if (message === 'Delete') image(stepId, 0, 'versionnumber');
      else if (images === 'full') image(stepId, 1, null);
    }
    step('Associate');
    step('Disassociate');
  }
}

/** `a eq 'x' and b eq <guid> and c eq 8`: the terms, or undefined when the filter says more than that. */
function parseFilter(filter: string): [string, unknown][] | undefined {
  const terms: [string, unknown][] = [];
  for (const part of filter.split(/\s+and\s+/)) {
    const m = /^\s*([A-Za-z_]+)\s+eq\s+(?:'((?:[^']|'')*)'|([0-9a-fA-F-]{36})|(-?\d+)|(null|true|false))\s*$/.exec(
      part,
    );
    if (!m) return undefined;
    const value =
      m[2] !== undefined
        ? m[2].replace(/''/g, "'")
        : m[3] !== undefined
          ? m[3].toLowerCase()
          : m[4] !== undefined
            ? Number(m[4])
            : m[5] === 'null'
              ? null
              : m[5] === 'true';
    terms.push([m[1], value]);
  }
  return terms;
}

function sameValue(actual: unknown, wanted: unknown): boolean {
  if (wanted === null) return actual === null || actual === undefined;
  if (typeof wanted === 'number') return Number(actual) === wanted;
  if (typeof actual === 'string' && typeof wanted === 'string') return actual.toLowerCase() === wanted.toLowerCase();
  return actual === wanted;
}

function json(body: unknown): RegistrationResult {
  return { status: 200, body: stringifyJson(body) };
}

function fail(status: number, message: string, code = '0x80040217'): RegistrationResult {
  return { status, body: errorBody(code, message) };
}
