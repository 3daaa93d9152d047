/**
 * The organization's registration entity sets as the Web API serves them — `serviceendpoints`, `sdkmessages`,
 * `sdkmessagefilters`, `sdkmessageprocessingsteps`, `sdkmessageprocessingstepimages` — and the table
 * definitions activation checks. Only typed reads and writes here; deciding what to change is reconcile.ts.
 */
import type { DataverseClient } from '../dataverse/webapi/client.js';
import { parseJsonLossless } from '../dataverse/webapi/json.js';
import { AppError } from '../errors.js';
import type { ImageSpec, StepMessage } from './steps.js';
import { STEP_MODE, STEP_STAGE } from './steps.js';

export interface ServiceEndpointRow {
  id: string;
  name: string;
  url: string | null;
  createdOn: string;
}

export interface StepRow {
  id: string;
  name: string;
  enabled: boolean;
  stage: number;
  mode: number;
  messageId: string | null;
  filterId: string | null;
  createdOn: string;
}

export interface ImageRow {
  id: string;
  imageType: number;
  messagePropertyName: string | null;
  attributes: string | null;
}

export interface EntityDefinitionRow {
  logicalName: string;
  objectTypeCode: number | null;
  changeTrackingEnabled: boolean;
  isIntersect: boolean;
}

const WEBHOOK_CONTRACT = 8;
const WEBHOOK_KEY_AUTH = 4;

