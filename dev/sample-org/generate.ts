/**
 * Deterministic rows: the n-th account, contact or account–contact association is a pure function of
 * (seed, n), so an org of millions of rows costs no memory. A generated row's id encodes its index, which
 * makes a lookup by id O(1) without storing anything.
 */
import type { AttributeValue } from '../../lib/change/change-event.js';

export type TypedRow = Record<string, AttributeValue>;

export interface GeneratedCounts {
  account: number;
  contact: number;
  new_accountcontact: number;
}

/** All generated rows were created between these instants; modifications come later. */
const EPOCH_MS = Date.UTC(2024, 0, 1);

/** Row versions: generated rows hold 1000 + their global position; live writes continue above. */
export const FIRST_GENERATED_VERSION = 1000n;

const FIRST_NAMES = ['Ana', 'Ben', 'Chloé', 'Dmitri', 'Eva', 'Farah', 'Gustav', 'Hiro', 'Ines', 'Jonas', 'Kai', 'Lena'];
const LAST_NAMES = [
  'Adams',
  'Björk',
  'Castillo',
  'Dubois',
  'Eriksen',
  'Fischer',
  'García',
  'Huang',
  'Ivanova',
  'Jones',
];
const ADJECTIVES = ['Blue', 'Northern', 'Bright', 'Silver', 'Rapid', 'Quiet', 'Golden', 'Urban', 'Coastal', 'Prime'];
const NOUNS = ['Harbor', 'Systems', 'Foods', 'Logistics', 'Labs', 'Outfitters', 'Energy', 'Media', 'Partners', 'Works'];

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 32-bit hash of a few integers: the only source of "randomness" in generated rows. */
export function hash(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h = fmix32((h ^ (p >>> 0)) + Math.imul(h, 31) + Math.floor(p / 0x100000000));
  }
  return h;
}

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0').slice(-width);

/** The first 24 characters of every generated id of one entity (the rest is the index in hex). */
export function idPrefix(seed: number, objectTypeCode: number): string {
  const a = hash(seed, objectTypeCode, 1);
  const b = hash(seed, objectTypeCode, 2);
  const c = hash(seed, objectTypeCode, 3);
  return `${hex(a, 8)}-${hex(b, 4)}-4${hex(b >>> 16, 3)}-${(8 + (c & 3)).toString(16)}${hex(c >>> 4, 3)}-`;
}

export function generatedId(prefix: string, index: number): string {
  return prefix + hex(index, 12);
}

/** The index a generated id encodes, or undefined when the id is not one of this entity's generated rows. */
export function generatedIndex(prefix: string, id: string, count: number): number | undefined {
  if (id.length !== 36 || !id.startsWith(prefix)) return undefined;
  const index = Number.parseInt(id.slice(24), 16);
  return Number.isInteger(index) && index >= 0 && index < count ? index : undefined;
}

const DAY_SECONDS = 86_400;
/** Day number (since 1970) → `yyyy-MM-ddT`; generated rows fall on a few hundred days. */
const dayPrefixes = new Map<number, string>();
const TWO_DIGITS = Array.from({ length: 60 }, (_, n) => String(n).padStart(2, '0'));

/** ISO-8601 UTC without milliseconds, as the Web API prints date-times. */
export function isoSeconds(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  const day = Math.floor(seconds / DAY_SECONDS);
  let prefix = dayPrefixes.get(day);
  if (prefix === undefined) {
    const iso = new Date(day * DAY_SECONDS * 1000).toISOString();
    // Years outside 0000–9999 print with a sign and six digits: no shortcut for those.
    if (iso.length !== 24) return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
    prefix = iso.slice(0, 11);
    if (dayPrefixes.size >= 100_000) dayPrefixes.clear();
    dayPrefixes.set(day, prefix);
  }
  let rest = seconds - day * DAY_SECONDS;
  const hours = Math.floor(rest / 3600);
  rest -= hours * 3600;
  const minutes = Math.floor(rest / 60);
  return `${prefix}${TWO_DIGITS[hours]}:${TWO_DIGITS[minutes]}:${TWO_DIGITS[rest - minutes * 60]}Z`;
}

export class RowGenerator {
  readonly prefixes: Record<keyof GeneratedCounts, string>;
  /** Global position of each entity's first generated row, for version numbers. */
  private readonly versionBase: Record<keyof GeneratedCounts, bigint>;

  constructor(
    readonly seed: number,
    readonly counts: GeneratedCounts,
  ) {
    this.prefixes = {
      account: idPrefix(seed, 1),
      contact: idPrefix(seed, 2),
      new_accountcontact: idPrefix(seed, 10001),
    };
    this.versionBase = {
      account: FIRST_GENERATED_VERSION,
      contact: FIRST_GENERATED_VERSION + BigInt(counts.account),
      new_accountcontact: FIRST_GENERATED_VERSION + BigInt(counts.account + counts.contact),
    };
  }

  /** The first version number that no generated row holds. */
  get nextVersion(): bigint {
    return this.versionBase.new_accountcontact + BigInt(this.counts.new_accountcontact);
  }

  id(entity: keyof GeneratedCounts, index: number): string {
    return generatedId(this.prefixes[entity], index);
  }

  indexOf(entity: keyof GeneratedCounts, id: string): number | undefined {
    return generatedIndex(this.prefixes[entity], id, this.counts[entity]);
  }

  row(entity: keyof GeneratedCounts, index: number): TypedRow {
    switch (entity) {
      case 'account':
        return this.account(index);
      case 'contact':
        return this.contact(index);
      case 'new_accountcontact':
        return this.association(index);
    }
  }

