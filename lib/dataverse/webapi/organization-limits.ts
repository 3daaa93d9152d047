/**
 * What one organization lets this process have in flight. Dataverse's service protection counts per user
 * (52 concurrent requests), so every client of one organization URL in the process shares one cap, and
 * partitioned copies share one set of adaptive read lanes: they start small, grow while a wider round of
 * reads brings more rows per second (page latency is being hidden), and halve on a 429. Several instances
 * each have their own cap and lanes; together they can exceed 52, and then Dataverse's 429s halve every
 * instance's lanes until they fit.
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

const registry = new Map<string, OrganizationLimits>();

const keyOf = (url: string): string => url.trim().replace(/\/+$/, '').toLowerCase();

/**
 * The organization's limits in this process, created on first use. A `cap` given resizes both (the latest
 * caller's setting wins; every client of an organization is built from the same setting).
 */
export function organizationLimits(url: string, cap?: number): OrganizationLimits {
  const key = keyOf(url);
  let limits = registry.get(key);
  if (!limits) {
    const size = cap ?? DEFAULT_ORGANIZATION_CONCURRENCY;
    limits = { requests: new Slots(size), lanes: new ReadLanes(size) };
    registry.set(key, limits);
  } else if (cap !== undefined) {
    limits.requests.resize(cap);
    limits.lanes.setCap(cap);
  }
  return limits;
}
