/**
 * The normalized form of one change to one Dataverse record, as it travels from ingest (webhook or
 * Web API) through the queue to the sink. JSON-serializable: it is the inline body of a queue message.
 */

/** A typed attribute value. Decimals and big integers stay strings so no precision is lost. */
export type AttributeValue =
  | { type: 'string'; value: string }
  | { type: 'int'; value: number }
  | { type: 'bigint'; value: string }
  | { type: 'decimal'; value: string }
  | { type: 'money'; value: string }
  | { type: 'float'; value: number }
  | { type: 'boolean'; value: boolean }
  | { type: 'datetime'; value: string }
  | { type: 'guid'; value: string }
  | { type: 'lookup'; value: string; entityType: string }
  | { type: 'optionset'; value: number }
  | { type: 'multiselect'; value: number[] }
  | { type: 'partylist'; value: Array<{ id: string; entityType: string }> }
  | { type: 'null' };

export type AttributeType = AttributeValue['type'];

/**
 * The version of a change (docs/architecture.md §5). `rowVersion` is Dataverse's versionnumber (a decimal string
 * of a 64-bit integer); `modifiedOn` is an ISO-8601 UTC time. Values on one scale are never compared with
 * values on the other.
 */
export interface ChangeVersion {
  rowVersion?: string;
  modifiedOn?: string;
}

export type ChangeOperation = 'upsert' | 'delete' | 'associate' | 'disassociate';

export interface RelationshipChange {
  /** The N:N relationship's schema name in lower case, e.g. `accountleads`; also the target table name. */
  name: string;
  entity1: { logicalName: string; id: string };
  entity2: { logicalName: string; id: string };
}

export interface ChangeEvent {
  organizationId: string;
  /** Entity logical name; for associate/disassociate the relationship name. */
  entity: string;
  /** Record GUID, lower case; for associate/disassociate the intersect key `<id1>:<id2>`. */
  recordId: string;
  operation: ChangeOperation;
  version: ChangeVersion;
  /** When Dataverse performed the operation (ISO-8601 UTC). */
  operationTime: string;
  /** Attributes present in the change (a partial update carries only what changed). */
  attributes?: Record<string, AttributeValue>;
  /** True when Dataverse stripped the payload: the row must be re-read from the Web API before applying. */
  needsReread?: boolean;
  relationship?: RelationshipChange;
  /** Dataverse's CorrelationId (or ours for Web API reads): carried into every log line. */
  correlationId: string;
  /** Where the change came from: `webhook`, `initialSync`, `reconcile`, `resync`. */
  source: 'webhook' | 'initialSync' | 'reconcile' | 'resync';
  /** Dataverse message name (Create, Update, Delete, Associate, Disassociate), when known. */
  messageName?: string;
}
