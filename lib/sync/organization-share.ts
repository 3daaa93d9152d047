/**
 * Instances that copy from one organization at the same time split its Dataverse concurrency between them.
 * Each claims the organization in the control store while it copies and renews the claim every heartbeat;
 * the claims alive say how many instances share the cap, and each takes an even part of it
 * (`shareOrganization`). A new claimant that finds others waits one heartbeat before it reads, so by then
 * every other instance has seen it and narrowed its own part: together they stay within the cap, but for
 * requests already in flight when a part narrows. A claim that stops beating (a crashed instance) expires
 * after three heartbeats and its part goes back to the others.
 */
import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { organizationKey, shareOrganization } from '../dataverse/webapi/organization-limits.js';
import type { Logger } from '../log.js';
import type { ControlStore } from '../profiles/control-store.js';

export const SHARE_HEARTBEAT_MS = 5_000;
/** How long a claim that is no longer renewed still counts. */
const TTL_HEARTBEATS = 3;
/** A claim is kept this long after its last copy ends, so the next activity call need not wait again. */
export const SHARE_LINGER_MS = 30_000;
/** The longest organization key the control store holds (NVARCHAR(255) on Azure SQL). */
const MAX_KEY_LENGTH = 255;

export type ShareClaims = Pick<ControlStore, 'claimOrganizationShare' | 'releaseOrganizationShare'>;

export interface ShareOptions {
  instanceId?: string;
  heartbeatMs?: number;
  lingerMs?: number;
  /** How the newcomer's wait is spent (tests resolve it at once). */
  wait?: (ms: number) => Promise<unknown>;
  /** Starts the repeating heartbeat; answers how to stop it (tests drive beats themselves). */
  every?: (ms: number, beat: () => void) => () => void;
  /** Runs `done` after `ms` unless cancelled (the linger after the last copy). */
  after?: (ms: number, done: () => Promise<void>) => () => void;
  /** Narrows or widens this instance's part of the cap; answers the part (default: the process's limits). */
  apply?: (url: string, holders: number) => number;
  logger: Pick<Logger, 'info' | 'warn'>;
}

interface Claim {
  url: string;
  copies: number;
  holders: number;
  stopBeat: () => void;
  cancelLinger?: () => void;
}

const repeating = (ms: number, beat: () => void) => {
  const timer = setInterval(beat, ms);
  timer.unref();
  return () => clearInterval(timer);
};
const once = (ms: number, done: () => Promise<void>) => {
  const timer = setTimeout(() => void done(), ms);
  timer.unref();
  return () => clearTimeout(timer);
};

/** The organization as the control store keys it: its normalised URL, or a digest of one too long to hold. */
export function shareKey(url: string): string {
  const key = organizationKey(url);
  return key.length <= MAX_KEY_LENGTH ? key : `sha256:${createHash('sha256').update(key).digest('hex')}`;
}

export class OrganizationShares {
  readonly instanceId: string;
  private readonly heartbeatMs: number;
  private readonly claims = new Map<string, Claim>();
  /** A claim being made, so copies starting together make it once. */
  private readonly joining = new Map<string, Promise<void>>();

  constructor(
    private readonly store: ShareClaims,
    private readonly options: ShareOptions,
  ) {
    this.instanceId = options.instanceId ?? randomUUID();
    this.heartbeatMs = options.heartbeatMs ?? SHARE_HEARTBEAT_MS;
  }

  /** Runs `copy` holding this instance's share of the organization's concurrency. */
  async during<T>(url: string, copy: () => Promise<T>): Promise<T> {
    const key = shareKey(url);
    await this.join(key, url);
    try {
      return await copy();
    } finally {
      this.leave(key);
    }
  }

  /** Instances sharing the organization as this one last saw it (1 when it holds no claim). */
  holders(url: string): number {
    return this.claims.get(shareKey(url))?.holders ?? 1;
  }

  /** Renews every claim this instance holds and applies what it finds; the timer calls it every heartbeat. */
  async beatAll(): Promise<void> {
    await Promise.all([...this.claims.keys()].map((key) => this.beat(key)));
  }

  private async join(key: string, url: string): Promise<void> {
    // A claim being made (and its newcomer's wait) holds back every copy that starts meanwhile.
    let joining = this.joining.get(key);
    if (!joining && !this.claims.has(key)) {
      joining = this.claim(key, url).finally(() => this.joining.delete(key));
      this.joining.set(key, joining);
    }
    if (joining) await joining;
    const claim = this.claims.get(key);
    if (!claim) return;
    claim.copies++;
    claim.cancelLinger?.();
    claim.cancelLinger = undefined;
  }

  private async claim(key: string, url: string): Promise<void> {
    const holders = await this.store.claimOrganizationShare(key, this.instanceId, this.ttlSeconds());
    const share = this.apply(url, holders);
    const every = this.options.every ?? repeating;
    const claim: Claim = { url, copies: 0, holders, stopBeat: () => {} };
    this.claims.set(key, claim);
    claim.stopBeat = every(this.heartbeatMs, () => void this.beat(key));
    this.options.logger.info('organization share claimed', { organization: key, holders, share });
    // The others narrow their parts at their next beat; reading before that could exceed the cap together.
    if (holders > 1) await (this.options.wait ?? sleep)(this.heartbeatMs + 1_000);
  }

  private async beat(key: string): Promise<void> {
    const claim = this.claims.get(key);
    if (!claim) return;
    try {
      const holders = await this.store.claimOrganizationShare(key, this.instanceId, this.ttlSeconds());
      if (this.claims.get(key) !== claim) return;
      if (holders !== claim.holders) {
        const share = this.apply(claim.url, holders);
        this.options.logger.info('organization share changed', { organization: key, holders, share });
      }
      claim.holders = holders;
    } catch (err) {
      // The part stays as it was; the claim expires on its own if the store stays away.
      this.options.logger.warn('organization share not renewed', { organization: key, error: err });
    }
  }

  private leave(key: string): void {
    const claim = this.claims.get(key);
    if (!claim || --claim.copies > 0) return;
    const after = this.options.after ?? once;
    claim.cancelLinger = after(this.options.lingerMs ?? SHARE_LINGER_MS, () => this.release(key, claim));
  }

  private async release(key: string, claim: Claim): Promise<void> {
    if (this.claims.get(key) !== claim || claim.copies > 0) return;
    this.claims.delete(key);
    claim.stopBeat();
    this.apply(claim.url, 1);
    try {
      await this.store.releaseOrganizationShare(key, this.instanceId);
    } catch (err) {
      this.options.logger.warn('organization share not released; it expires', { organization: key, error: err });
    }
  }

  /** Ends every claim at once (shutdown, tests). */
  async close(): Promise<void> {
    await Promise.all(
      [...this.claims.entries()].map(([key, claim]) => {
        claim.copies = 0;
        claim.cancelLinger?.();
        return this.release(key, claim);
      }),
    );
  }

  private apply(url: string, holders: number): number {
    return (this.options.apply ?? shareOrganization)(url, holders);
  }

  private ttlSeconds(): number {
    return Math.ceil((this.heartbeatMs * TTL_HEARTBEATS) / 1000);
  }
}
