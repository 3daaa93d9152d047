/**
 * What one organization lets this process have in flight. Dataverse's service protection counts per user
 * (52 concurrent requests), so every client of one organization URL in the process shares one cap, and
 * partitioned copies share one set of adaptive read lanes: they start small, grow while a wider round of
 * reads brings more rows per second (page latency is being hidden), and halve on a 429. Instances that copy
 * from one organization at the same time split its cap between them (lib/sync/organization-share.ts sets
 * each one's share from the claims in the control store).
 */

/** Dataverse's concurrent-request limit per user. */
export const DEFAULT_ORGANIZATION_CONCURRENCY = 52;
/** Read lanes a partitioned copy starts with. */
export const INITIAL_LANES = 4;

/** A counting semaphore whose size can change. */
export class Slots {
  private used = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private size: number) {}

  get capacity(): number {
    return this.size;
  }

  get inUse(): number {
    return this.used;
  }

  resize(size: number): void {
    this.size = Math.max(1, Math.floor(size));
    this.wake();
  }

  async acquire(): Promise<void> {
    if (this.used < this.size) {
      this.used++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    this.used--;
    this.wake();
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await work();
    } finally {
      this.release();
    }
  }

  private wake(): void {
    while (this.used < this.size && this.waiting.length) {
      this.used++;
      this.waiting.shift()?.();
    }
  }
}

/**
 * Concurrent page reads of partitioned copies: slow start (doubling) while each round — as many pages as
 * there are lanes — reads at least 10 % more rows per second than the one before and every lane was busy;
 * after a 429 it halves and grows by one lane per round from then on. Never above the organization's cap.
 */
export class ReadLanes {
  private readonly slots: Slots;
  private round = { started: 0, pages: 0, rows: 0, saturated: false };
  private previousRate: number | undefined;
  private slowStart = true;
  /** Highest lane count reached, for status and benchmarks. */
  peak: number;

  constructor(
    private cap: number,
    initial = INITIAL_LANES,
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.slots = new Slots(Math.min(initial, cap));
    this.peak = this.slots.capacity;
  }

  get limit(): number {
    return this.slots.capacity;
  }

  get inFlight(): number {
    return this.slots.inUse;
  }

  setCap(cap: number): void {
    this.cap = Math.max(1, cap);
    if (this.slots.capacity > this.cap) this.slots.resize(this.cap);
  }

  async acquire(): Promise<void> {
    await this.slots.acquire();
    if (this.round.pages === 0 && this.round.started === 0) this.round.started = this.clock();
    if (this.slots.inUse >= this.slots.capacity) this.round.saturated = true;
  }

  /** A lane taken but not used for a read: back without counting in the round. */
  giveBack(): void {
    this.slots.release();
  }

  /** A page read finished with `rows` rows (0 for a failed read). */
  release(rows: number): void {
    this.slots.release();
    const round = this.round;
    round.pages++;
    round.rows += rows;
    if (round.pages < this.slots.capacity) return;
    const seconds = Math.max((this.clock() - round.started) / 1000, 1e-3);
    const rate = round.rows / seconds;
    if (round.saturated && this.slots.capacity < this.cap) {
      if (this.previousRate === undefined || rate > this.previousRate * 1.1) {
        const next = this.slowStart ? this.slots.capacity * 2 : this.slots.capacity + 1;
        this.slots.resize(Math.min(this.cap, next));
        this.peak = Math.max(this.peak, this.slots.capacity);
      }
    }
    this.previousRate = rate;
    this.round = { started: this.clock(), pages: 0, rows: 0, saturated: false };
  }

  /** Dataverse answered 429: half the lanes, then additive growth. */
  throttled(): void {
    this.slowStart = false;
    this.previousRate = undefined;
    this.slots.resize(Math.max(1, Math.floor(this.slots.capacity / 2)));
    this.round = { started: this.clock(), pages: 0, rows: 0, saturated: false };
  }
}

export interface OrganizationLimits {
  /** Every Web API request to the organization from this process. */
  requests: Slots;
  lanes: ReadLanes;
}

interface Entry extends OrganizationLimits {
  /** The organization's cap across every instance (`DataverseMaxConcurrency`). */
  total: number;
  /** Instances sharing it, this one included (1 when this one copies alone or not at all). */
  holders: number;
}

const registry = new Map<string, Entry>();

export const organizationKey = (url: string): string => url.trim().replace(/\/+$/, '').toLowerCase();

/** This instance's part of the organization's cap: an even split, at least one request. */
export function shareOf(total: number, holders: number): number {
  return Math.max(1, Math.floor(total / Math.max(1, holders)));
}

function entry(url: string): Entry {
  const key = organizationKey(url);
  let limits = registry.get(key);
  if (!limits) {
    const total = DEFAULT_ORGANIZATION_CONCURRENCY;
    limits = { requests: new Slots(total), lanes: new ReadLanes(total), total, holders: 1 };
    registry.set(key, limits);
  }
  return limits;
}

function apply(limits: Entry): void {
  const share = shareOf(limits.total, limits.holders);
  limits.requests.resize(share);
  limits.lanes.setCap(share);
}

/**
 * The organization's limits in this process, created on first use. A `cap` given sets the organization's
 * total (the latest caller's setting wins; every client of an organization is built from the same setting);
 * this instance gets its share of it.
 */
export function organizationLimits(url: string, cap?: number): OrganizationLimits {
  const limits = entry(url);
  if (cap !== undefined) {
    limits.total = cap;
    apply(limits);
  }
  return limits;
}

/** How many instances share the organization's cap now (this one included); answers this instance's share. */
export function shareOrganization(url: string, holders: number): number {
  const limits = entry(url);
  limits.holders = Math.max(1, holders);
  apply(limits);
  return shareOf(limits.total, limits.holders);
}
