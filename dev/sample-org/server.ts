/**
 * The HTTP face of the sample org: the Web API subset under `/api/data/v9.2/` (definitions, paged and
 * change-tracked reads, writes, associations), with injectable faults. Any bearer token, or none, passes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AttributeValue } from '../../lib/change/change-event.js';
import { sqlGuidKey } from '../../lib/dataverse/sql-guid-order.js';
import { parseJsonLossless } from '../../lib/dataverse/webapi/json.js';
import { isoSeconds, type TypedRow } from './generate.js';
import { isRowRead, type PageLatency, PagePacer } from './latency.js';
import { ServiceProtection } from './limits.js';
import {
  attributeJson,
  attributeNavigation,
  entityJson,
  kindsOfCast,
  optionSetJson,
  relationshipJson,
} from './metadata.js';
import {
  errorBody,
  keyValue,
  type Preferences,
  parseExpand,
  parseGuidComparisons,
  parseGuidSet,
  parseOrderBy,
  parsePrefer,
  parseSelect,
} from './odata.js';
import { RegistrationStore } from './registrations.js';
import { annotationFilter, type RenderContext, renderRow, stringifyJson, webApiName, withContext } from './render.js';
import {
  accountContactRelationship,
  entities,
  entityByName,
  entityBySet,
  type SampleAttribute,
  type SampleEntity,
} from './schema.js';
import type { KeyRange, OrgStore } from './store.js';

export const API_PATH = '/api/data/v9.2/';
const MAX_PAGE_SIZE = 5000;
const COUNT_LIMIT = 5000;
/** Rows per piece of a streamed page. */
const ROWS_PER_PIECE = 250;

/** Dataverse error codes the sample org answers with. */
export const DataverseErrorCodes = {
  throttled: '0x80072322',
  unexpected: '0x80040216',
  notFound: '0x80040217',
  badProperty: '0x80060888',
  badPayload: '0x80048d19',
  expiredVersionStamp: '0x80044352',
} as const;

export interface Faults {
  throttle: { remaining: number; retryAfterSeconds: number };
  fail: { remaining: number; status: number };
  /** The next n requests lose their connection before an answer (ECONNRESET at the client). */
  reset: { remaining: number };
  pageDelayMs: number;
  /** Tables RetrieveTotalRecordCount refuses (400), as Dataverse may for one without a snapshot count. */
  noSnapshotCount: Set<string>;
  /** While set, delta tokens handed out carry the tracked read's `$select`, which their delta reads answer with. */
  deltaKeepsTrackedSelect: boolean;
  /** While set, admitted requests wait for it before they are served (so a test can hold n requests in flight). */
  hold?: Promise<void>;
}

/** What the server answered so far, by kind (faults included). */
export interface RequestStats {
  requests: number;
  throttled: number;
  failed: number;
  reset: number;
}

/** Reads of an entity set with `$filter`, `$orderby` or `$top` (the keyset reads of a partitioned copy). */
export interface RangeReadStats {
  total: number;
  /** Being answered right now, and the most at once since start. */
  inFlight: number;
  maxInFlight: number;
  /** The last reads, oldest first (at most {@link RANGE_LOG_LIMIT}): entity, `$filter` as sent, rows answered. */
  log: Array<{ entity: string; filter: string | null; orderBy: string | null; top: number | null; rows: number }>;
}

export const RANGE_LOG_LIMIT = 100_000;

