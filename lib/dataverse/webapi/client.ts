/**
 * The Dataverse Web API as the exporter uses it: table definitions, paged reads of an entity set (with
 * change tracking), deltas since a saved `@odata.deltaLink`, single-row re-reads and a row-count estimate.
 * Rows arrive as {@link ChangeEvent}s typed by the entity's metadata. Throttling, retries, the concurrency
 * cap and tokens are the transport's business (http.ts).
 */
import { randomUUID } from 'node:crypto';
import type { TokenCredential } from '@azure/identity';
import pLimit from 'p-limit';
import type { ChangeEvent } from '../../change/change-event.js';
import { AppError } from '../../errors.js';
import { createLogger, type Logger } from '../../log.js';
import { CATALOG_ENTITY_QUERY, CATALOG_RELATIONSHIP_QUERY, type OrganizationCatalog, toCatalog } from './catalog.js';
import { DEFAULT_RETRY, type RequestOptions, type RetryPolicy, type WebApiResponse, WebApiTransport } from './http.js';
import { parseJsonLossless } from './json.js';
import {
  ATTRIBUTE_CASTS,
  type AttributeJson,
  type AttributeMetadata,
  ENTITY_DEFINITION_QUERY,
  type EntityDefinitionJson,
  type EntityMetadata,
  exportedAttributes,
  labelText,
  type OptionSetJson,
  type OptionSetMetadata,
  type RelationshipMetadata,
  toEntityMetadata,
  toRelationshipMetadata,
} from './metadata.js';
import { INCLUDE_ANNOTATIONS, isDeletedEntity, toChangeEvent } from './rows.js';
import { selectedColumns, withSelect } from './select-link.js';

export interface DataverseClientOptions {
  /** The organization's URL, e.g. `https://contoso.crm.dynamics.com` (the Web API is under `/api/data/v9.2/`). */
  url: string;
  /** Tokens for `<url>/.default`; none sends no Authorization header (the local sample org). */
  credential?: TokenCredential;
  /**
   * Requests in flight at once to this organization, for every client of its URL in the process (default
   * 52, Dataverse's limit per user).
   */
  maxConcurrency?: number;
  retry?: Partial<RetryPolicy>;
  logger?: Logger;
  fetch?: typeof fetch;
  /** The organization's id for the ChangeEvents; asked of WhoAmI when not given. */
  organizationId?: string;
  /** Per request, including the body. */
  timeoutMs?: number;
}

/** One page of rows. Save `nextLink` to resume a copy, `deltaLink` to ask later for what changed since. */
export interface DataversePage {
  rows: ChangeEvent[];
  nextLink?: string;
  deltaLink?: string;
}

export interface ReadPagesOptions {
  /** Logical names to read (the id, modifiedon and versionnumber are always read); all exported by default. */
  select?: string[];
  /** Rows per page (`Prefer: odata.maxpagesize`), at most 5000. */
  pageSize?: number;
  /** Ask for change tracking: the last page then carries a `deltaLink`. */
  trackChanges?: boolean;
  /** A `nextLink` saved from an earlier page: continue from there instead of the first page. */
  startLink?: string;
  source?: ChangeEvent['source'];
}

export interface ReadDeltaOptions {
  /** The entity (logical or entity set name); by default the entity set the link names. */
  entity?: string;
  /**
   * Every column the metadata exports now instead of the link's `$select`: an attribute added since the link
   * was taken comes with the rows, a deleted one (which Dataverse would refuse) is no longer asked for.
   */
  exportedColumns?: boolean;
  pageSize?: number;
  source?: ChangeEvent['source'];
}

/** One keyset page of an id range: rows with `after < id ≤ upTo` in SQL Server's order of the primary id. */
export interface IdRangePage {
  rows: ChangeEvent[];
  /** Dataverse has more rows in the range than this page holds (it answered a next link). */
  more: boolean;
}

export interface ReadIdRangeOptions {
  /** Exclusive lower bound (an id); none: from the first id. */
  after?: string | null;
  /** Inclusive upper bound (an id); none: to the last id. */
  upTo?: string | null;
  pageSize?: number;
  source?: ChangeEvent['source'];
}

/** One page of a change-tracked read of primary ids only. */
export interface TrackedIdsPage {
  rows: number;
  nextLink?: string;
  /** On the last page: selects every exported column, so the deltas it yields bring whole rows. */
  deltaLink?: string;
}

