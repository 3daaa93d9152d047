/**
 * What the applier may ask about an entity's shape in Dataverse, without knowing Dataverse: lib/sync
 * implements it over the Web API. The live path types new columns with it, and a value that does not fit
 * its column makes the applier ask again before it fails the record.
 */
import type { EntityMetadata } from './side-tables.js';
import type { AttributeSpec } from './table-model.js';

export interface EntitySchema {
  /** One spec per exported attribute: the column type the initial sync gives it. */
  specs: AttributeSpec[];
  /** The entity's rows of the metadata side tables (option labels, states, targets, attributes). */
  metadata: EntityMetadata;
}

export interface EntitySchemaSource {
  /**
   * The entity as Dataverse describes it (a recent copy, or read again with `refresh`); undefined when it
   * cannot be told now (Web API unreachable, not an entity), and the applier then infers types from values.
   */
  describe(entity: string, options?: { refresh?: boolean }): Promise<EntitySchema | undefined>;
}