/** What a write did, for the webhook. */
export interface WriteEvent {
  messageName: 'Create' | 'Update' | 'Delete' | 'Associate' | 'Disassociate';
  entity: SampleEntity;
  id: string;
  /** Create: the full row; Update: the changed attributes. */
  attributes?: TypedRow;
  /** The row after the write (Create/Update). */
  postImage?: TypedRow;
  versionNumber?: string;
  modifiedOn?: string;
  operationTime: Date;
  relationship?: { schemaName: string; relatedEntity: string; relatedIds: string[] };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class SampleOrgHandler {
  baseUrl = '';
  readonly stats: RequestStats = { requests: 0, throttled: 0, failed: 0, reset: 0 };
  /** Dataverse's service protection limits (none unless configured; in-flight figures are kept either way). */
  protection = new ServiceProtection();
  /** The time a page of rows takes to answer (none unless configured). */
  latency: PageLatency | undefined;
  readonly rangeReads: RangeReadStats = { total: 0, inFlight: 0, maxInFlight: 0, log: [] };

  constructor(
    private readonly store: OrgStore,
    readonly faults: Faults,
    readonly organizationId: string,
    private readonly onWrite: (event: WriteEvent) => void,
    readonly registrations: RegistrationStore,
    /** Tables whose change tracking is off (an admin can switch it on through the metadata API). */
    readonly changeTrackingOff: Set<string> = new Set(),
  ) {}

  private get apiBase(): string {
    return `${this.baseUrl}${API_PATH}`;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const pacer = this.latency && isRowRead(req.method, url, API_PATH) ? new PagePacer(this.latency) : undefined;
    /** Writes an answer; a page of rows (`paced`) is charged its latency as it streams. */
    const send = async (
      status: number,
      body?: string | Iterable<string>,
      headers: Record<string, string> = {},
      paced = false,
    ) => {
      res.writeHead(status, {
        'OData-Version': '4.0',
        ...(body !== undefined ? { 'Content-Type': 'application/json; odata.metadata=minimal' } : {}),
        ...headers,
      });
      if (body === undefined) return void res.end();
      if (!pacer || !paced) {
        if (typeof body === 'string') return void res.end(body);
        // A page goes out as it is rendered (chunked), as Dataverse streams it: the reader starts sooner.
        for (const piece of body) res.write(piece);
        return void res.end();
      }
      for (const piece of typeof body === 'string' ? [body] : body) {
        if (res.destroyed) return;
        res.write(piece);
        await pacer.afterPiece(piece);
      }
      res.end();
    };
    this.stats.requests++;
    const admission = this.protection.admit(userOf(req));
    if ('limit' in admission) {
      await drain(req);
      return send(429, errorBody(admission.code, admission.message), {
        'Retry-After': String(admission.retryAfterSeconds),
      });
    }
    res.once('close', admission.finish);
    try {
      if (this.faults.hold) await this.faults.hold;
      if (!url.pathname.startsWith(API_PATH)) throw new HttpError(404, DataverseErrorCodes.notFound, 'Not found');
      if (this.faults.reset.remaining > 0) {
        this.faults.reset.remaining--;
        this.stats.reset++;
        req.socket.resetAndDestroy();
        return;
      }
      if (this.faults.throttle.remaining > 0) {
        this.faults.throttle.remaining--;
        this.stats.throttled++;
        await drain(req);
        return await send(
          429,
          errorBody(
            DataverseErrorCodes.throttled,
            'Number of requests exceeded the limit of 6000 over time window of 300 seconds.',
          ),
          { 'Retry-After': String(this.faults.throttle.retryAfterSeconds) },
        );
      }
      if (this.faults.fail.remaining > 0) {
        this.faults.fail.remaining--;
        this.stats.failed++;
        await drain(req);
        return await send(
          this.faults.fail.status,
          errorBody(DataverseErrorCodes.unexpected, 'An unexpected error occurred.'),
        );
      }
      const body = await readBody(req);
      await pacer?.beforeRender();
      if (res.destroyed) return; // the client gave up while the page waited: nothing to render
      const result = await this.route(req.method ?? 'GET', url, req.headers, body);
      await send(result.status, result.body, result.headers, true);
    } catch (err) {
      // Failing part-way through a streamed page: the status is gone already, so the connection is cut.
      if (res.headersSent) return void res.destroy();
      if (err instanceof HttpError) return send(err.status, errorBody(err.code, err.message));
      return send(500, errorBody(DataverseErrorCodes.unexpected, err instanceof Error ? err.message : String(err)));
    }
  }

  private async route(
    method: string,
    url: URL,
    headers: IncomingMessage['headers'],
    body: string,
  ): Promise<{ status: number; body?: string | Iterable<string>; headers?: Record<string, string> }> {
    const path = decodeURIComponent(url.pathname.slice(API_PATH.length));
    const prefs = parsePrefer(headers.prefer);
    const segments = path.split('/').filter(Boolean);
    const head = segments[0] ?? '';

    if (method === 'GET' && head === 'WhoAmI') {
      return json({
        '@odata.context': `${this.apiBase}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse`,
        BusinessUnitId: '6f2d0000-0000-4000-8000-000000000001',
        UserId: '6f2d0000-0000-4000-8000-000000000002',
        OrganizationId: this.organizationId,
      });
    }
    if (method === 'GET' && head.startsWith('EntityDefinitions')) return this.entityDefinitions(segments, url);
    if ((method === 'PUT' || method === 'PATCH') && head.startsWith('EntityDefinitions') && segments.length === 1) {
      return this.updateEntityDefinition(head, body);
    }
    if (RegistrationStore.handles(head)) return this.registrations.route(method, head, url, body);
    if (
      method === 'GET' &&
      head === 'RelationshipDefinitions' &&
      segments[1]?.endsWith('ManyToManyRelationshipMetadata')
    ) {
      return json({
        '@odata.context': `${this.apiBase}$metadata#RelationshipDefinitions/Microsoft.Dynamics.CRM.ManyToManyRelationshipMetadata`,
        value: [relationshipJson(accountContactRelationship)],
      });
    }
    if (method === 'GET' && head.startsWith('RelationshipDefinitions')) return this.relationshipDefinition(head);
    if (method === 'GET' && head.startsWith('GlobalOptionSetDefinitions')) return this.globalOptionSets(head);
    if (method === 'GET' && head.startsWith('RetrieveTotalRecordCount')) return this.totalRecordCount(head, url);

    const m = /^([a-z_]+)(?:\(([^)]*)\))?$/.exec(head);
    const entity = m ? entityBySet(m[1]) : undefined;
    if (!m || !entity) {
      throw new HttpError(404, DataverseErrorCodes.notFound, `Resource not found for the segment '${head}'.`);
    }
    const key = m[2] ? parseGuid(m[2]) : undefined;
    if (m[2] && !key) throw new HttpError(400, DataverseErrorCodes.badPayload, `Invalid key '${m[2]}'.`);

    if (segments.length > 1) return this.reference(method, entity, key!, segments.slice(1), url, body);
    if (key === undefined) {
      if (method === 'GET') return this.collection(entity, url, prefs);
      if (method === 'POST') return this.create(entity, body, prefs);
    } else {
      if (method === 'GET') return this.single(entity, key, url, prefs);
      if (method === 'PATCH') return this.update(entity, key, body, headers);
      if (method === 'DELETE') return this.remove(entity, key);
    }
    throw new HttpError(405, DataverseErrorCodes.badPayload, `Method ${method} is not allowed on '${head}'.`);
  }

  // ---------------------------------------------------------------- definitions

