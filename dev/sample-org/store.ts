/**
 * The sample org's data: generated rows plus an overlay of writes and deletes, one global version counter
 * (like SQL rowversion, shared by all tables), and the change-tracking state the delta links read.
 */
import { randomUUID } from 'node:crypto';
import { sqlGuidKey } from '../../lib/dataverse/sql-guid-order.js';
import { type GeneratedCounts, isoSeconds, RowGenerator, type TypedRow } from './generate.js';
import type { SampleEntity } from './schema.js';

type EntityName = keyof GeneratedCounts;

interface OverlayEntry {
  id: string;
  /** The row as it is now; undefined once deleted. */
  row?: TypedRow;
  version: bigint;
  /** When the row was deleted (ISO), for deletes. */
  deletedOn?: string;
}

export interface ChangeRecord {
  id: string;
  version: bigint;
  row?: TypedRow;
}

/** A row met by a read in id order. */
export interface OrderedRow {
  id: string;
  key: bigint;
  row: TypedRow;
}

/** Bounds of a read in SQL Server's uniqueidentifier order: `after < key ≤ upTo`; absent means open. */
export interface KeyRange {
  after?: bigint;
  upTo?: bigint;
}

const LOW_BITS = 80n;
const LOW_MASK = (1n << LOW_BITS) - 1n;

export class EntityStore {
  readonly overlay = new Map<string, OverlayEntry>();
  private readonly created: string[] = [];
  private readonly createdPosition = new Map<string, number>();
  /** Rows created since start, ascending in SQL order (generated rows need no index: see {@link generatedKey}). */
  private readonly createdByKey: { key: bigint; id: string }[] = [];
  private deletedCount = 0;
  /**
   * A generated id is prefix + 12 hex digits of its index, and SQL Server compares the last 12 digits
   * first: its key is index · 2^80 + this constant, so generated rows are in SQL order by index.
   */
  private readonly generatedLow: bigint;

  constructor(
    readonly entity: SampleEntity,
    private readonly generator: RowGenerator,
  ) {
    this.generatedLow = sqlGuidKey(generator.id(this.name, 0)) & LOW_MASK;
  }

  private generatedKey(index: number): bigint {
    return (BigInt(index) << LOW_BITS) | this.generatedLow;
  }

  /** The first generated index whose key is above `after`. */
  private firstGeneratedAbove(after: bigint | undefined): number {
    if (after === undefined) return 0;
    const high = Number(after >> LOW_BITS);
    return Math.min(this.generatedCount, (after & LOW_MASK) < this.generatedLow ? high : high + 1);
  }

  /** The last generated index whose key is at most `upTo` (-1 when none). */
  private lastGeneratedAtMost(upTo: bigint | undefined): number {
    if (upTo === undefined) return this.generatedCount - 1;
    const high = Number(upTo >> LOW_BITS);
    return Math.min(this.generatedCount - 1, (upTo & LOW_MASK) >= this.generatedLow ? high : high - 1);
  }

