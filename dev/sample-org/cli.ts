/**
 * The sample org's limits and latency as given from outside: `npm start`'s flags and the bench process's JSON
 * argument. A value that is not a number, or a key that is not known, stops with a message naming it.
 */
import type { PageLatency } from './latency.js';
import { DATAVERSE_LIMITS, type ServiceProtectionLimits } from './limits.js';

export interface SampleOrgTuning {
  limits?: ServiceProtectionLimits;
  latency?: PageLatency;
}

/** Rows in the page `--page-latency-ms` speaks of: Dataverse's largest. */
const FULL_PAGE_ROWS = 5000;

const LIMIT_FLAGS: Record<string, keyof ServiceProtectionLimits> = {
  'limit-requests': 'requests',
  'limit-execution-seconds': 'executionSeconds',
  'limit-concurrent': 'concurrent',
  'limit-window-seconds': 'windowSeconds',
};

/**
 * `--dataverse-limits` (Dataverse's: 6,000 requests and 1,200 s per 300 s, 52 in flight), each one set or
 * overridden by `--limit-requests=N`, `--limit-execution-seconds=N`, `--limit-concurrent=N`,
 * `--limit-window-seconds=N`; `--page-latency-ms=N` (a full 5,000-row page takes N ms), or
 * `--latency-fixed-ms=N` and `--latency-per-1000-ms=N`.
 */
export function sampleOrgArgs(argv: readonly string[]): SampleOrgTuning {
  const value = (name: string): number | undefined => {
    const arg = argv.find((a) => a.startsWith(`--${name}=`));
    if (arg === undefined) return undefined;
    const raw = arg.slice(name.length + 3);
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n) || n < 0) {
      throw new Error(`--${name}=${raw}: expected a number ≥ 0`);
    }
    return n;
  };
  const tuning: SampleOrgTuning = {};
  const limits: ServiceProtectionLimits = argv.includes('--dataverse-limits') ? { ...DATAVERSE_LIMITS } : {};
  for (const [flag, key] of Object.entries(LIMIT_FLAGS)) {
    const n = value(flag);
    if (n !== undefined) limits[key] = n;
  }
  if (Object.keys(limits).length) tuning.limits = limits;
  const page = value('page-latency-ms');
  const fixedMs = value('latency-fixed-ms');
  const perThousandRowsMs = value('latency-per-1000-ms');
  if (page !== undefined && (fixedMs !== undefined || perThousandRowsMs !== undefined)) {
    throw new Error('--page-latency-ms cannot be combined with --latency-fixed-ms or --latency-per-1000-ms');
  }
  if (page !== undefined) tuning.latency = { fixedMs: 0, perThousandRowsMs: (page * 1000) / FULL_PAGE_ROWS };
  else if (fixedMs !== undefined || perThousandRowsMs !== undefined) {
    tuning.latency = { fixedMs: fixedMs ?? 0, perThousandRowsMs: perThousandRowsMs ?? 0 };
  }
  return tuning;
}

export interface SampleOrgProcessOptions extends SampleOrgTuning {
  counts: { account?: number; contact?: number };
}

/** `bench/sample-org-process.ts`'s argument: `{"account":N,"contact":N,"limits":{…},"latency":{…}}`. */
export function sampleOrgProcessOptions(json: string | undefined): SampleOrgProcessOptions {
  const parsed = JSON.parse(json ?? '{}') as Record<string, unknown>;
  const known = ['account', 'contact', 'limits', 'latency'];
  for (const key of Object.keys(parsed)) {
    if (!known.includes(key))
      throw new Error(`the sample org process got an unknown key '${key}' (known: ${known.join(', ')})`);
  }
  const counts: SampleOrgProcessOptions['counts'] = {};
  if (parsed.account !== undefined) counts.account = parsed.account as number;
  if (parsed.contact !== undefined) counts.contact = parsed.contact as number;
  const out: SampleOrgProcessOptions = { counts };
  if (parsed.limits !== undefined) out.limits = parsed.limits as ServiceProtectionLimits;
  if (parsed.latency !== undefined) out.latency = parsed.latency as PageLatency;
  return out;
}