  private entityDefinitions(segments: string[], url: URL) {
    if (segments[0] === 'EntityDefinitions' && segments.length === 1) return this.entityDefinitionList(url);
    const name = keyValue(segments[0], 'LogicalName');
    const entity = name ? entityByName(name) : undefined;
    if (!entity) {
      throw new HttpError(
        404,
        DataverseErrorCodes.notFound,
        `Could not find entity with name '${name ?? segments[0]}'.`,
      );
    }
    const select = parseSelect(url.searchParams.get('$select'));
    const expand = parseExpand(url.searchParams.get('$expand'));
    const attributes = entity.attributes.map((a, i) => ({ a, json: attributeJson(entity, a, i) }));
    const shapeAttribute = (a: SampleAttribute, base: Record<string, unknown>, sel?: string[], exp = expand) => {
      const out: Record<string, unknown> = sel
        ? Object.fromEntries(
            Object.entries(base).filter(([k]) => k === 'MetadataId' || k.startsWith('@') || sel.includes(k)),
          )
        : { ...base };
      for (const item of exp) {
        const nav = attributeNavigation(a, item.name);
        if (nav === undefined) continue;
        out[item.name] = nav && item.select ? pick(nav as Record<string, unknown>, item.select) : nav;
      }
      return out;
    };

    if (segments.length === 1) {
      const base = this.entityJson(entity);
      const out: Record<string, unknown> = {
        '@odata.context': `${this.apiBase}$metadata#EntityDefinitions/$entity`,
        ...(select ? pick(base, select) : base),
      };
      const attrExpand = expand.find((e) => e.name === 'Attributes');
      if (attrExpand) out.Attributes = attributes.map(({ a, json: j }) => shapeAttribute(a, j, attrExpand.select, []));
      return json(out);
    }
    if (segments[1] === 'Attributes' && segments.length === 2) {
      return json({
        '@odata.context': `${this.apiBase}$metadata#EntityDefinitions('${entity.metadataId}')/Attributes`,
        value: attributes.map(({ a, json: j }) => shapeAttribute(a, j, select)),
      });
    }
    if (segments[1].startsWith('Attributes(') && segments.length === 2) {
      const logicalName = keyValue(segments[1], 'LogicalName');
      const found = attributes.find(({ a }) => a.logicalName === logicalName);
      if (!found) throw new HttpError(404, DataverseErrorCodes.notFound, `Could not find attribute '${logicalName}'.`);
      return json({
        '@odata.context': `${this.apiBase}$metadata#EntityDefinitions('${entity.metadataId}')/Attributes/$entity`,
        ...shapeAttribute(found.a, found.json, select),
      });
    }
    if (segments[1] === 'Attributes' && segments.length === 3) {
      const kinds = kindsOfCast(segments[2]);
      if (!kinds) throw new HttpError(400, DataverseErrorCodes.badProperty, `Unknown type '${segments[2]}'.`);
      return json({
        '@odata.context': `${this.apiBase}$metadata#EntityDefinitions('${entity.metadataId}')/Attributes/${segments[2]}`,
        value: attributes
          .filter(({ a }) => kinds.includes(a.kind))
          .map(({ a, json: j }) => {
            const { '@odata.type': _type, ...rest } = j;
            return shapeAttribute(a, rest, select);
          }),
      });
    }
    throw new HttpError(404, DataverseErrorCodes.notFound, `Resource not found for the segment '${segments[1]}'.`);
  }

  /** The definition as served: change tracking as switched. */
  private entityJson(entity: SampleEntity): Record<string, unknown> {
    return { ...entityJson(entity), ChangeTrackingEnabled: !this.changeTrackingOff.has(entity.logicalName) };
  }

  /** `PUT EntityDefinitions(LogicalName='x')` (the whole definition, as Dataverse takes it): only ChangeTrackingEnabled changes here. */
  private updateEntityDefinition(head: string, body: string) {
    const name = keyValue(head, 'LogicalName');
    const entity = name ? entityByName(name) : undefined;
    if (!entity)
      throw new HttpError(404, DataverseErrorCodes.notFound, `Could not find entity with name '${name ?? head}'.`);
    if (this.registrations.refuseWrites) {
      throw new HttpError(
        this.registrations.refuseWrites,
        '0x80040220',
        'Principal user is missing prvWriteEntity privilege.',
      );
    }
    const definition = parseJsonLossless(body || '{}') as Record<string, unknown>;
    if (definition.ChangeTrackingEnabled === true) this.changeTrackingOff.delete(entity.logicalName);
    if (definition.ChangeTrackingEnabled === false) this.changeTrackingOff.add(entity.logicalName);
    return { status: 204 };
  }