  /** Index of the first created row whose key is above `key` (binary search). */
  private createdAbove(key: bigint | undefined): number {
    if (key === undefined) return 0;
    let lo = 0;
    let hi = this.createdByKey.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.createdByKey[mid].key <= key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Live rows with keys in the range, ascending in SQL Server's order (generated and created rows merged). */
  *ascending(range: KeyRange): Generator<OrderedRow> {
    let g = this.firstGeneratedAbove(range.after);
    const gEnd = this.lastGeneratedAtMost(range.upTo);
    let c = this.createdAbove(range.after);
    const cEnd = range.upTo === undefined ? this.createdByKey.length : this.createdAbove(range.upTo);
    while (g <= gEnd || c < cEnd) {
      const gKey = g <= gEnd ? this.generatedKey(g) : undefined;
      const created = c < cEnd ? this.createdByKey[c] : undefined;
      let id: string;
      let key: bigint;
      if (created && (gKey === undefined || created.key < gKey)) {
        ({ id, key } = created);
        c++;
      } else {
        id = this.generator.id(this.name, g);
        key = gKey as bigint;
        g++;
      }
      const row = this.get(id);
      if (row) yield { id, key, row };
    }
  }

  /** Live rows of these ids with keys in the range, in SQL Server's order (an `id eq … or id eq …` filter). */
  *withIds(ids: readonly string[], range: KeyRange, descending: boolean): Generator<OrderedRow> {
    const keyed = [...new Set(ids)]
      .map((id) => ({ id, key: sqlGuidKey(id) }))
      .filter(
        ({ key }) =>
          (range.after === undefined || key > range.after) && (range.upTo === undefined || key <= range.upTo),
      )
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    if (descending) keyed.reverse();
    for (const { id, key } of keyed) {
      const row = this.get(id);
      if (row) yield { id, key, row };
    }
  }

  /** Live rows with keys in the range, descending in SQL Server's order. */
  *descending(range: KeyRange): Generator<OrderedRow> {
    let g = this.lastGeneratedAtMost(range.upTo);
    const gStart = this.firstGeneratedAbove(range.after);
    let c = (range.upTo === undefined ? this.createdByKey.length : this.createdAbove(range.upTo)) - 1;
    const cStart = this.createdAbove(range.after);
    while (g >= gStart || c >= cStart) {
      const gKey = g >= gStart ? this.generatedKey(g) : undefined;
      const created = c >= cStart ? this.createdByKey[c] : undefined;
      let id: string;
      let key: bigint;
      if (created && (gKey === undefined || created.key > gKey)) {
        ({ id, key } = created);
        c--;
      } else {
        id = this.generator.id(this.name, g);
        key = gKey as bigint;
        g--;
      }
      const row = this.get(id);
      if (row) yield { id, key, row };
    }
  }

  private get name(): EntityName {
    return this.entity.logicalName as EntityName;
  }

  get generatedCount(): number {
    return this.generator.counts[this.name];
  }

  /** Positions run over generated rows first, then rows created since start, in creation order. */
  get positions(): number {
    return this.generatedCount + this.created.length;
  }

  get liveCount(): number {
    return this.positions - this.deletedCount;
  }

  idAt(position: number): string {
    return position < this.generatedCount
      ? this.generator.id(this.name, position)
      : this.created[position - this.generatedCount];
  }

  positionOf(id: string): number | undefined {
    return this.generator.indexOf(this.name, id) ?? this.createdPosition.get(id);
  }

  /** The row at a position, or undefined when it was deleted. */
  rowAt(position: number): TypedRow | undefined {
    if (position < this.generatedCount) {
      const entry = this.overlay.get(this.generator.id(this.name, position));
      return entry ? entry.row : this.generator.row(this.name, position);
    }
    return this.overlay.get(this.created[position - this.generatedCount])?.row;
  }

  get(id: string): TypedRow | undefined {
    const key = id.toLowerCase();
    const entry = this.overlay.get(key);
    if (entry) return entry.row;
    const index = this.generator.indexOf(this.name, key);
    return index === undefined ? undefined : this.generator.row(this.name, index);
  }

  put(id: string, row: TypedRow, version: bigint): void {
    const key = id.toLowerCase();
    if (this.positionOf(key) === undefined) {
      this.createdPosition.set(key, this.positions);
      this.created.push(key);
      const sqlKey = sqlGuidKey(key);
      this.createdByKey.splice(this.createdAbove(sqlKey), 0, { key: sqlKey, id: key });
    } else if (this.overlay.has(key) && !this.overlay.get(key)?.row) {
      this.deletedCount--;
    }
    this.overlay.set(key, { id: key, row, version });
  }

  remove(id: string, version: bigint, deletedOn: string): void {
    const key = id.toLowerCase();
    this.overlay.set(key, { id: key, version, deletedOn });
    this.deletedCount++;
  }

  /** Changes with from < version ≤ upTo, oldest first, starting after `afterVersion`. */
  changes(from: bigint, upTo: bigint, afterVersion: bigint, limit: number): ChangeRecord[] {
    const out: ChangeRecord[] = [];
    const lower = afterVersion > from ? afterVersion : from;
    for (const entry of this.overlay.values()) {
      if (entry.version > lower && entry.version <= upTo) out.push(entry);
    }
    out.sort((a, b) => (a.version < b.version ? -1 : a.version > b.version ? 1 : 0));
    return out.slice(0, limit);
  }
}

export class OrgStore {
  readonly generator: RowGenerator;
  readonly tables: Record<EntityName, EntityStore>;
  /** The newest version handed out; the next write takes version + 1. */
  version: bigint;
  /** Delta tokens below this version answer "expired". */
  oldestValidVersion: bigint;