const quote = (value: string) => `'${value.replace(/'/g, "''")}'`;
const GUID = /([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\)?\s*$/;

type Json = Record<string, unknown>;
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export class PluginRegistry {
  private readonly messageIds = new Map<string, Promise<string>>();

  constructor(private readonly client: DataverseClient) {}

  private async list(path: string): Promise<Json[]> {
    const rows: Json[] = [];
    let link: string | undefined = path;
    while (link) {
      const response = await this.client.send(link);
      const body = parseJsonLossless(response!.text) as { value?: Json[]; '@odata.nextLink'?: string };
      rows.push(...(body.value ?? []));
      link = body['@odata.nextLink'];
    }
    return rows;
  }

  /** POSTs a row and answers its id (from `OData-EntityId`, as Dataverse answers a create with 204). */
  private async create(set: string, row: Json): Promise<string> {
    const response = await this.client.send(set, { method: 'POST', body: JSON.stringify(row) });
    const id = GUID.exec(response?.headers.get('odata-entityid') ?? '')?.[1];
    if (!id) throw new AppError('DATAVERSE_REQUEST_FAILED', `Dataverse created a row in ${set} without naming its id.`);
    return id.toLowerCase();
  }

  private async update(set: string, id: string, row: Json): Promise<void> {
    await this.client.send(`${set}(${id})`, {
      method: 'PATCH',
      body: JSON.stringify(row),
      headers: { 'If-Match': '*' },
    });
  }

  /** Deletes a row; one already gone (another instance deleted it) is fine. */
  private async remove(set: string, id: string): Promise<void> {
    await this.client.send(`${set}(${id})`, { method: 'DELETE', allowNotFound: true });
  }

  // ---------------------------------------------------------------- endpoints

  async endpointsNamed(name: string): Promise<ServiceEndpointRow[]> {
    const rows = await this.list(
      `serviceendpoints?$select=serviceendpointid,name,url,createdon&$filter=${encodeURIComponent(`name eq ${quote(name)} and contract eq ${WEBHOOK_CONTRACT}`)}`,
    );
    return rows.map((r) => ({
      id: String(r.serviceendpointid).toLowerCase(),
      name: String(r.name),
      url: str(r.url),
      createdOn: String(r.createdon ?? ''),
    }));
  }

  createEndpoint(endpoint: { name: string; url: string; key: string }): Promise<string> {
    return this.create('serviceendpoints', {
      name: endpoint.name,
      description: 'Changes for the Dataverse Export app; registered by its activation.',
      contract: WEBHOOK_CONTRACT,
      authtype: WEBHOOK_KEY_AUTH,
      url: endpoint.url,
      authvalue: endpoint.key,
    });
  }

  /** `authvalue` cannot be read back, so it is written on every reconcile: a rotated key reaches Dataverse. */
  updateEndpoint(id: string, endpoint: { url: string; key: string }): Promise<void> {
    return this.update('serviceendpoints', id, {
      url: endpoint.url,
      authtype: WEBHOOK_KEY_AUTH,
      authvalue: endpoint.key,
    });
  }

  deleteEndpoint(id: string): Promise<void> {
    return this.remove('serviceendpoints', id);
  }

  // ---------------------------------------------------------------- messages and filters

  messageId(message: StepMessage): Promise<string> {
    let id = this.messageIds.get(message);
    if (!id) {
      id = this.list(
        `sdkmessages?$select=sdkmessageid,name&$filter=${encodeURIComponent(`name eq ${quote(message)}`)}`,
      ).then((rows) => {
        const found = str(rows[0]?.sdkmessageid);
        if (!found) throw new AppError('DATAVERSE_REQUEST_FAILED', `Dataverse has no sdkmessage named ${message}.`);
        return found.toLowerCase();
      });
      id.catch(() => this.messageIds.delete(message));
      this.messageIds.set(message, id);
    }
    return id;
  }

  /** The message's filter for the entity, undefined when the entity does not take that message. */
  async filterId(messageId: string, entity: string): Promise<string | undefined> {
    const filter = `primaryobjecttypecode eq ${quote(entity)} and _sdkmessageid_value eq ${messageId}`;
    const rows = await this.list(
      `sdkmessagefilters?$select=sdkmessagefilterid,primaryobjecttypecode&$filter=${encodeURIComponent(filter)}`,
    );
    return str(rows[0]?.sdkmessagefilterid)?.toLowerCase();
  }

  // ---------------------------------------------------------------- steps and images

  async stepsOf(endpointId: string): Promise<StepRow[]> {
    const rows = await this.list(
      'sdkmessageprocessingsteps?$select=sdkmessageprocessingstepid,name,statecode,stage,mode,createdon,_sdkmessageid_value,_sdkmessagefilterid_value' +
        `&$filter=${encodeURIComponent(`_eventhandler_value eq ${endpointId}`)}`,
    );
    return rows.map((r) => ({
      id: String(r.sdkmessageprocessingstepid).toLowerCase(),
      name: String(r.name),
      enabled: Number(r.statecode) === 0,
      stage: Number(r.stage),
      mode: Number(r.mode),
      messageId: str(r._sdkmessageid_value)?.toLowerCase() ?? null,
      filterId: str(r._sdkmessagefilterid_value)?.toLowerCase() ?? null,
      createdOn: String(r.createdon ?? ''),
    }));
  }

  createStep(step: { name: string; endpointId: string; messageId: string; filterId?: string }): Promise<string> {
    return this.create('sdkmessageprocessingsteps', {
      name: step.name,
      description: 'Sends the change to the Dataverse Export app; registered by its activation.',
      stage: STEP_STAGE,
      mode: STEP_MODE,
      rank: 1,
      supporteddeployment: 0,
      // Successful system jobs of the asynchronous step are removed, so they do not pile up in the organization.
      asyncautodelete: true,
      'eventhandler_serviceendpoint@odata.bind': `/serviceendpoints(${step.endpointId})`,
      'sdkmessageid@odata.bind': `/sdkmessages(${step.messageId})`,
      ...(step.filterId ? { 'sdkmessagefilterid@odata.bind': `/sdkmessagefilters(${step.filterId})` } : {}),
    });
  }

  /** Enabled: statecode 0 / statuscode 1; disabled: statecode 1 / statuscode 2. */
  setStepEnabled(id: string, enabled: boolean): Promise<void> {
    return this.update(
      'sdkmessageprocessingsteps',
      id,
      enabled ? { statecode: 0, statuscode: 1 } : { statecode: 1, statuscode: 2 },
    );
  }

  deleteStep(id: string): Promise<void> {
    return this.remove('sdkmessageprocessingsteps', id);
  }

  async imagesOf(stepId: string): Promise<ImageRow[]> {
    const rows = await this.list(
      'sdkmessageprocessingstepimages?$select=sdkmessageprocessingstepimageid,imagetype,messagepropertyname,attributes' +
        `&$filter=${encodeURIComponent(`_sdkmessageprocessingstepid_value eq ${stepId}`)}`,
    );
    return rows.map((r) => ({
      id: String(r.sdkmessageprocessingstepimageid).toLowerCase(),
      imageType: Number(r.imagetype),
      messagePropertyName: str(r.messagepropertyname),
      attributes: str(r.attributes),
    }));
  }

  createImage(stepId: string, image: ImageSpec): Promise<string> {
    return this.create('sdkmessageprocessingstepimages', {
      name: image.entityAlias,
      entityalias: image.entityAlias,
      imagetype: image.imageType,
      messagepropertyname: image.messagePropertyName,
      attributes: image.attributes,
      'sdkmessageprocessingstepid@odata.bind': `/sdkmessageprocessingsteps(${stepId})`,
    });
  }

  deleteImage(id: string): Promise<void> {
    return this.remove('sdkmessageprocessingstepimages', id);
  }

  // ---------------------------------------------------------------- table definitions

  async entityDefinition(logicalName: string): Promise<EntityDefinitionRow | undefined> {
    const response = await this.client.send(
      `EntityDefinitions(LogicalName=${quote(logicalName)})?$select=LogicalName,ObjectTypeCode,ChangeTrackingEnabled,IsIntersect`,
      { allowNotFound: true },
    );
    if (!response) return undefined;
    const row = parseJsonLossless(response.text) as Json;
    return {
      logicalName: String(row.LogicalName),
      objectTypeCode: typeof row.ObjectTypeCode === 'number' ? row.ObjectTypeCode : null,
      changeTrackingEnabled: row.ChangeTrackingEnabled === true,
      isIntersect: row.IsIntersect === true,
    };
  }

  /**
   * Switches change tracking on. Table definitions are updated by PUT of the whole definition (the Web API
   * takes no PATCH on metadata); `MSCRM.MergeLabels` keeps labels in other languages.
   */
  async enableChangeTracking(logicalName: string): Promise<void> {
    const path = `EntityDefinitions(LogicalName=${quote(logicalName)})`;
    const response = await this.client.send(path);
    const definition = parseJsonLossless(response!.text) as Json;
    delete definition['@odata.context'];
    definition.ChangeTrackingEnabled = true;
    await this.client.send(path, {
      method: 'PUT',
      body: JSON.stringify(definition),
      headers: { 'MSCRM.MergeLabels': 'true' },
    });
  }

  async relationshipExists(schemaName: string): Promise<boolean> {
    const response = await this.client.send(
      `RelationshipDefinitions(SchemaName=${quote(schemaName)})/Microsoft.Dynamics.CRM.ManyToManyRelationshipMetadata?$select=SchemaName`,
      { allowNotFound: true },
    );
    return response !== undefined;
  }
}