  /** `EntityDefinitions?$filter=EntitySetName eq 'contacts'` (or LogicalName eq …; no filter lists all). */
  private entityDefinitionList(url: URL) {
    const filter = url.searchParams.get('$filter');
    let matches = (_e: SampleEntity) => true;
    if (filter) {
      const m = /^\s*(EntitySetName|LogicalName)\s+eq\s+'([^']*)'\s*$/.exec(filter);
      if (!m) throw new HttpError(400, DataverseErrorCodes.badProperty, `The $filter '${filter}' is not supported.`);
      const [, property, value] = m;
      matches = (e) => (property === 'EntitySetName' ? e.entitySetName : e.logicalName) === value;
    }
    const select = parseSelect(url.searchParams.get('$select'));
    return json({
      '@odata.context': `${this.apiBase}$metadata#EntityDefinitions`,
      value: entities.filter(matches).map((e) => (select ? pick(this.entityJson(e), select) : this.entityJson(e))),
    });
  }

  /** `GlobalOptionSetDefinitions(Name='new_interest')`, or all of them. */
  private globalOptionSets(head: string) {
    const sets = new Map<string, Record<string, unknown>>();
    for (const e of entities) {
      for (const a of e.attributes) {
        if (a.optionSet?.isGlobal) {
          sets.set(a.optionSet.name, {
            '@odata.type': '#Microsoft.Dynamics.CRM.OptionSetMetadata',
            ...optionSetJson(a, a.optionSet),
          });
        }
      }
    }
    if (head === 'GlobalOptionSetDefinitions') {
      return json({
        '@odata.context': `${this.apiBase}$metadata#GlobalOptionSetDefinitions`,
        value: [...sets.values()],
      });
    }
    const name = keyValue(head, 'Name');
    const set = name ? sets.get(name) : undefined;
    if (!set)
      throw new HttpError(404, DataverseErrorCodes.notFound, `Could not find optionset with name '${name ?? head}'.`);
    return json({ '@odata.context': `${this.apiBase}$metadata#GlobalOptionSetDefinitions/$entity`, ...set });
  }

  private relationshipDefinition(head: string) {
    const name = keyValue(head, 'SchemaName');
    if (name !== accountContactRelationship.schemaName) {
      throw new HttpError(404, DataverseErrorCodes.notFound, `Could not find relationship '${name}'.`);
    }
    return json({
      '@odata.context': `${this.apiBase}$metadata#RelationshipDefinitions/$entity`,
      ...relationshipJson(accountContactRelationship),
    });
  }

  /** `RetrieveTotalRecordCount(EntityNames=['account','contact'])` or with an `@p1` alias. */
  private totalRecordCount(head: string, url: URL) {
    let arg = /EntityNames=(.*)\)$/.exec(head)?.[1] ?? '';
    if (arg.startsWith('@')) arg = url.searchParams.get(arg) ?? '';
    const names = [...arg.matchAll(/'([^']*)'/g)].map((m) => m[1]);
    const values = names.map((n) => {
      const table = this.store.table(n);
      if (!table) throw new HttpError(404, DataverseErrorCodes.notFound, `Could not find entity with name '${n}'.`);
      if (this.faults.noSnapshotCount.has(n)) {
        throw new HttpError(400, DataverseErrorCodes.unexpected, `No record count snapshot exists for entity '${n}'.`);
      }
      return table.liveCount;
    });
    return json({
      '@odata.context': `${this.apiBase}$metadata#Microsoft.Dynamics.CRM.RetrieveTotalRecordCountResponse`,
      EntityRecordCountCollection: { Count: names.length, IsReadOnly: false, Keys: names, Values: values },
    });
  }

  // ---------------------------------------------------------------- reads

  private renderContext(prefs: Preferences): RenderContext {
    return {
      wants: annotationFilter(prefs.includeAnnotations),
      nameOf: (entityName, id) => {
        const target = entityByName(entityName);
        const row = target && this.store.table(entityName)?.get(id);
        const nameAttr = target?.primaryNameAttribute;
        const v = nameAttr && row ? row[nameAttr] : undefined;
        return v && v.type === 'string' ? v.value : undefined;
      },
    };
  }

  /** The validated `$select` as Web API property names, or undefined for all. */
  private selection(entity: SampleEntity, url: URL): string[] | undefined {
    const select = parseSelect(url.searchParams.get('$select'));
    if (!select) return undefined;
    const known = new Set(entity.attributes.map(webApiName));
    for (const p of select) {
      if (!known.has(p)) {
        throw new HttpError(
          400,
          DataverseErrorCodes.badProperty,
          `Could not find a property named '${p}' on type 'Microsoft.Dynamics.CRM.${entity.logicalName}'.`,
        );
      }
    }
    return select;
  }

  private preferenceApplied(prefs: Preferences, tracking: boolean): Record<string, string> {
    const applied: string[] = [];
    if (prefs.maxPageSize) applied.push(`odata.maxpagesize=${Math.min(prefs.maxPageSize, MAX_PAGE_SIZE)}`);
    if (tracking) applied.push('odata.track-changes');
    if (prefs.includeAnnotations) applied.push(`odata.include-annotations="${prefs.includeAnnotations}"`);
    return applied.length ? { 'Preference-Applied': applied.join(',') } : {};
  }

  private linkFor(entity: SampleEntity, select: string[] | undefined, params: Record<string, string>): string {
    const query = [
      ...(select ? [`$select=${select.join(',')}`] : []),
      ...Object.entries(params).map(([k, v]) => `${k}=${encodeURIComponent(v)}`),
    ];
    return `${this.apiBase}${entity.entitySetName}?${query.join('&')}`;
  }

  private async collection(entity: SampleEntity, url: URL, prefs: Preferences) {
    const ordered = ['$filter', '$orderby', '$top'].some((p) => url.searchParams.has(p));
    if (ordered && !url.searchParams.has('$deltatoken')) {
      const reads = this.rangeReads;
      reads.total++;
      reads.maxInFlight = Math.max(reads.maxInFlight, ++reads.inFlight);
      try {
        if (this.faults.pageDelayMs > 0) await new Promise((r) => setTimeout(r, this.faults.pageDelayMs));
        return this.orderedCollection(entity, url, prefs);
      } finally {
        reads.inFlight--;
      }
    }
    if (this.faults.pageDelayMs > 0) await new Promise((r) => setTimeout(r, this.faults.pageDelayMs));
    const select = this.selection(entity, url);
    const pageSize = Math.min(Math.max(prefs.maxPageSize ?? MAX_PAGE_SIZE, 1), MAX_PAGE_SIZE);
    const ctx = this.renderContext(prefs);
    const selected = select ? new Set(select) : undefined;
    const context = `${this.apiBase}$metadata#${entity.entitySetName}${select ? `(${select.join(',')})` : ''}`;
    const deltaToken = url.searchParams.get('$deltatoken');
    if (deltaToken !== null) return this.delta(entity, url, prefs, deltaToken, select, pageSize);

    const table = this.store.table(entity.logicalName)!;
    const cookie = parsePageCookie(url.searchParams.get('$skiptoken'), entity.primaryIdAttribute);
    const tracking = cookie ? cookie.tracking : prefs.trackChanges;
    const dataVersion = cookie?.dataVersion ?? this.store.version;
    let position = cookie ? (table.positionOf(cookie.lastId) ?? -1) + 1 : 0;
    const pageNumber = cookie ? cookie.pageNumber : 1;

    const out: string[] = [`{"@odata.context":${JSON.stringify(context)}`];
    if (url.searchParams.get('$count') === 'true') {
      out.push(
        `"@odata.count":${Math.min(table.liveCount, COUNT_LIMIT)}`,
        `"@Microsoft.Dynamics.CRM.totalrecordcount":${table.liveCount > COUNT_LIMIT ? -1 : table.liveCount}`,
        `"@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded":${table.liveCount > COUNT_LIMIT}`,
      );
    }
    const head = `${out.join(',')},"value":[`;
    const end = table.positions;
    const linkFor = (more: boolean, firstId: string | undefined, lastId: string | undefined) => {
      if (more && lastId && firstId) {
        const token = pageCookie(pageNumber + 1, entity.primaryIdAttribute, firstId, lastId, tracking, dataVersion);
        return `,"@odata.nextLink":${JSON.stringify(this.linkFor(entity, select, { $skiptoken: token }))}`;
      }
      if (tracking) {
        const token = deltaTokenText(dataVersion, this.faults.deltaKeepsTrackedSelect ? (select ?? []) : undefined);
        const link = this.linkFor(entity, select, { $deltatoken: token });
        return `,"@odata.deltaLink":${JSON.stringify(link)}`;
      }
      return '';
    };
    /** The page in pieces of a few hundred rows; rendered synchronously, so no write interleaves with it. */
    function* body(): Generator<string> {
      yield head;
      let firstId: string | undefined;
      let lastId: string | undefined;
      let rows = 0;
      let batch: string[] = [];
      for (; position < end && rows < pageSize; position++) {
        const row = table.rowAt(position);
        if (!row) continue;
        batch.push(renderRow(entity, row, selected, ctx).text);
        rows++;
        lastId = table.idAt(position);
        firstId ??= lastId;
        if (batch.length === ROWS_PER_PIECE) {
          yield (rows > ROWS_PER_PIECE ? ',' : '') + batch.join(',');
          batch = [];
        }
      }
      if (batch.length) yield (rows > batch.length ? ',' : '') + batch.join(',');
      while (position < end && !table.rowAt(position)) position++;
      yield `]${linkFor(position < end, firstId, lastId)}}`;
    }
    return {
      status: 200,
      body: body(),
      headers: this.preferenceApplied(prefs, tracking),
    };
  }

  /**
   * A read with `$filter` on the primary id (eq, gt, ge, lt, le joined by `and`), `$orderby` on the primary id
   * and `$top`, in SQL Server's uniqueidentifier order as Dataverse answers it. Change tracking refuses these
   * options, as Dataverse does. The page is rendered at once (a few thousand rows at most).
   */
  private orderedCollection(entity: SampleEntity, url: URL, prefs: Preferences) {
    const pid = entity.primaryIdAttribute;
    const params = url.searchParams;
    if (prefs.trackChanges) {
      throw new HttpError(
        400,
        DataverseErrorCodes.badPayload,
        'The $filter, $orderby and $top query options are not supported with change tracking (odata.track-changes).',
      );
    }
    const select = this.selection(entity, url);
    const pageSize = Math.min(Math.max(prefs.maxPageSize ?? MAX_PAGE_SIZE, 1), MAX_PAGE_SIZE);
    const range: KeyRange = {};
    const filter = params.get('$filter');
    // `id eq … or id eq …`: the rows of a re-read by id.
    const ids = filter === null ? undefined : parseGuidSet(filter, pid);
    if (filter !== null && !ids) {
      const terms = parseGuidComparisons(filter, pid);
      if (!terms) {
        throw new HttpError(
          400,
          DataverseErrorCodes.badPayload,
          `The sample org filters only on ${pid} with eq, gt, ge, lt, le joined by 'and', or eq joined by 'or'; got '${filter}'.`,
        );
      }
      for (const { op, guid } of terms) {
        const key = sqlGuidKey(guid);
        const raise = (after: bigint) => {
          if (range.after === undefined || after > range.after) range.after = after;
        };
        const lower = (upTo: bigint) => {
          if (range.upTo === undefined || upTo < range.upTo) range.upTo = upTo;
        };
        if (op === 'gt' || op === 'eq') raise(op === 'eq' ? key - 1n : key);
        if (op === 'ge') raise(key - 1n);
        if (op === 'lt') lower(key - 1n);
        if (op === 'le' || op === 'eq') lower(key);
      }
    }
    const orderBy = params.get('$orderby');
    const order = orderBy === null ? { property: pid, descending: false } : parseOrderBy(orderBy);
    if (!order || order.property !== pid) {
      throw new HttpError(
        400,
        DataverseErrorCodes.badPayload,
        `The sample org orders only by ${pid} (asc or desc); got '${orderBy}'.`,
      );
    }
    const topText = params.get('$top');
    const top = topText === null ? undefined : Number(topText);
    if (top !== undefined && !(Number.isInteger(top) && top >= 0)) {
      throw new HttpError(
        400,
        DataverseErrorCodes.badPayload,
        `$top must be a non-negative integer; got '${topText}'.`,
      );
    }
    // A next link continues after the last row of the page it came with.
    const cookie = parsePageCookie(params.get('$skiptoken'), pid);
    if (cookie) {
      const last = sqlGuidKey(cookie.lastId);
      if (order.descending) range.upTo = range.upTo === undefined || last - 1n < range.upTo ? last - 1n : range.upTo;
      else range.after = range.after === undefined || last > range.after ? last : range.after;
    }
    const table = this.store.table(entity.logicalName)!;
    const limit = Math.min(pageSize, top ?? Number.POSITIVE_INFINITY);
    const ctx = this.renderContext(prefs);
    const selected = select ? new Set(select) : undefined;
    const rows: string[] = [];
    let firstId: string | undefined;
    let lastId: string | undefined;
    let more = false;
    const ordered = ids
      ? table.withIds(ids, range, order.descending)
      : order.descending
        ? table.descending(range)
        : table.ascending(range);
    for (const r of ordered) {
      if (rows.length >= limit) {
        more = top === undefined;
        break;
      }
      rows.push(renderRow(entity, r.row, selected, ctx).text);
      firstId ??= r.id;
      lastId = r.id;
    }
    const reads = this.rangeReads;
    reads.log.push({ entity: entity.logicalName, filter, orderBy, top: top ?? null, rows: rows.length });
    if (reads.log.length > RANGE_LOG_LIMIT) reads.log.splice(0, reads.log.length - RANGE_LOG_LIMIT);
    const context = `${this.apiBase}$metadata#${entity.entitySetName}${select ? `(${select.join(',')})` : ''}`;
    let next = '';
    if (more && firstId && lastId) {
      const pageNumber = (cookie?.pageNumber ?? 1) + 1;
      const token = pageCookie(pageNumber, pid, firstId, lastId, false, this.store.version);
      const kept = Object.fromEntries(
        ['$filter', '$orderby'].flatMap((k) => (params.get(k) === null ? [] : [[k, params.get(k) as string]])),
      );
      next = `,"@odata.nextLink":${JSON.stringify(this.linkFor(entity, select, { ...kept, $skiptoken: token }))}`;
    }
    return {
      status: 200,
      body: `{"@odata.context":${JSON.stringify(context)},"value":[${rows.join(',')}]${next}}`,
      headers: this.preferenceApplied(prefs, false),
    };
  }

  private delta(
    entity: SampleEntity,
    url: URL,
    prefs: Preferences,
    token: string,
    select: string[] | undefined,
    pageSize: number,
  ) {
    const kept = keptSelect(token);
    if (kept) select = kept.length ? kept : undefined;
    const m = /^(\d+)!/.exec(token);
    const from = m ? BigInt(m[1]) : undefined;
    if (from === undefined || from < this.store.oldestValidVersion || from > this.store.version) {
      throw new HttpError(
        400,
        DataverseErrorCodes.expiredVersionStamp,
        'Version stamp associated with the client has expired. Please perform a full sync.',
      );
    }
    const skip = /upto="(\d+)" after="(\d+)"/.exec(url.searchParams.get('$skiptoken') ?? '');
    const upTo = skip ? BigInt(skip[1]) : this.store.version;
    const after = skip ? BigInt(skip[2]) : from;
    const table = this.store.table(entity.logicalName)!;
    const changes = table.changes(from, upTo, after, pageSize + 1);
    const page = changes.slice(0, pageSize);
    const ctx = this.renderContext(prefs);
    const selected = select ? new Set(select) : undefined;
    const value = page.map((c) =>
      c.row
        ? renderRow(entity, c.row, selected, ctx)
        : {
            '@odata.context': `${this.apiBase}$metadata#${entity.entitySetName}/$deletedEntity`,
            id: c.id,
            reason: 'deleted',
          },
    );
    const out: Record<string, unknown> = {
      '@odata.context': `${this.apiBase}$metadata#${entity.entitySetName}${select ? `(${select.join(',')})` : ''}/$delta`,
      value,
    };
    if (changes.length > pageSize) {
      const lastVersion = page[page.length - 1].version;
      out['@odata.nextLink'] = this.linkFor(entity, select, {
        $deltatoken: token,
        $skiptoken: `<cookie istracking="True" upto="${upTo}" after="${lastVersion}" />`,
      });
    } else {
      out['@odata.deltaLink'] = this.linkFor(entity, select, { $deltatoken: deltaTokenText(upTo, kept) });
    }
    return json(out, this.preferenceApplied(prefs, true));
  }

  private single(entity: SampleEntity, id: string, url: URL, prefs: Preferences) {
    const select = this.selection(entity, url);
    const row = this.store.table(entity.logicalName)?.get(id);
    if (!row) throw notFound(entity, id);
    return json(
      withContext(
        `${this.apiBase}$metadata#${entity.entitySetName}${select ? `(${select.join(',')})` : ''}/$entity`,
        renderRow(entity, row, select ? new Set(select) : undefined, this.renderContext(prefs)),
      ),
    );
  }

  // ---------------------------------------------------------------- writes

  private entityIdHeader(entity: SampleEntity, id: string) {
    return { 'OData-EntityId': `${this.apiBase}${entity.entitySetName}(${id})` };
  }

  private create(entity: SampleEntity, body: string, prefs: Preferences) {
    const attributes = this.parsePayload(entity, body);
    const idValue = attributes[entity.primaryIdAttribute];
    delete attributes[entity.primaryIdAttribute];
    const requestedId = idValue && idValue.type === 'guid' ? idValue.value : undefined;
    if (requestedId && this.store.table(entity.logicalName)?.get(requestedId)) {
      throw new HttpError(412, DataverseErrorCodes.badPayload, 'A record with matching key values already exists.');
    }
    const { id, row } = this.store.create(entity, attributes, requestedId);
    this.emitUpsert('Create', entity, id, row, row);
    if (prefs.returnRepresentation) {
      return json(
        withContext(
          `${this.apiBase}$metadata#${entity.entitySetName}/$entity`,
          renderRow(entity, row, undefined, this.renderContext(prefs)),
        ),
        this.entityIdHeader(entity, id),
        201,
      );
    }
    return { status: 204, headers: this.entityIdHeader(entity, id) };
  }

  /** PATCH is an upsert, as in Dataverse, unless `If-Match: *` says the row must exist. */
  private update(entity: SampleEntity, id: string, body: string, headers: IncomingMessage['headers']) {
    const changes = this.parsePayload(entity, body);
    delete changes[entity.primaryIdAttribute];
    const table = this.store.table(entity.logicalName)!;
    if (!table.get(id)) {
      if (headers['if-match'] === '*') throw notFound(entity, id);
      const { row } = this.store.create(entity, changes, id);
      this.emitUpsert('Create', entity, id, row, row);
      return { status: 204, headers: this.entityIdHeader(entity, id) };
    }
    const row = this.store.update(entity, id, changes)!;
    this.emitUpsert('Update', entity, id, changes, row);
    return { status: 204, headers: this.entityIdHeader(entity, id) };
  }

  private remove(entity: SampleEntity, id: string) {
    const deleted = this.store.delete(entity, id);
    if (!deleted) throw notFound(entity, id);
    this.onWrite({
      messageName: 'Delete',
      entity,
      id: id.toLowerCase(),
      versionNumber: String(deleted.version),
      operationTime: new Date(deleted.deletedOn),
    });
    return { status: 204 };
  }

  private emitUpsert(
    messageName: 'Create' | 'Update',
    entity: SampleEntity,
    id: string,
    attributes: TypedRow,
    row: TypedRow,
  ) {
    const version = row.versionnumber;
    const modified = row.modifiedon;
    this.onWrite({
      messageName,
      entity,
      id,
      attributes,
      postImage: row,
      versionNumber: version?.type === 'bigint' ? version.value : undefined,
      modifiedOn: modified?.type === 'datetime' ? modified.value : undefined,
      operationTime: new Date(),
    });
  }

  /** `POST /accounts(id)/new_accountcontact/$ref` and `DELETE …/new_accountcontact(id)/$ref`. */
  private reference(method: string, entity: SampleEntity, id: string, rest: string[], url: URL, body: string) {
    const rel = accountContactRelationship;
    const nav = /^([a-z_]+)(?:\(([^)]*)\))?$/.exec(rest[0]);
    const isAccountSide = entity.logicalName === rel.entity1LogicalName;
    const validNav = isAccountSide ? rel.entity1NavigationPropertyName : rel.entity2NavigationPropertyName;
    if (!nav || nav[1] !== validNav || rest[1] !== '$ref' || entity.isIntersect) {
      throw new HttpError(404, DataverseErrorCodes.notFound, `Resource not found for the segment '${rest[0]}'.`);
    }
    if (!this.store.table(entity.logicalName)?.get(id)) throw notFound(entity, id);
    let otherId: string | undefined;
    if (method === 'POST') {
      const payload = parseJsonLossless(body || '{}') as Record<string, unknown>;
      otherId = parseGuid(/\(([^)]+)\)\s*$/.exec(String(payload['@odata.id'] ?? ''))?.[1] ?? '');
    } else if (method === 'DELETE') {
      otherId = parseGuid(nav[2] ?? /\(([^)]+)\)\s*$/.exec(url.searchParams.get('$id') ?? '')?.[1] ?? '');
    }
    if (!otherId) throw new HttpError(400, DataverseErrorCodes.badPayload, 'The related record reference is missing.');
    const otherEntity = entityByName(isAccountSide ? rel.entity2LogicalName : rel.entity1LogicalName)!;
    if (!this.store.table(otherEntity.logicalName)?.get(otherId)) throw notFound(otherEntity, otherId);
    const accountId = isAccountSide ? id : otherId;
    const contactId = isAccountSide ? otherId : id;
    const intersect = entityByName(rel.intersectEntityName)!;
    const existing = this.store.findAssociation(accountId, contactId);
    const relationship = { schemaName: rel.schemaName, relatedEntity: otherEntity.logicalName, relatedIds: [otherId] };
    if (method === 'POST') {
      if (existing) {
        throw new HttpError(400, '0x80040237', 'Cannot insert duplicate key.');
      }
      const { row } = this.store.create(intersect, {
        accountid: { type: 'guid', value: accountId },
        contactid: { type: 'guid', value: contactId },
      });
      const v = row.versionnumber;
      this.onWrite({
        messageName: 'Associate',
        entity,
        id,
        relationship,
        versionNumber: v?.type === 'bigint' ? v.value : undefined,
        operationTime: new Date(),
      });
      return { status: 204 };
    }
    if (method === 'DELETE') {
      if (!existing) throw new HttpError(404, DataverseErrorCodes.notFound, 'The association does not exist.');
      const deleted = this.store.delete(intersect, existing)!;
      this.onWrite({
        messageName: 'Disassociate',
        entity,
        id,
        relationship,
        versionNumber: String(deleted.version),
        operationTime: new Date(deleted.deletedOn),
      });
      return { status: 204 };
    }
    throw new HttpError(405, DataverseErrorCodes.badPayload, `Method ${method} is not allowed on $ref.`);
  }

  /** A create/update body → typed values, with Dataverse's complaints for unknown or ill-typed properties. */
  private parsePayload(entity: SampleEntity, body: string): TypedRow {
    let payload: Record<string, unknown>;
    try {
      payload = parseJsonLossless(body || '{}') as Record<string, unknown>;
    } catch {
      throw new HttpError(400, DataverseErrorCodes.badPayload, 'The request body is not valid JSON.');
    }
    const out: TypedRow = {};
    for (const [key, raw] of Object.entries(payload)) {
      if (key.endsWith('@odata.bind')) {
        const nav = key.slice(0, -'@odata.bind'.length);
        const attribute = entity.attributes.find(
          (a) =>
            (a.kind === 'lookup' && a.logicalName === nav) ||
            (a.kind === 'customer' && (a.targets ?? []).some((t) => `${a.logicalName}_${t}` === nav)),
        );
        if (!attribute) throw badProperty(entity, nav);
        if (raw === null) {
          out[attribute.logicalName] = { type: 'null' };
          continue;
        }
        const m = /([a-z_]+)\(([^)]+)\)\s*$/.exec(String(raw));
        const target = m ? entityBySet(m[1]) : undefined;
        const targetId = m ? parseGuid(m[2]) : undefined;
        if (!target || !targetId || !(attribute.targets ?? []).includes(target.logicalName)) {
          throw new HttpError(400, DataverseErrorCodes.badPayload, `Invalid reference '${String(raw)}' for ${nav}.`);
        }
        out[attribute.logicalName] = { type: 'lookup', value: targetId, entityType: target.logicalName };
        continue;
      }
      if (key.includes('@')) continue;
      const attribute = entity.attributes.find((a) => a.logicalName === key);
      if (!attribute || attribute.kind === 'lookup' || attribute.kind === 'customer') throw badProperty(entity, key);
      if (attribute.readOnly || (attribute.isPrimaryName === true && entity.logicalName === 'contact')) continue;
      out[key] = typedValue(entity, attribute, raw);
    }
    return out;
  }
}