  constructor(seed: number, counts: GeneratedCounts, entities: Record<EntityName, SampleEntity>) {
    this.generator = new RowGenerator(seed, counts);
    this.tables = {
      account: new EntityStore(entities.account, this.generator),
      contact: new EntityStore(entities.contact, this.generator),
      new_accountcontact: new EntityStore(entities.new_accountcontact, this.generator),
    };
    this.version = this.generator.nextVersion;
    this.oldestValidVersion = this.version;
  }

  table(entity: string): EntityStore | undefined {
    return (this.tables as Record<string, EntityStore>)[entity];
  }

  /** Every token handed out so far stops working (like a token past the org's retention). */
  expireDeltaTokens(): void {
    this.version++;
    this.oldestValidVersion = this.version;
  }

  private stamp(row: TypedRow, created: boolean): { version: bigint; now: string } {
    const version = ++this.version;
    const now = isoSeconds(Date.now());
    row.versionnumber = { type: 'bigint', value: String(version) };
    if (created && 'createdon' in row) row.createdon = { type: 'datetime', value: now };
    if ('modifiedon' in row) row.modifiedon = { type: 'datetime', value: now };
    return { version, now };
  }

  create(entity: SampleEntity, attributes: TypedRow, id: string = randomUUID()): { id: string; row: TypedRow } {
    const table = this.tables[entity.logicalName as EntityName];
    const key = id.toLowerCase();
    const row: TypedRow = {};
    for (const a of entity.attributes) row[a.logicalName] = { type: 'null' };
    Object.assign(row, attributes);
    row[entity.primaryIdAttribute] = { type: 'guid', value: key };
    if (row.statecode?.type === 'null' && entity.attributes.some((a) => a.logicalName === 'statecode')) {
      row.statecode = { type: 'optionset', value: 0 };
      row.statuscode = { type: 'optionset', value: 1 };
    }
    deriveComputed(entity, row);
    const { version } = this.stamp(row, true);
    table.put(key, row, version);
    return { id: key, row };
  }

  update(entity: SampleEntity, id: string, changes: TypedRow): TypedRow | undefined {
    const table = this.tables[entity.logicalName as EntityName];
    const current = table.get(id);
    if (!current) return undefined;
    const row: TypedRow = { ...current, ...changes };
    deriveComputed(entity, row);
    const { version } = this.stamp(row, false);
    table.put(id, row, version);
    return row;
  }

  delete(entity: SampleEntity, id: string): { row: TypedRow; version: bigint; deletedOn: string } | undefined {
    const table = this.tables[entity.logicalName as EntityName];
    const row = table.get(id);
    if (!row) return undefined;
    const version = ++this.version;
    const deletedOn = new Date().toISOString();
    table.remove(id, version, deletedOn);
    return { row, version, deletedOn };
  }

  /** The intersect row linking the two records, if any (a scan of the overlay plus one generated check). */
  findAssociation(accountId: string, contactId: string): string | undefined {
    const table = this.tables.new_accountcontact;
    const a = accountId.toLowerCase();
    const c = contactId.toLowerCase();
    for (const entry of table.overlay.values()) {
      if (entry.row && entry.row.accountid.type === 'guid' && entry.row.accountid.value === a) {
        if (entry.row.contactid.type === 'guid' && entry.row.contactid.value === c) return entry.id;
      }
    }
    const contactIndex = this.generator.indexOf('contact', c);
    if (contactIndex !== undefined && contactIndex % 4 === 0) {
      const k = contactIndex / 4;
      if (k < this.generator.counts.new_accountcontact) {
        const id = this.generator.id('new_accountcontact', k);
        const row = table.get(id);
        if (row && row.accountid.type === 'guid' && row.accountid.value === a) return id;
      }
    }
    return undefined;
  }
}

/** Columns Dataverse computes itself. */
function deriveComputed(entity: SampleEntity, row: TypedRow): void {
  if (entity.logicalName === 'contact') {
    const part = (v: TypedRow[string] | undefined) => (v && v.type === 'string' ? v.value : '');
    const full = [part(row.firstname), part(row.lastname)].filter(Boolean).join(' ');
    row.fullname = full ? { type: 'string', value: full } : { type: 'null' };
  }
}
