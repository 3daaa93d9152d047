/**
 * The time Dataverse takes to answer a page of rows: a fixed part plus a part per 1,000 rows, spent on timers
 * (the event loop keeps serving other requests) and counted, like any request's time, into the execution budget.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { entityBySet } from './schema.js';

export interface PageLatency {
  /** Before any row of a page is rendered. */
  fixedMs?: number;
  /** Per 1,000 rows the page returns. */
  perThousandRowsMs?: number;
}

/** Checks a latency option, naming the field that is wrong. */
export function checkLatency(latency: PageLatency): void {
  for (const [name, value] of Object.entries(latency)) {
    if (value === undefined) continue;
    if (name !== 'fixedMs' && name !== 'perThousandRowsMs') {
      throw new Error(`latency.${name} is not a latency option (known: fixedMs, perThousandRowsMs)`);
    }
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new Error(`latency.${name} must be a number of milliseconds ≥ 0, got ${JSON.stringify(value)}`);
    }
  }
}

/** Whether the request reads rows of an entity set (a page, a delta page): what latency applies to. */
export function isRowRead(method: string | undefined, url: URL, apiPath: string): boolean {
  if (method !== 'GET' || !url.pathname.startsWith(apiPath)) return false;
  const segment = /^([a-z_]+)$/.exec(decodeURIComponent(url.pathname.slice(apiPath.length)));
  return segment !== null && entityBySet(segment[1]) !== undefined;
}

/**
 * Every row this org renders opens with its etag (as Dataverse's do) and a JSON string cannot hold an unescaped
 * quote, so the marker counts a piece's rows without parsing it; a delta page's deleted rows carry their own.
 */
const ROW_MARKER = '{"@odata.etag":';
const DELETED_MARKER = '/$deletedEntity"';

export function rowsIn(piece: string): number {
  return occurrences(piece, ROW_MARKER) + occurrences(piece, DELETED_MARKER);
}

function occurrences(text: string, marker: string): number {
  let n = 0;
  for (let i = text.indexOf(marker); i >= 0; i = text.indexOf(marker, i + marker.length)) n++;
  return n;
}

/**
 * Paces one page. The fixed part passes before the page is rendered, so a change made meanwhile is in it. The
 * row count is not known before rendering, so the per-row part is charged as the page streams: each piece
 * (a few hundred rows) is written, then the page waits until its rows so far have cost their time before the
 * next piece is rendered. Nothing waits holding rendered rows, a full answer never comes sooner than
 * fixedMs + rows / 1000 × perThousandRowsMs, and deadlines are absolute, so timer slack does not add up.
 */
export class PagePacer {
  private readonly startedAt = performance.now();
  private rows = 0;

  constructor(private readonly latency: PageLatency) {}

  /** Waits out the fixed part (from when the request arrived). */
  beforeRender(): Promise<void> {
    return this.until(this.startedAt + (this.latency.fixedMs ?? 0));
  }

  /** Charges the rows of a piece just written. */
  afterPiece(piece: string): Promise<void> {
    this.rows += rowsIn(piece);
    const perRow = (this.latency.perThousandRowsMs ?? 0) / 1000;
    return this.until(this.startedAt + (this.latency.fixedMs ?? 0) + this.rows * perRow);
  }

  private async until(deadline: number): Promise<void> {
    const wait = deadline - performance.now();
    if (wait > 0) await sleep(Math.ceil(wait));
  }
}
