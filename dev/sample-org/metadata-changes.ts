/**
 * What an admin changes in a live organization's metadata, at run time: a text attribute's maximum length,
 * a decimal's precision, an option added to a choice, an attribute added or deleted. Tests use it to see the
 * export follow Dataverse.
 * The sample tables are shared by every org of a process, so `reset()` puts back what was changed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type AttrInput, attr, entityByName, type SampleAttribute } from './schema.js';

export interface MetadataChanges {
  /** A string or memo attribute's MaxLength. */
  setMaxLength(entity: string, attribute: string, maxLength: number): void;
  /** A decimal or money attribute's Precision (digits after the point) and, optionally, its value range. */
  setPrecision(entity: string, attribute: string, precision: number, range?: { min: number; max: number }): void;
  /** An option of a choice (picklist, multi-select, status) with its label. */
  addOption(entity: string, attribute: string, value: number, label: string): void;
  /** Adds an attribute (custom, so writable): in the metadata and the rows served, null until a write sets it. */
  addAttribute(entity: string, attribute: AttrInput): void;
  /** Deletes an attribute: gone from the metadata, the rows served and the webhooks' images. */
  deleteAttribute(entity: string, attribute: string): void;
  /** Puts every changed attribute back as it was. */
  reset(): void;
}

export function metadataChanges(): MetadataChanges {
  const undo: Array<() => void> = [];
  const find = (entity: string, attribute: string): SampleAttribute => {
    const found = entityByName(entity)?.attributes.find((a) => a.logicalName === attribute);
    if (!found) throw new Error(`the sample org has no attribute ${entity}.${attribute}`);
    return found;
  };
  const remember = <K extends keyof SampleAttribute>(a: SampleAttribute, key: K) => {
    const before = a[key];
    undo.push(() => {
      a[key] = before;
    });
  };
  return {
    setMaxLength(entity, attribute, maxLength) {
      const a = find(entity, attribute);
      if (a.kind !== 'string' && a.kind !== 'memo') throw new Error(`${entity}.${attribute} is not a text attribute`);
      remember(a, 'maxLength');
      a.maxLength = maxLength;
    },
    setPrecision(entity, attribute, precision, range) {
      const a = find(entity, attribute);
      if (a.kind !== 'decimal' && a.kind !== 'money') throw new Error(`${entity}.${attribute} is not a decimal`);
      remember(a, 'precision');
      a.precision = precision;
      if (range) {
        remember(a, 'minValue');
        remember(a, 'maxValue');
        a.minValue = range.min;
        a.maxValue = range.max;
      }
    },
    addOption(entity, attribute, value, label) {
      const set = find(entity, attribute).optionSet;
      if (!set) throw new Error(`${entity}.${attribute} is not a choice`);
      const before = set.options;
      undo.push(() => {
        set.options = before;
      });
      set.options = [...before, { value, label }];
    },
    addAttribute(entity, input) {
      const list = entityByName(entity)?.attributes;
      if (!list) throw new Error(`the sample org has no table ${entity}`);
      if (!/^[a-z][a-z0-9_]*$/.test(input.logicalName)) {
        throw new Error(`an attribute's logical name is lower-case letters, digits and _; got ${input.logicalName}`);
      }
      if (list.some((a) => a.logicalName === input.logicalName)) {
        throw new Error(`${entity}.${input.logicalName} exists already`);
      }
      const added = attr(input);
      list.push(added);
      undo.push(() => {
        list.splice(list.indexOf(added), 1);
      });
    },
    deleteAttribute(entity, attribute) {
      const a = find(entity, attribute);
      const list = entityByName(entity)!.attributes;
      const at = list.indexOf(a);
      list.splice(at, 1);
      undo.push(() => {
        list.splice(at, 0, a);
      });
    },
    reset() {
      while (undo.length) undo.pop()?.();
    },
  };
}

/** Where `npm start`'s sample org takes metadata changes over HTTP (the stack runs in its own process). */
export const METADATA_CHANGE_PATH = '/_sample/metadata';

type ChangeRequest =
  | { change: 'maxLength'; entity: string; attribute: string; maxLength: number }
  | { change: 'precision'; entity: string; attribute: string; precision: number }
  | { change: 'option'; entity: string; attribute: string; value: number; label: string }
  | { change: 'addAttribute'; entity: string; attribute: string; kind: string; maxLength?: number }
  | { change: 'deleteAttribute'; entity: string; attribute: string };

/** The kinds `POST /_sample/metadata` adds: those whose definition needs nothing but a name (and a length). */
const ADDABLE_KINDS = ['string', 'memo', 'integer'] as const;

/** `POST /_sample/metadata` with one ChangeRequest as JSON: 204 when applied, 400 naming what was wrong. */
export async function serveMetadataChange(
  changes: MetadataChanges,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const answer = (status: number, message?: string) => {
    res.writeHead(status, message ? { 'content-type': 'text/plain' } : {});
    res.end(message);
  };
  if (req.method !== 'POST') return answer(405, 'POST a metadata change as JSON');
  let body = '';
  for await (const chunk of req) body += chunk;
  try {
    const r = JSON.parse(body) as ChangeRequest;
    if (r.change === 'maxLength') changes.setMaxLength(r.entity, r.attribute, Number(r.maxLength));
    else if (r.change === 'precision') changes.setPrecision(r.entity, r.attribute, Number(r.precision));
    else if (r.change === 'option') changes.addOption(r.entity, r.attribute, Number(r.value), String(r.label));
    else if (r.change === 'addAttribute') {
      const kind = ADDABLE_KINDS.find((k) => k === r.kind);
      if (!kind) return answer(400, `kind must be one of ${ADDABLE_KINDS.join(', ')}; got ${JSON.stringify(r.kind)}`);
      const text = kind === 'string' || kind === 'memo';
      changes.addAttribute(r.entity, {
        logicalName: String(r.attribute),
        kind,
        ...(text ? { maxLength: Number(r.maxLength ?? 100) } : {}),
      });
    } else if (r.change === 'deleteAttribute') changes.deleteAttribute(r.entity, r.attribute);
    else return answer(400, 'change must be maxLength, precision, option, addAttribute or deleteAttribute');
    answer(204);
  } catch (err) {
    answer(400, err instanceof Error ? err.message : String(err));
  }
}
