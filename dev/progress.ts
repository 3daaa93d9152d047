/**
 * The initial-sync progress bar of `npm start`: polls the status API of every active profile and draws one
 * line per entity being copied (rewritten in place on a terminal, printed every few seconds otherwise).
 */
interface EntityProgress {
  entity: string;
  syncState: string;
  rowsCopied: number;
  rowsEstimated: number | null;
  rowsPerSecond?: number | null;
  etaSeconds?: number | null;
  /** Id ranges read in parallel (rowsCopied is their sum). */
  partitions?: Array<{ done: boolean }>;
}

interface ProfileSummary {
  id: string;
  name: string;
  state: string;
}

export interface ProgressOptions {
  apiBaseUrl: string;
  functionKey: string;
  intervalMs?: number;
  out?: NodeJS.WriteStream;
}

const BAR = 24;

export function progressLine(profile: string, e: EntityProgress): string {
  const total = e.rowsEstimated ?? 0;
  const share = total > 0 ? Math.min(1, e.rowsCopied / total) : 0;
  const filled = Math.round(share * BAR);
  const bar = `${'█'.repeat(filled)}${'░'.repeat(BAR - filled)}`;
  const count = `${e.rowsCopied.toLocaleString('en-US')}${total ? `/${total.toLocaleString('en-US')}` : ''}`;
  const rate = e.rowsPerSecond ? ` ${Math.round(e.rowsPerSecond).toLocaleString('en-US')} rows/s` : '';
  const eta = e.etaSeconds !== undefined && e.etaSeconds !== null ? ` ETA ${Math.ceil(e.etaSeconds)} s` : '';
  const parts = e.partitions?.length
    ? ` · ${e.partitions.filter((p) => p.done).length}/${e.partitions.length} partitions`
    : '';
  return `[sync] ${profile} · ${e.entity.padEnd(14)} ${bar} ${Math.floor(share * 100)
    .toString()
    .padStart(3)}% ${count}${rate}${eta}${parts}`;
}

/** Starts polling; returns a function that stops it. */
export function startProgress(options: ProgressOptions): () => void {
  const out = options.out ?? process.stdout;
  const headers = { 'x-functions-key': options.functionKey };
  const tty = Boolean(out.isTTY);
  let drawn = 0;
  let lastPrint = 0;
  let stopped = false;
  const seen = new Map<string, string>();

  const tick = async () => {
    const profiles = (await (await fetch(`${options.apiBaseUrl}/profiles`, { headers })).json()) as ProfileSummary[];
    const lines: string[] = [];
    for (const p of profiles.filter((x) => x.state === 'Active')) {
      const status = (await (await fetch(`${options.apiBaseUrl}/profiles/${p.id}/status`, { headers })).json()) as {
        entities: EntityProgress[];
      };
      for (const e of status.entities) {
        const key = `${p.id}/${e.entity}`;
        if (e.syncState === 'InProgress' || e.syncState === 'Queued') lines.push(progressLine(p.name, e));
        else if (e.syncState === 'Completed' && seen.get(key) && seen.get(key) !== 'Completed') {
          lines.push(`${progressLine(p.name, e)} ✓`);
        }
        seen.set(key, e.syncState);
      }
    }
    if (tty) {
      if (drawn) out.write(`\x1b[${drawn}A\x1b[0J`);
      if (lines.length) out.write(`${lines.join('\n')}\n`);
      drawn = lines.length;
    } else if (lines.length && Date.now() - lastPrint >= 5_000) {
      out.write(`${lines.join('\n')}\n`);
      lastPrint = Date.now();
    }
  };

  const loop = async () => {
    while (!stopped) {
      await tick().catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 1_000).unref());
    }
  };
  void loop();
  return () => {
    stopped = true;
  };
}
