/**
 * An attribute deleted in Dataverse keeps its column, as DES did (nothing is ever dropped), with the values
 * it had; later changes no longer carry it, so it is left as it is. Reconcile compares the entity table's
 * columns with the metadata it has just read and says so in the log once per profile, entity and attribute.
 */
import type { EntityMetadata as DataverseEntityMetadata } from '../dataverse/webapi/metadata.js';
import type { Logger } from '../log.js';
import { entityTypeColumn, SystemColumns } from '../sink/table-model.js';
import type { SyncSink } from './ports.js';

/** What this process has already said, so a column of a deleted attribute is logged once, not every run. */
const noticed = new Set<string>();

/** The columns of `entity`'s table whose attribute the metadata no longer has (folded names). */
export async function noteDeletedAttributes(
  sink: SyncSink,
  profileId: string,
  entity: string,
  metadata: DataverseEntityMetadata,
  log: Logger,
): Promise<string[]> {
  const columns = await sink.readColumns?.(entity);
  if (!columns) return [];
  const known = new Set(Object.values(SystemColumns).map((c) => c.toLowerCase()));
  for (const a of metadata.attributes) {
    known.add(a.logicalName.toLowerCase());
    known.add(entityTypeColumn(a.logicalName).toLowerCase());
  }
  const gone = columns.filter((c) => !known.has(c.toLowerCase()));
  for (const column of gone) {
    const key = `${profileId}\n${entity}\n${column}`;
    if (noticed.has(key)) continue;
    noticed.add(key);
    log.warn('sink.attribute.deleted', {
      entity,
      attribute: column,
      reason: `the attribute ${entity}.${column} is no longer in Dataverse's metadata: its column stays with the values it had and receives no new ones; drop the column by hand if reports no longer need it`,
    });
  }
  return gone;
}