function typedValue(entity: SampleEntity, a: SampleAttribute, raw: unknown): AttributeValue {
  if (raw === null) return { type: 'null' };
  const fail = () =>
    new HttpError(
      400,
      DataverseErrorCodes.badPayload,
      `Error identified in Payload provided by the user for Entity :'${entity.logicalName}', Cannot convert the literal '${String(raw)}' to the expected type of '${a.logicalName}'.`,
    );
  switch (a.kind) {
    case 'uniqueidentifier': {
      const id = parseGuid(String(raw));
      if (!id) throw fail();
      return { type: 'guid', value: id };
    }
    case 'string':
    case 'memo':
      if (typeof raw !== 'string') throw fail();
      if (a.maxLength && raw.length > a.maxLength) throw fail();
      return { type: 'string', value: raw };
    case 'money':
    case 'decimal': {
      const text = typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw : '';
      if (!/^-?\d+(\.\d+)?$/.test(text)) throw fail();
      return { type: a.kind, value: text };
    }
    case 'integer':
      if (typeof raw !== 'number' || !Number.isInteger(raw)) throw fail();
      return { type: 'int', value: raw };
    case 'boolean':
      if (typeof raw !== 'boolean') throw fail();
      return { type: 'boolean', value: raw };
    case 'datetime':
    case 'dateonly': {
      const ms = typeof raw === 'string' ? Date.parse(raw) : Number.NaN;
      if (Number.isNaN(ms)) throw fail();
      return { type: 'datetime', value: isoSeconds(a.kind === 'dateonly' ? Date.parse(raw as string) : ms) };
    }
    case 'picklist':
    case 'state':
    case 'status':
      if (typeof raw !== 'number' || !a.optionSet?.options.some((o) => o.value === raw)) throw fail();
      return { type: 'optionset', value: raw };
    case 'multiselect': {
      const values = String(raw)
        .split(',')
        .filter(Boolean)
        .map((v) => Number(v));
      if (values.some((v) => !a.optionSet?.options.some((o) => o.value === v))) throw fail();
      return values.length ? { type: 'multiselect', value: values } : { type: 'null' };
    }
    default:
      throw fail();
  }
}