  private times(entityCode: number, i: number): { createdon: string; modifiedon: string } {
    const created = EPOCH_MS + i * 17_000 + (hash(this.seed, entityCode, i, 7) % 17_000);
    const modified = created + (hash(this.seed, entityCode, i, 8) % 86_400) * 1000;
    return { createdon: isoSeconds(created), modifiedon: isoSeconds(modified) };
  }

  private account(i: number): TypedRow {
    const h = (field: number) => hash(this.seed, 1, i, field);
    const { createdon, modifiedon } = this.times(1, i);
    const inactive = i % 20 === 19;
    const row: TypedRow = {
      accountid: { type: 'guid', value: this.id('account', i) },
      name: { type: 'string', value: `${ADJECTIVES[h(1) % 10]} ${NOUNS[h(2) % 10]} ${i}` },
      accountnumber: { type: 'string', value: `ACC-${String(i).padStart(7, '0')}` },
      revenue:
        i % 10 === 9
          ? { type: 'null' }
          : { type: 'money', value: `${h(3) % 10_000_000}.${String(h(4) % 100).padStart(2, '0')}` },
      numberofemployees: i % 7 === 3 ? { type: 'null' } : { type: 'int', value: h(5) % 5000 },
      // Up to 21 significant digits: more than a double holds, so readers must keep the text.
      creditlimit: {
        type: 'decimal',
        value: `${h(6) % 2 ? '-' : ''}${((h(9) * 25 + (h(13) % 25)) % 100_000_000_000).toString()}.${String(h(10)).padStart(10, '0').slice(0, 10)}`,
      },
      industrycode: i % 11 === 5 ? { type: 'null' } : { type: 'optionset', value: (h(11) % 10) + 1 },
      primarycontactid:
        this.counts.contact > 0 && i % 5 !== 4
          ? { type: 'lookup', value: this.id('contact', (i * 3) % this.counts.contact), entityType: 'contact' }
          : { type: 'null' },
      parentaccountid:
        i % 10 === 0
          ? { type: 'null' }
          : { type: 'lookup', value: this.id('account', i - (i % 10)), entityType: 'account' },
      donotemail: { type: 'boolean', value: h(12) % 3 === 0 },
      description:
        i % 50 === 0
          ? { type: 'string', value: `Généré — compte ${i}.\nSecond line with "quotes" and ünïcödé ✓` }
          : i % 4 === 1
            ? { type: 'null' }
            : { type: 'string', value: `Generated account ${i} (seed ${this.seed}).` },
      statecode: { type: 'optionset', value: inactive ? 1 : 0 },
      statuscode: { type: 'optionset', value: inactive ? 2 : 1 },
      createdon: { type: 'datetime', value: createdon },
      modifiedon: { type: 'datetime', value: modifiedon },
      versionnumber: { type: 'bigint', value: String(this.versionBase.account + BigInt(i)) },
    };
    return row;
  }

  private contact(i: number): TypedRow {
    const h = (field: number) => hash(this.seed, 2, i, field);
    const { createdon, modifiedon } = this.times(2, i);
    const first = FIRST_NAMES[h(1) % FIRST_NAMES.length];
    const last = LAST_NAMES[h(2) % LAST_NAMES.length];
    const inactive = i % 25 === 24;
    let parent: AttributeValue = { type: 'null' };
    if (i % 6 === 5 && i > 0) parent = { type: 'lookup', value: this.id('contact', i - 1), entityType: 'contact' };
    else if (this.counts.account > 0 && i % 6 !== 4)
      parent = { type: 'lookup', value: this.id('account', i % this.counts.account), entityType: 'account' };
    const interests = [0, 1, 2, 3, 4].filter((k) => (h(3) >>> k) & 1 && k < (h(4) % 4) + 1).map((k) => 100000000 + k);
    const birth = Date.UTC(1950 + (h(5) % 50), h(6) % 12, 1 + (h(7) % 28));
    return {
      contactid: { type: 'guid', value: this.id('contact', i) },
      fullname: { type: 'string', value: `${first} ${last}` },
      firstname: { type: 'string', value: first },
      lastname: { type: 'string', value: last },
      emailaddress1: {
        type: 'string',
        value: `${first}.${last}.${i}@example.com`
          .normalize('NFD')
          .replace(/[\u0300-\u036f]/g, '')
          .toLowerCase(),
      },
      parentcustomerid: parent,
      birthdate: i % 4 === 3 ? { type: 'null' } : { type: 'datetime', value: isoSeconds(birth) },
      gendercode: i % 3 === 2 ? { type: 'null' } : { type: 'optionset', value: (h(8) % 2) + 1 },
      new_interests: interests.length ? { type: 'multiselect', value: interests } : { type: 'null' },
      statecode: { type: 'optionset', value: inactive ? 1 : 0 },
      statuscode: { type: 'optionset', value: inactive ? 2 : 1 },
      createdon: { type: 'datetime', value: createdon },
      modifiedon: { type: 'datetime', value: modifiedon },
      versionnumber: { type: 'bigint', value: String(this.versionBase.contact + BigInt(i)) },
    };
  }

  /** Association k links contact 4k with a pseudo-random account. */
  private association(k: number): TypedRow {
    return {
      new_accountcontactid: { type: 'guid', value: this.id('new_accountcontact', k) },
      accountid: { type: 'guid', value: this.id('account', hash(this.seed, 10001, k) % this.counts.account) },
      contactid: { type: 'guid', value: this.id('contact', 4 * k) },
      versionnumber: { type: 'bigint', value: String(this.versionBase.new_accountcontact + BigInt(k)) },
    };
  }
}

/** How many associations the generator makes for the given account and contact counts. */
export function associationCount(accounts: number, contacts: number): number {
  return accounts > 0 ? Math.floor((contacts + 3) / 4) : 0;
}
