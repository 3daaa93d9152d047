/**
 * Before a profile starts, every entity and relationship is looked up in the organization's metadata, as DES
 * did: unknown ones, tables DES could not export, and tables without change tracking (reconcile needs it)
 * are refused with a 422 naming each, unless `options.enableChangeTracking` lets activation switch it on.
 */
import { AppError, type ErrorDetail } from '../errors.js';
import type { Logger } from '../log.js';
import type { ExportProfile } from '../profiles/schema.js';
import type { PluginRegistry } from './plugin-registry.js';

/** Tables DES refused, with the reason a user needs. */
const NOT_EXPORTABLE: Record<string, string> = {
  activitypointer:
    'activitypointer is the read-only view over all activity tables and has no change tracking of its own; export the activity tables themselves (email, task, phonecall, appointment, …)',
  activityparty: 'activityparty rows change with their activity; export the activity tables instead',
};

export interface EntityCheckResult {
  /** Entities whose change tracking activation switched on. */
  changeTrackingEnabled: string[];
}

export async function checkProfileEntities(
  registry: PluginRegistry,
  profile: Pick<ExportProfile, 'name' | 'entities' | 'relationships' | 'options' | 'source'>,
  logger: Logger,
): Promise<EntityCheckResult> {
  const problems: ErrorDetail[] = [];
  const toEnable: string[] = [];
  const definitions = await Promise.all(
    profile.entities.map(async (e) => [e, await registry.entityDefinition(e)] as const),
  );
  for (const [entity, definition] of definitions) {
    if (NOT_EXPORTABLE[entity]) {
      problems.push({ field: '/entities', message: NOT_EXPORTABLE[entity], value: entity });
    } else if (!definition) {
      problems.push({
        field: '/entities',
        message: `no table named ${entity} in ${profile.source.url}`,
        value: entity,
      });
    } else if (!definition.changeTrackingEnabled) {
      if (profile.options.enableChangeTracking) toEnable.push(entity);
      else {
        problems.push({
          field: '/entities',
          message: `${entity} has change tracking off; turn it on for the table, or set options.enableChangeTracking to true`,
          value: entity,
        });
      }
    }
  }
  const relationships = await Promise.all(
    profile.relationships.map(async (r) => [r, await registry.relationshipExists(r)] as const),
  );
  for (const [relationship, exists] of relationships) {
    if (!exists) {
      problems.push({
        field: '/relationships',
        message: `no N:N relationship with schema name ${relationship} in ${profile.source.url}`,
        value: relationship,
      });
    }
  }
  if (problems.length) {
    throw new AppError(
      'ENTITY_NOT_EXPORTABLE',
      `Profile '${profile.name}' stays inactive: ${problems.map((p) => `${String(p.value)}: ${p.message}`).join('; ')}.`,
      { details: problems },
    );
  }
  for (const entity of toEnable) {
    await registry.enableChangeTracking(entity);
    logger.info('change tracking switched on', { entity });
  }
  return { changeTrackingEnabled: toEnable };
}
