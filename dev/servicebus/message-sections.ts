/**
 * An AMQP 1.0 message kept as its encoded sections, so body, properties and application properties reach the
 * receiver byte for byte as the sender wrote them; only header and annotations are rewritten per delivery.
 */
import rhea, { type Typed } from 'rhea';
import type { Reader, Writer } from 'rhea/typings/types.js';

const { message } = rhea;
/** rhea's codec; its typings leave the Reader and Writer classes off the `types` object. */
const types = rhea.types as typeof rhea.types & {
  Reader: new (buffer: Buffer) => Reader;
  Writer: new () => Writer;
};

const SECTION = {
  header: 0x70,
  deliveryAnnotations: 0x71,
  messageAnnotations: 0x72,
  properties: 0x73,
  applicationProperties: 0x74,
} as const;

const SYMBOLIC_SECTIONS: Record<string, number> = {
  'amqp:header:list': 0x70,
  'amqp:delivery-annotations:map': 0x71,
  'amqp:message-annotations:map': 0x72,
  'amqp:properties:list': 0x73,
  'amqp:application-properties:map': 0x74,
};

export interface MessageSections {
  header?: Buffer;
  deliveryAnnotations?: Buffer;
  messageAnnotations?: Buffer;
  properties?: Buffer;
  applicationProperties?: Buffer;
  /** Body sections and footer, untouched. */
  body: Buffer;
}

/** A value for a map section: a plain JS value (rhea picks the AMQP type) or an explicitly typed one. */
export type MapValue = string | number | boolean | Date | Buffer | Typed | null;

function sectionCode(descriptor: unknown): number {
  if (typeof descriptor === 'number') return descriptor;
  if (typeof descriptor === 'string') return SYMBOLIC_SECTIONS[descriptor] ?? -1;
  return -1;
}

export function splitMessage(encoded: Buffer): MessageSections {
  const reader = new types.Reader(encoded);
  const sections: MessageSections = { body: Buffer.alloc(0) };
  while (reader.remaining()) {
    const start = reader.position;
    const section = reader.read();
    const bytes = encoded.subarray(start, reader.position);
    switch (sectionCode(section.descriptor?.value)) {
      case SECTION.header:
        sections.header = bytes;
        break;
      case SECTION.deliveryAnnotations:
        sections.deliveryAnnotations = bytes;
        break;
      case SECTION.messageAnnotations:
        sections.messageAnnotations = bytes;
        break;
      case SECTION.properties:
        sections.properties = bytes;
        break;
      case SECTION.applicationProperties:
        sections.applicationProperties = bytes;
        break;
      default:
        // Everything from the first body section on (body, footer) stays as one opaque block.
        sections.body = encoded.subarray(start);
        return sections;
    }
  }
  return sections;
}

export function joinMessage(sections: MessageSections): Buffer {
  const parts = [
    sections.header,
    sections.deliveryAnnotations,
    sections.messageAnnotations,
    sections.properties,
    sections.applicationProperties,
    sections.body,
  ];
  return Buffer.concat(parts.filter((p): p is Buffer => p !== undefined));
}

/** The decoded fields of the header and properties sections (fixed AMQP types, so decoding loses nothing). */
export function readEnvelope(sections: MessageSections): Record<string, unknown> {
  const head = Buffer.concat([sections.header ?? Buffer.alloc(0), sections.properties ?? Buffer.alloc(0)]);
  return head.length ? (message.decode(head) as Record<string, unknown>) : {};
}

/** One entry of a map section: its key as text and its value's raw bytes. */
interface RawEntry {
  key: string;
  raw: Buffer;
}

function readMapEntries(section: Buffer | undefined): RawEntry[] {
  if (!section) return [];
  const reader = new types.Reader(section);
  const { typecode } = reader.read_constructor();
  if (typecode === 0x40) return [];
  const { count } = reader.read_size_count(typecode === 0xc1 ? 1 : 4);
  const entries: RawEntry[] = [];
  for (let i = 0; i < count; i += 2) {
    const key = String(reader.read().value);
    const start = reader.position;
    reader.read();
    entries.push({ key, raw: section.subarray(start, reader.position) });
  }
  return entries;
}

/** Decodes one map section into plain values (annotations and properties the stand-in needs to read). */
export function readMap(section: Buffer | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const entry of readMapEntries(section)) out[entry.key] = types.unwrap(new types.Reader(entry.raw).read());
  return out;
}

function encodeValue(value: MapValue): Buffer {
  const writer = new types.Writer();
  writer.write(types.wrap(value));
  return writer.toBuffer();
}

/**
 * The map section `code` with `updates` set (keys as symbols for annotations, strings for application
 * properties); entries not updated keep their original bytes.
 */
function mergeMapSection(
  code: number,
  original: Buffer | undefined,
  updates: Record<string, MapValue | undefined>,
  symbolKeys: boolean,
): Buffer | undefined {
  const kept = readMapEntries(original).filter((e) => !(e.key in updates));
  const added = Object.entries(updates)
    .filter((e): e is [string, MapValue] => e[1] !== undefined)
    .map(([key, value]) => ({ key, raw: encodeValue(value) }));
  const entries = [...kept, ...added];
  if (!entries.length && !original) return undefined;
  const items = Buffer.concat(
    entries.flatMap((e) => [encodeValue(symbolKeys ? types.wrap_symbol(e.key) : types.wrap_string(e.key)), e.raw]),
  );
  const head = Buffer.alloc(12);
  head.writeUInt8(0x00, 0);
  head.writeUInt8(0x53, 1);
  head.writeUInt8(code, 2);
  head.writeUInt8(0xd1, 3);
  head.writeUInt32BE(items.length + 4, 4);
  head.writeUInt32BE(entries.length * 2, 8);
  return Buffer.concat([head, items]);
}

export function withApplicationProperties(
  sections: MessageSections,
  updates: Record<string, MapValue | undefined>,
): MessageSections {
  return {
    ...sections,
    applicationProperties: mergeMapSection(
      SECTION.applicationProperties,
      sections.applicationProperties,
      updates,
      false,
    ),
  };
}

export function withMessageAnnotations(
  sections: MessageSections,
  updates: Record<string, MapValue | undefined>,
): MessageSections {
  return {
    ...sections,
    messageAnnotations: mergeMapSection(SECTION.messageAnnotations, sections.messageAnnotations, updates, true),
  };
}

/** Gives a message without a message id one, as Service Bus does (the SDK cannot settle without it). */
export function withMessageId(sections: MessageSections, messageId: string): MessageSections {
  const properties = { ...(sections.properties ? message.decode(sections.properties) : {}), message_id: messageId };
  return { ...sections, properties: splitMessage(message.encode({ ...properties, body: null })).properties };
}

/** A fresh header carrying the delivery count (the only header field Service Bus changes). */
export function withDeliveryCount(sections: MessageSections, deliveryCount: number): MessageSections {
  const original = sections.header ? (message.decode(sections.header) as Record<string, unknown>) : {};
  const header = {
    durable: original.durable,
    priority: original.priority,
    ttl: original.ttl,
    first_acquirer: deliveryCount === 0,
    delivery_count: deliveryCount,
  };
  return { ...sections, header: splitMessage(message.encode({ ...header, body: null })).header };
}

/** The messages inside a batch transfer (message format 0x80013700): one encoded message per data section. */
export function unpackBatch(encoded: Buffer): Buffer[] {
  const body = message.decode(encoded).body as { content?: Buffer | Buffer[]; multiple?: boolean } | undefined;
  if (!body?.content) return [];
  return body.multiple ? (body.content as Buffer[]) : [body.content as Buffer];
}
