import { Ajv, type ErrorObject } from 'ajv';
import { AppError, type ErrorDetail } from '../errors.js';
import { LOGICAL_NAME, type ProfileInput, profileInputSchema } from './schema.js';

/**
 * Validates a profile request body against {@link profileInputSchema}. Every problem is reported at once
 * (`allErrors`), each naming its field as a JSON pointer, the value found and what would be accepted, so a
 * user fixes the whole body in one round trip.
 */
const ajv = new Ajv({ allErrors: true, verbose: true, strict: true });
const validate = ajv.compile<ProfileInput>(profileInputSchema);

/** Patterns whose regex means little to a reader, described in words. */
const PATTERN_WORDS: Record<string, string> = {
  [profileInputSchema.properties.organizationId.pattern]:
    'a GUID such as 6f2d1c3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f (the OrganizationId of the Dataverse environment)',
  [LOGICAL_NAME]:
    'a lower-case logical name: a letter or _, then up to 127 letters, digits or _ (^[a-z_][a-z0-9_]{0,127}$)',
  [profileInputSchema.properties.source.properties.url.pattern]:
    'the environment URL without a path, e.g. https://contoso.crm.dynamics.com',
  [profileInputSchema.properties.target.properties.connectionSecret.pattern]:
    'a secret name of 1-127 letters, digits or - (Key Vault naming rules)',
  [profileInputSchema.properties.target.properties.schema.pattern]:
    'a schema name: a letter or _, then up to 62 letters, digits or _',
  [profileInputSchema.properties.target.properties.tablePrefix.pattern]:
    'empty, or a letter or _ followed by up to 31 letters, digits or _',
};

export function validateProfileInput(body: unknown): ProfileInput {
  if (validate(body)) return body;
  const details = (validate.errors ?? []).map(describe);
  const summary = details.map((d) => `${d.field}: ${d.message}`).join('; ');
  throw new AppError(
    'VALIDATION_FAILED',
    `The profile is invalid (${details.length} problem${details.length === 1 ? '' : 's'}): ${summary}`,
    { details },
  );
}

function describe(error: ErrorObject): ErrorDetail {
  const at = error.instancePath || '/';
  const value = error.data;
  const parent = (error.parentSchema ?? {}) as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(error.params.additionalProperty);
      const allowed = Object.keys((parent.properties ?? {}) as object).join(', ');
      return {
        field: pointer(error.instancePath, key),
        message: `unknown property \`${key}\` at ${at} — allowed: ${allowed}`,
        value: (value as Record<string, unknown>)[key],
      };
    }
    case 'required': {
      const key = String(error.params.missingProperty);
      return { field: pointer(error.instancePath, key), message: `required property \`${key}\` is missing at ${at}` };
    }
    case 'pattern': {
      const pattern = String(error.params.pattern);
      return {
        field: at,
        message: `${show(value)} is not allowed — expected ${PATTERN_WORDS[pattern] ?? `a value matching ${pattern}`}`,
        value,
      };
    }
    case 'enum':
      return {
        field: at,
        message: `${show(value)} is not allowed — allowed: ${(error.params.allowedValues as unknown[]).join(', ')}`,
        value,
      };
    case 'minimum':
    case 'maximum':
      return {
        field: at,
        message: `${show(value)} is out of range — allowed: ${parent.minimum ?? '…'} to ${parent.maximum ?? '…'}`,
        value,
      };
    case 'type':
      return { field: at, message: `${show(value)} is not allowed — expected ${article(error.params.type)}`, value };
    case 'minLength':
    case 'maxLength':
      return {
        field: at,
        message: `${show(value)} has ${(value as string).length} characters — allowed: ${parent.minLength ?? 0} to ${parent.maxLength ?? '…'}`,
        value,
      };
    case 'minItems':
    case 'maxItems':
      return {
        field: at,
        message: `has ${(value as unknown[]).length} items — allowed: ${parent.minItems ?? 0} to ${parent.maxItems ?? '…'}`,
        value,
      };
    case 'uniqueItems': {
      const { i, j } = error.params as { i: number; j: number };
      const [first, again] = [Math.min(i, j), Math.max(i, j)];
      return {
        field: `${at}/${again}`,
        message: `${show((value as unknown[])[again])} is listed twice (items ${first} and ${again}) — list each name once`,
        value: (value as unknown[])[again],
      };
    }
    default:
      return { field: at, message: `${show(value)} ${error.message ?? 'is invalid'}`, value };
  }
}

/** Appends a property name to a JSON pointer, escaping `~` and `/` as RFC 6901 asks. */
function pointer(base: string, key: string): string {
  return `${base}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function article(type: unknown): string {
  const name = String(type);
  return /^[aeiou]/.test(name) ? `an ${name}` : `a ${name}`;
}