export interface DataverseClient {
  /** `<url>/api/data/v9.2/` */
  readonly apiUrl: string;
  organizationId(): Promise<string>;
  /** Cached per client; `refresh` reads it again (new columns appear on a refresh). */
  entityMetadata(entity: string, options?: { refresh?: boolean }): Promise<EntityMetadata>;
  /** An N:N relationship by schema name. */
  relationshipMetadata(schemaName: string): Promise<RelationshipMetadata>;
  /** A global option set by name, undefined when there is none. */
  globalOptionSet(name: string): Promise<OptionSetMetadata | undefined>;
  readPages(entity: string, options?: ReadPagesOptions): AsyncIterable<DataversePage>;
  /** Upserts and deletes since the link was handed out; the last page carries the next `deltaLink`. */
  readDelta(deltaLink: string, options?: ReadDeltaOptions): AsyncIterable<DataversePage>;
  /** The row as it is now, undefined when it does not exist (anymore). */
  retrieve(entity: string, id: string, options?: { source?: ChangeEvent['source'] }): Promise<ChangeEvent | undefined>;
  /** Rows in the table: Dataverse's snapshot count (RetrieveTotalRecordCount), else `$count` (capped at 5000). */
  estimateCount(entity: string): Promise<number | undefined>;
  /** The first and last primary id in SQL Server's order (`$top=1` ascending and descending); undefined when empty. */
  idBounds(entity: string): Promise<{ first: string; last: string } | undefined>;
  /**
   * One page of the rows whose primary id is in (after, upTo], ordered by it (`$filter` + `$orderby`): a
   * keyset read, so a partition resumes after the last id it applied and never follows a next link.
   */
  readIdRange(entity: string, options?: ReadIdRangeOptions): Promise<IdRangePage>;
  /**
   * One page of a change-tracked read of the primary ids (`$select=<id>`); without `link`, its first page.
   * Change tracking takes no `$filter` or `$orderby`, so this read is not partitioned; its delta link is.
   */
  readTrackedIds(entity: string, options?: { link?: string; pageSize?: number }): Promise<TrackedIdsPage>;
  /** Any other Web API call (registration entity sets, metadata updates) under the same throttling, retries and token. */
  send(path: string, options?: RequestOptions): Promise<WebApiResponse | undefined>;
  /** Every table and N:N relationship of the organization, for picking what to export. */
  catalog(): Promise<OrganizationCatalog>;
}

export { DEFAULT_ORGANIZATION_CONCURRENCY as DEFAULT_MAX_CONCURRENCY } from './organization-limits.js';
export const MAX_PAGE_SIZE = 5000;
/** Delta rows without the columns their link selects are read again by id, 50 a request, 4 requests at once. */
const REREAD_BATCH = 50;
const REREAD_CONCURRENCY = 4;
/** The annotation `$count` sets when a table holds more rows than it counts. */
const LIMIT_EXCEEDED = '@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded';
const DEFAULT_TIMEOUT_MS = 120_000;

/** Entity, entity-set and schema names go into URLs: only these characters. */
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const GUID = /^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?$/;

function assertName(value: string, field: string): void {
  if (!NAME.test(value)) {
    throw new AppError(
      'VALIDATION_FAILED',
      `${field} ${JSON.stringify(value)} is not a Dataverse name: use letters, digits and underscores.`,
      { details: [{ field, message: 'must match ^[A-Za-z_][A-Za-z0-9_]{0,127}$', value }] },
    );
  }
}

interface CollectionJson {
  value?: unknown[];
  '@odata.nextLink'?: string;
  '@odata.deltaLink'?: string;
}