function json(body: unknown, headers: Record<string, string> = {}, status = 200) {
  return { status, body: stringifyJson(body), headers };
}

function pick(obj: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([k]) => k === 'MetadataId' || keys.includes(k)));
}

function notFound(entity: SampleEntity, id: string) {
  return new HttpError(
    404,
    DataverseErrorCodes.notFound,
    `Entity '${entity.logicalName}' With Id = ${id} Does Not Exist`,
  );
}

function badProperty(entity: SampleEntity, name: string) {
  return new HttpError(
    400,
    DataverseErrorCodes.badProperty,
    `An undeclared property '${name}' which only has property annotations in the payload but no property value was found in the payload. In OData, only declared navigation properties and declared named streams can be represented as properties without values. (entity '${entity.logicalName}')`,
  );
}

const GUID = /^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?$/;

function parseGuid(text: string): string | undefined {
  return GUID.exec(text.trim())?.[1].toLowerCase();
}

/**
 * `version!MM/dd/yyyy HH:mm:ss`, the shape of Dataverse's delta tokens; with `select` (deltaKeepsTrackedSelect),
 * `!select=a,b` after it names the columns its delta reads answer with (none: all).
 */
function deltaTokenText(version: bigint, select?: readonly string[]): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  const kept = select ? `!select=${select.join(',')}` : '';
  return `${version}!${p(d.getUTCMonth() + 1)}/${p(d.getUTCDate())}/${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}${kept}`;
}

