/**
 * What an organization offers to export, for the console's wizard: its tables (with whether change
 * tracking is on, which export needs) and its N:N relationships.
 */
import { type LabelJson, labelText } from './metadata.js';

export interface CatalogEntity {
  logicalName: string;
  displayName: string;
  entitySetName: string;
  changeTracking: boolean;
}

export interface CatalogRelationship {
  schemaName: string;
  entity1: string;
  entity2: string;
  intersectEntity: string;
}

export interface OrganizationCatalog {
  organizationId: string;
  entities: CatalogEntity[];
  relationships: CatalogRelationship[];
}

export const CATALOG_ENTITY_QUERY =
  'EntityDefinitions?$select=LogicalName,DisplayName,EntitySetName,ChangeTrackingEnabled,IsIntersect';
export const CATALOG_RELATIONSHIP_QUERY =
  'RelationshipDefinitions/Microsoft.Dynamics.CRM.ManyToManyRelationshipMetadata' +
  '?$select=SchemaName,Entity1LogicalName,Entity2LogicalName,IntersectEntityName';

interface EntityJson {
  LogicalName: string;
  DisplayName?: LabelJson;
  EntitySetName?: string;
  ChangeTrackingEnabled?: boolean;
  IsIntersect?: boolean;
}

interface RelationshipJson {
  SchemaName: string;
  Entity1LogicalName: string;
  Entity2LogicalName: string;
  IntersectEntityName: string;
}

/** Intersect tables are exported through their relationship, not picked as tables. Sorted by logical name. */
export function toCatalog(
  organizationId: string,
  entities: EntityJson[],
  relationships: RelationshipJson[],
): OrganizationCatalog {
  return {
    organizationId,
    entities: entities
      .filter((e) => !e.IsIntersect)
      .map((e) => ({
        logicalName: e.LogicalName,
        displayName: labelText(e.DisplayName) || e.LogicalName,
        entitySetName: e.EntitySetName ?? '',
        changeTracking: e.ChangeTrackingEnabled === true,
      }))
      .sort((a, b) => a.logicalName.localeCompare(b.logicalName)),
    relationships: relationships
      .map((r) => ({
        schemaName: r.SchemaName,
        entity1: r.Entity1LogicalName,
        entity2: r.Entity2LogicalName,
        intersectEntity: r.IntersectEntityName,
      }))
      .sort((a, b) => a.schemaName.localeCompare(b.schemaName)),
  };
}
