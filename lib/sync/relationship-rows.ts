/**
 * Rows of an N:N relationship's intersect table, read through the Web API, as the Associate changes the
 * webhook path produces for the same pairs: one key per pair, and a version on the same (time) scale, so a
 * Disassociate that arrives while the copy runs is never undone by an older page.
 */
import type { ChangeEvent } from '../change/change-event.js';
import type { RelationshipMetadata } from '../dataverse/webapi/metadata.js';

type Side = { logicalName: string; id: string };

/**
 * The pair in the order the webhook parser gives it without relationship metadata (by logical name, then
 * id), so both paths write the same row. Keep in step with `orderPair` in lib/dataverse/webhook/parse.ts.
 */
function orderPair(a: Side, b: Side): [Side, Side] {
  const aFirst = a.logicalName < b.logicalName || (a.logicalName === b.logicalName && a.id <= b.id);
  return aFirst ? [a, b] : [b, a];
}

/**
 * An intersect row → its Associate change; undefined for a row that is not one (a delete of the intersect
 * row names only the intersect id, not the pair: the Disassociate webhook carries those).
 */
export function toAssociation(
  row: ChangeEvent,
  relationship: RelationshipMetadata,
  readTime: string,
): ChangeEvent | undefined {
  if (row.operation !== 'upsert') return undefined;
  const id1 = row.attributes?.[relationship.entity1IntersectAttribute];
  const id2 = row.attributes?.[relationship.entity2IntersectAttribute];
  if (id1?.type !== 'guid' || id2?.type !== 'guid') return undefined;
  const name = relationship.schemaName.toLowerCase();
  const [entity1, entity2] = orderPair(
    { logicalName: relationship.entity1LogicalName, id: id1.value.toLowerCase() },
    { logicalName: relationship.entity2LogicalName, id: id2.value.toLowerCase() },
  );
  return {
    organizationId: row.organizationId,
    entity: name,
    recordId: `${entity1.id}:${entity2.id}`,
    operation: 'associate',
    // Webhook associations are dated by their operation time; the pair existed when the page was read.
    version: { modifiedOn: readTime },
    operationTime: readTime,
    relationship: { name, entity1, entity2 },
    correlationId: row.correlationId,
    source: row.source,
    messageName: 'Associate',
  };
}

export function toAssociations(rows: ChangeEvent[], relationship: RelationshipMetadata, readTime: string) {
  const changes: ChangeEvent[] = [];
  let skipped = 0;
  for (const row of rows) {
    const change = toAssociation(row, relationship, readTime);
    if (change) changes.push(change);
    else skipped++;
  }
  return { changes, skipped };
}