export function createDataverseClient(options: DataverseClientOptions): DataverseClient {
  const logger = options.logger ?? createLogger({ fields: { component: 'dataverse' } });
  const transport = new WebApiTransport({
    url: options.url,
    credential: options.credential,
    maxConcurrency: options.maxConcurrency,
    retry: { ...DEFAULT_RETRY, ...options.retry },
    logger,
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    fetch: options.fetch,
  });
  const metadataCache = new Map<string, Promise<EntityMetadata>>();
  /** Entity set name → logical name, learned from every definition read. */
  const setNames = new Map<string, string>();
  let organizationIdRequest: Promise<string> | undefined;

  const noSuchTable = (entity: string) =>
    new AppError(
      'DATAVERSE_REQUEST_FAILED',
      `Table ${JSON.stringify(entity)} does not exist in ${options.url}: check the entity's logical name.`,
      { details: [{ field: 'entity', message: 'no such table', value: entity }] },
    );

  async function getJson<T>(path: string, prefer?: string[]): Promise<T> {
    const response = await transport.request(path, { prefer });
    return parseJsonLossless(response!.text) as T;
  }

  async function catalog(): Promise<OrganizationCatalog> {
    const [id, entities, relationships] = await Promise.all([
      organizationId(),
      getJson<{ value: Parameters<typeof toCatalog>[1] }>(CATALOG_ENTITY_QUERY),
      getJson<{ value: Parameters<typeof toCatalog>[2] }>(CATALOG_RELATIONSHIP_QUERY),
    ]);
    return toCatalog(id, entities.value ?? [], relationships.value ?? []);
  }

  function organizationId(): Promise<string> {
    if (options.organizationId) return Promise.resolve(options.organizationId.toLowerCase());
    organizationIdRequest ??= getJson<{ OrganizationId: string }>('WhoAmI').then(
      (who) => who.OrganizationId.toLowerCase(),
      (err: unknown) => {
        organizationIdRequest = undefined;
        throw err;
      },
    );
    return organizationIdRequest;
  }

  async function readEntityMetadata(logicalName: string): Promise<EntityMetadata | undefined> {
    const base = `EntityDefinitions(LogicalName='${logicalName}')`;
    const definition = await transport.request(`${base}?${ENTITY_DEFINITION_QUERY}`, { allowNotFound: true });
    if (!definition) return undefined;
    const casts = await Promise.all(
      Object.entries(ATTRIBUTE_CASTS).map(async ([cast, query]) => {
        const page = await getJson<{ value: AttributeJson[] }>(
          `${base}/Attributes/Microsoft.Dynamics.CRM.${cast}?${query}`,
        );
        return [cast, page.value] as const;
      }),
    );
    const metadata = toEntityMetadata(
      parseJsonLossless(definition.text) as EntityDefinitionJson,
      Object.fromEntries(casts),
    );
    setNames.set(metadata.entitySetName, metadata.logicalName);
    return metadata;
  }

  function entityMetadata(logicalName: string, opts: { refresh?: boolean } = {}): Promise<EntityMetadata> {
    assertName(logicalName, 'entity');
    const cached = metadataCache.get(logicalName);
    if (cached && !opts.refresh) return cached;
    const request = readEntityMetadata(logicalName).then((metadata) => {
      if (!metadata) throw noSuchTable(logicalName);
      return metadata;
    });
    metadataCache.set(logicalName, request);
    request.catch(() => {
      if (metadataCache.get(logicalName) === request) metadataCache.delete(logicalName);
    });
    return request;
  }

  /** A logical name or an entity set name → the entity's metadata (a logical name is tried first). */
  async function resolveEntity(entity: string): Promise<EntityMetadata> {
    assertName(entity, 'entity');
    const known = setNames.get(entity) ?? (metadataCache.has(entity) ? entity : undefined);
    if (known) return entityMetadata(known);
    const direct = await readEntityMetadata(entity);
    if (direct) {
      metadataCache.set(entity, Promise.resolve(direct));
      return direct;
    }
    const bySet = await getJson<{ value: Array<{ LogicalName: string }> }>(
      `EntityDefinitions?$select=LogicalName&$filter=${encodeURIComponent(`EntitySetName eq '${entity}'`)}`,
    );
    const logicalName = bySet.value[0]?.LogicalName;
    if (!logicalName) throw noSuchTable(entity);
    setNames.set(entity, logicalName);
    return entityMetadata(logicalName);
  }

  async function relationshipMetadata(schemaName: string): Promise<RelationshipMetadata> {
    assertName(schemaName, 'relationship');
    const response = await transport.request(
      `RelationshipDefinitions(SchemaName='${schemaName}')/Microsoft.Dynamics.CRM.ManyToManyRelationshipMetadata`,
      { allowNotFound: true },
    );
    if (!response) {
      throw new AppError(
        'DATAVERSE_REQUEST_FAILED',
        `N:N relationship ${JSON.stringify(schemaName)} does not exist in ${options.url}: check its schema name.`,
        { details: [{ field: 'relationship', message: 'no such N:N relationship', value: schemaName }] },
      );
    }
    return toRelationshipMetadata(parseJsonLossless(response.text) as Record<string, unknown>);
  }

  async function globalOptionSet(name: string): Promise<OptionSetMetadata | undefined> {
    assertName(name, 'optionSet');
    const response = await transport.request(`GlobalOptionSetDefinitions(Name='${name}')`, { allowNotFound: true });
    if (!response) return undefined;
    const set = parseJsonLossless(response.text) as OptionSetJson;
    return {
      name: set.Name ?? name,
      isGlobal: true,
      options: (set.Options ?? []).map((o) => ({ value: o.Value, label: labelText(o.Label) })),
    };
  }

  /** The attributes to read: the exported ones (or the selected ones) plus what versions need. */
  function selection(metadata: EntityMetadata, select: string[] | undefined) {
    const exported = exportedAttributes(metadata);
    let attributes: AttributeMetadata[] = exported;
    if (select) {
      const byName = new Map(exported.map((a) => [a.logicalName, a]));
      const wanted = new Set([...select, metadata.primaryIdAttribute, 'modifiedon']);
      for (const name of select) {
        if (!byName.has(name)) {
          throw new AppError(
            'VALIDATION_FAILED',
            `select names ${JSON.stringify(name)}, which is not an exported attribute of ${metadata.logicalName}; use attribute logical names.`,
            { details: [{ field: 'select', message: 'unknown attribute', value: name }] },
          );
        }
      }
      attributes = exported.filter((a) => wanted.has(a.logicalName));
    }
    const columns = attributes.map((a) => a.webApiName);
    if (metadata.attributes.some((a) => a.logicalName === 'versionnumber')) columns.push('versionnumber');
    return { attributes, columns };
  }

  function preferences(pageSize: number | undefined, trackChanges: boolean): string[] {
    const size = Math.min(Math.max(Math.floor(pageSize ?? MAX_PAGE_SIZE), 1), MAX_PAGE_SIZE);
    return [`odata.maxpagesize=${size}`, INCLUDE_ANNOTATIONS, ...(trackChanges ? ['odata.track-changes'] : [])];
  }

  async function* follow(
    firstLink: string,
    prefer: string[],
    metadata: EntityMetadata,
    attributes: readonly AttributeMetadata[],
    source: ChangeEvent['source'],
    whole?: readonly string[],
  ): AsyncGenerator<DataversePage> {
    const orgId = await organizationId();
    let link: string | undefined = firstLink;
    while (link) {
      const readTime = new Date().toISOString();
      const body: CollectionJson = await getJson<CollectionJson>(link, prefer);
      const ctx = { metadata, attributes, organizationId: orgId, source, correlationId: randomUUID(), readTime };
      const raw = (body.value ?? []) as Record<string, unknown>[];
      let rows = raw.map((row) => toChangeEvent(row, ctx));
      if (whole) rows = await wholeRows(metadata, raw, rows, whole, source);
      const page: DataversePage = { rows };
      if (body['@odata.nextLink']) page.nextLink = body['@odata.nextLink'];
      if (body['@odata.deltaLink']) page.deltaLink = body['@odata.deltaLink'];
      logger.debug('dataverse page read', {
        entity: metadata.logicalName,
        rows: rows.length,
        more: page.nextLink !== undefined,
        correlationId: ctx.correlationId,
      });
      yield page;
      link = page.nextLink;
    }
  }

  async function* readPages(entity: string, opts: ReadPagesOptions = {}): AsyncGenerator<DataversePage> {
    const metadata = await resolveEntity(entity);
    const { attributes, columns } = selection(metadata, opts.select);
    const first = opts.startLink ?? `${metadata.entitySetName}?$select=${columns.join(',')}`;
    yield* follow(
      first,
      preferences(opts.pageSize, opts.trackChanges === true),
      metadata,
      attributes,
      opts.source ?? 'initialSync',
    );
  }

  async function* readDelta(deltaLink: string, opts: ReadDeltaOptions = {}): AsyncGenerator<DataversePage> {
    const url = new URL(transport.resolve(deltaLink));
    const entity = opts.entity ?? decodeURIComponent(url.pathname.split('/').filter(Boolean).pop() ?? '');
    const metadata = await resolveEntity(entity);
    // A delta row carries the columns the tracked query selected: type whatever of them is exported.
    const { attributes, columns } = selection(metadata, undefined);
    const link = opts.exportedColumns ? withSelect(deltaLink, columns) : deltaLink;
    const asked = selectedColumns(link);
    const source = opts.source ?? 'reconcile';
    for await (const page of follow(link, preferences(opts.pageSize, true), metadata, attributes, source, asked)) {
      // The next delta asks for what this one asked, whatever $select Dataverse's link comes back with.
      if (page.deltaLink && asked) page.deltaLink = withSelect(page.deltaLink, asked);
      yield page;
    }
  }

  /**
   * The delta's rows, each with every column its link selects. Delta links are opaque: should Dataverse answer
   * one with the columns of the read that took it instead (the id-only read of a partitioned copy, or a link
   * whose `$select` reconcile replaced), a row without them would give the table its new version over old
   * values. Such rows are read again whole, by id; one deleted meanwhile is left out, for the next delta
   * brings its delete.
   */
  async function wholeRows(
    metadata: EntityMetadata,
    raw: Record<string, unknown>[],
    rows: ChangeEvent[],
    whole: readonly string[],
    source: ChangeEvent['source'],
  ): Promise<ChangeEvent[]> {
    const partial = new Set(
      raw.flatMap((row, i) =>
        !isDeletedEntity(row) && whole.some((column) => !Object.hasOwn(row, column)) ? [i] : [],
      ),
    );
    if (!partial.size) return rows;
    logger.warn('dataverse delta rows lack columns their link selects: they are read again by id', {
      entity: metadata.logicalName,
      rows: partial.size,
      of: rows.length,
    });
    const ids = [...partial].map((i) => rows[i].recordId);
    const batches = Array.from({ length: Math.ceil(ids.length / REREAD_BATCH) }, (_, b) =>
      ids.slice(b * REREAD_BATCH, (b + 1) * REREAD_BATCH),
    );
    const limit = pLimit(REREAD_CONCURRENCY);
    const read = new Map(
      (await Promise.all(batches.map((batch) => limit(() => rowsById(metadata, batch, source)))))
        .flat()
        .map((r) => [r.recordId, r]),
    );
    return rows.flatMap((row, i) => {
      if (!partial.has(i)) return [row];
      const again = read.get(row.recordId);
      return again ? [again] : [];
    });
  }

  /** The rows with these primary ids as they are now (`id eq … or id eq …`, which intersect tables answer too). */
  async function rowsById(
    metadata: EntityMetadata,
    ids: string[],
    source: ChangeEvent['source'],
  ): Promise<ChangeEvent[]> {
    const { attributes, columns } = selection(metadata, undefined);
    const filter = encodeURIComponent(ids.map((id) => `${metadata.primaryIdAttribute} eq ${id}`).join(' or '));
    const readTime = new Date().toISOString();
    const body = await getJson<CollectionJson>(
      `${metadata.entitySetName}?$select=${columns.join(',')}&$filter=${filter}`,
      preferences(ids.length, false),
    );
    const ctx = { metadata, attributes, organizationId: await organizationId(), source, correlationId: randomUUID() };
    return (body.value ?? []).map((row) => toChangeEvent(row as Record<string, unknown>, { ...ctx, readTime }));
  }

  async function retrieve(
    entity: string,
    id: string,
    opts: { source?: ChangeEvent['source'] } = {},
  ): Promise<ChangeEvent | undefined> {
    const key = GUID.exec(id)?.[1];
    if (!key) {
      throw new AppError('VALIDATION_FAILED', `Record id ${JSON.stringify(id)} is not a GUID.`, {
        details: [{ field: 'id', message: 'must be a GUID', value: id }],
      });
    }
    const metadata = await resolveEntity(entity);
    const { attributes, columns } = selection(metadata, undefined);
    const readTime = new Date().toISOString();
    const response = await transport.request(`${metadata.entitySetName}(${key})?$select=${columns.join(',')}`, {
      prefer: [INCLUDE_ANNOTATIONS],
      allowNotFound: true,
    });
    if (!response) return undefined;
    return toChangeEvent(parseJsonLossless(response.text) as Record<string, unknown>, {
      metadata,
      attributes,
      organizationId: await organizationId(),
      source: opts.source ?? 'webhook',
      correlationId: randomUUID(),
      readTime,
    });
  }

  async function estimateCount(entity: string): Promise<number | undefined> {
    const metadata = await resolveEntity(entity);
    const names = encodeURIComponent(`['${metadata.logicalName}']`);
    try {
      const body = await getJson<{ EntityRecordCountCollection?: { Keys?: string[]; Values?: number[] } }>(
        `RetrieveTotalRecordCount(EntityNames=@p1)?@p1=${names}`,
      );
      const collection = body.EntityRecordCountCollection;
      const i = collection?.Keys?.indexOf(metadata.logicalName) ?? -1;
      const count = i >= 0 ? collection?.Values?.[i] : undefined;
      if (typeof count === 'number' && count >= 0) return count;
    } catch (err) {
      // Some tables (intersect, virtual) have no snapshot count; $count answers for them.
      if (!(err instanceof AppError) || err.code !== 'DATAVERSE_REQUEST_FAILED') throw err;
      logger.debug('RetrieveTotalRecordCount failed, using $count', { entity: metadata.logicalName, err });
    }
    const body = await getJson<{ '@odata.count'?: number; [LIMIT_EXCEEDED]?: boolean }>(
      `${metadata.entitySetName}?$select=${metadata.primaryIdAttribute}&$count=true`,
      ['odata.maxpagesize=1'],
    );
    // $count stops at 5,000: beyond it the number is unknown, not 5,000.
    if (body[LIMIT_EXCEEDED] === true) return undefined;
    return body['@odata.count'] ?? 0;
  }

  async function idBounds(entity: string): Promise<{ first: string; last: string } | undefined> {
    const metadata = await resolveEntity(entity);
    const pid = metadata.primaryIdAttribute;
    const end = async (direction: 'asc' | 'desc') => {
      const body = await getJson<CollectionJson>(
        `${metadata.entitySetName}?$select=${pid}&$orderby=${pid} ${direction}&$top=1`,
        ['odata.maxpagesize=1'],
      );
      const row = body.value?.[0] as Record<string, unknown> | undefined;
      return typeof row?.[pid] === 'string' ? (row[pid] as string).toLowerCase() : undefined;
    };
    const [first, last] = await Promise.all([end('asc'), end('desc')]);
    return first && last ? { first, last } : undefined;
  }

  async function readIdRange(entity: string, opts: ReadIdRangeOptions = {}): Promise<IdRangePage> {
    const metadata = await resolveEntity(entity);
    const { attributes, columns } = selection(metadata, undefined);
    const pid = metadata.primaryIdAttribute;
    const bound = (value: string, field: string) => {
      const id = GUID.exec(value)?.[1];
      if (!id) {
        throw new AppError('VALIDATION_FAILED', `${field} ${JSON.stringify(value)} is not a GUID.`, {
          details: [{ field, message: 'must be a GUID', value }],
        });
      }
      return id;
    };
    const terms = [
      ...(opts.after ? [`${pid} gt ${bound(opts.after, 'after')}`] : []),
      ...(opts.upTo ? [`${pid} le ${bound(opts.upTo, 'upTo')}`] : []),
    ];
    const filter = terms.length ? `&$filter=${encodeURIComponent(terms.join(' and '))}` : '';
    const path = `${metadata.entitySetName}?$select=${columns.join(',')}${filter}&$orderby=${encodeURIComponent(`${pid} asc`)}`;
    const orgId = await organizationId();
    const readTime = new Date().toISOString();
    const body = await getJson<CollectionJson>(path, preferences(opts.pageSize, false));
    const ctx = {
      metadata,
      attributes,
      organizationId: orgId,
      source: opts.source ?? 'initialSync',
      correlationId: randomUUID(),
      readTime,
    };
    const rows = (body.value ?? []).map((row) => toChangeEvent(row as Record<string, unknown>, ctx));
    return { rows, more: body['@odata.nextLink'] !== undefined };
  }

  async function readTrackedIds(
    entity: string,
    opts: { link?: string; pageSize?: number } = {},
  ): Promise<TrackedIdsPage> {
    const metadata = await resolveEntity(entity);
    const link = opts.link ?? `${metadata.entitySetName}?$select=${metadata.primaryIdAttribute}`;
    const body = await getJson<CollectionJson>(link, preferences(opts.pageSize, true));
    const page: TrackedIdsPage = { rows: body.value?.length ?? 0 };
    if (body['@odata.nextLink']) page.nextLink = body['@odata.nextLink'];
    const delta = body['@odata.deltaLink'];
    if (delta) {
      // The delta token carries the version only (RetrieveEntityChanges takes DataVersion and Columns apart):
      // the same token with every exported column brings whole rows to reconcile.
      page.deltaLink = withSelect(delta, selection(metadata, undefined).columns);
    }
    return page;
  }

  return {
    apiUrl: transport.apiUrl,
    organizationId,
    idBounds,
    readIdRange,
    readTrackedIds,
    entityMetadata,
    relationshipMetadata,
    globalOptionSet,
    readPages,
    readDelta,
    retrieve,
    estimateCount,
    send: (path, requestOptions) => transport.request(path, requestOptions),
    catalog,
  };
}