/** The columns a delta token keeps (see deltaTokenText), undefined when it keeps none. */
function keptSelect(token: string): string[] | undefined {
  const m = /!select=([^!]*)$/.exec(token);
  return m ? m[1].split(',').filter(Boolean) : undefined;
}

/** The paging cookie, shaped like Dataverse's (`<cookie pagenumber="2" pagingcookie="…" istracking="False" />`). */
function pageCookie(
  page: number,
  idAttribute: string,
  firstId: string,
  lastId: string,
  tracking: boolean,
  dataVersion: bigint,
) {
  const inner = `<cookie page="${page - 1}"><${idAttribute} last="{${lastId.toUpperCase()}}" first="{${firstId.toUpperCase()}}" /></cookie>`;
  return `<cookie pagenumber="${page}" pagingcookie="${encodeURIComponent(inner)}" istracking="${tracking ? 'True' : 'False'}" dataversion="${dataVersion}" />`;
}

function parsePageCookie(token: string | null, idAttribute: string) {
  if (!token) return undefined;
  const page = /pagenumber="(\d+)"/.exec(token);
  const paging = /pagingcookie="([^"]*)"/.exec(token);
  const inner = paging ? decodeURIComponent(paging[1]) : '';
  const last = new RegExp(`<${idAttribute} last="\\{([^}]+)\\}"`).exec(inner);
  const version = /dataversion="(\d+)"/.exec(token);
  if (!page || !last || !version) {
    throw new HttpError(400, DataverseErrorCodes.badPayload, 'The $skiptoken is not valid.');
  }
  return {
    pageNumber: Number(page[1]),
    lastId: last[1].toLowerCase(),
    tracking: /istracking="True"/.test(token),
    dataVersion: BigInt(version[1]),
  };
}

/**
 * Whose limits a request counts against. Any bearer token (or none) is the one application user here, as the
 * exporter's identity is in Dataverse; the budgets are kept per user, so a token's subject could go here.
 */
function userOf(_req: IncomingMessage): string {
  return 'application user';
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function drain(req: IncomingMessage): Promise<void> {
  for await (const _ of req) {
    // discard
  }
}
