/**
 * What the Dataverse side must hold for a set of profiles: one webhook endpoint per organization and, per
 * exported entity, asynchronous post-operation steps for Create, Update and Delete with the images ordering
 * needs; Associate and Disassociate (primary entity "none") when a profile exports N:N relationships.
 */
import type { ExportProfile } from '../profiles/schema.js';

export type StepMessage = 'Create' | 'Update' | 'Delete' | 'Associate' | 'Disassociate';

/** One step we register: an entity's message, or a relationship message (entity null = "none"). */
export interface StepKey {
  entity: string | null;
  message: StepMessage;
}

export interface ImageSpec {
  /** 0 pre-image, 1 post-image (2 both, which also satisfies either). */
  imageType: 0 | 1;
  entityAlias: 'PreImage' | 'PostImage';
  /** `Id` for Create (the Target has no id yet), `Target` otherwise. */
  messagePropertyName: 'Id' | 'Target';
  /** Comma-separated logical names; null for all attributes. */
  attributes: string | null;
}

/** The endpoint's name in the organization: how a second activation finds it again. */
export const ENDPOINT_NAME = 'Dataverse Export';

/** Post-operation, asynchronous: the write has committed and Dataverse's own transaction stays fast. */
export const STEP_STAGE = 40;
export const STEP_MODE = 1;

const ENTITY_MESSAGES: StepMessage[] = ['Create', 'Update', 'Delete'];
const RELATIONSHIP_MESSAGES: StepMessage[] = ['Associate', 'Disassociate'];

/** A stable, readable name: the Plug-in Registration Tool shows it, and reconciliation matches on it. */
export function stepName(key: StepKey): string {
  return key.entity ? `${ENDPOINT_NAME}: ${key.message} of ${key.entity}` : `${ENDPOINT_NAME}: ${key.message}`;
}

export function keyOf(key: StepKey): string {
  return `${key.entity ?? 'none'}:${key.message}`;
}

/** The image a step must carry: the whole row after Create/Update, the deleted row's version before Delete. */
export function imageFor(message: StepMessage): ImageSpec | undefined {
  switch (message) {
    case 'Create':
      return { imageType: 1, entityAlias: 'PostImage', messagePropertyName: 'Id', attributes: null };
    case 'Update':
      return { imageType: 1, entityAlias: 'PostImage', messagePropertyName: 'Target', attributes: null };
    case 'Delete':
      return { imageType: 0, entityAlias: 'PreImage', messagePropertyName: 'Target', attributes: 'versionnumber' };
    default:
      return undefined;
  }
}

/** Whether the app registers this profile's steps (`options.registerWebhook`, default true). */
export function registersWebhook(profile: Pick<ExportProfile, 'options'>): boolean {
  return profile.options.registerWebhook !== false;
}

/** The steps one profile needs. */
export function stepsOf(profile: Pick<ExportProfile, 'entities' | 'relationships'>): StepKey[] {
  const steps: StepKey[] = profile.entities.flatMap((entity) =>
    ENTITY_MESSAGES.map((message) => ({ entity, message })),
  );
  if (profile.relationships.length) steps.push(...RELATIONSHIP_MESSAGES.map((message) => ({ entity: null, message })));
  return steps;
}

/** The union of the profiles' steps, once each. */
export function unionOfSteps(profiles: Pick<ExportProfile, 'entities' | 'relationships'>[]): Map<string, StepKey> {
  const union = new Map<string, StepKey>();
  for (const profile of profiles) for (const step of stepsOf(profile)) union.set(keyOf(step), step);
  return union;
}
