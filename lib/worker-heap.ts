/**
 * Whether this worker runs with the heap cap it was deployed with. bicep/main.bicep asks the Functions host
 * to start the Node worker with `--max-old-space-size` (app setting `languageWorkers__node__arguments`); app
 * settings also reach the worker as environment variables, so the worker can compare what was asked with
 * the heap V8 actually has, and say so when they differ: nothing else would show that a large initial sync
 * is running with a heap sized from the machine instead of the instance.
 */
import { getHeapStatistics } from 'node:v8';
import type { Logger } from './log.js';

/** The worker arguments' app setting, as the worker's environment holds it (either separator). */
const SETTING_NAMES = ['languageWorkers__node__arguments', 'languageWorkers:node:arguments'];
const OLD_SPACE_FLAG = /(?:^|\s)--max[-_]old[-_]space[-_]size=(\d+)(?=\s|$)/;
/**
 * V8's heap limit is the old space's plus the young generation's (48 MB by default on 64-bit Node 22: three
 * 16 MB semi-spaces); a limit within this margin of the flag means the flag was applied.
 */
const YOUNG_GENERATION_MARGIN_MB = 64;

export interface WorkerHeap {
  /** V8's heap limit in this process, in MB. */
  heapLimitMb: number;
  /** The `--max-old-space-size` the worker arguments ask for, if they do. */
  requestedOldSpaceMb?: number;
  /** Whether the limit matches the request; undefined when nothing was requested. */
  applied?: boolean;
}

export function workerHeap(
  env: Record<string, string | undefined>,
  heapLimitBytes = getHeapStatistics().heap_size_limit,
): WorkerHeap {
  const heapLimitMb = Math.round(heapLimitBytes / (1024 * 1024));
  const args = SETTING_NAMES.map((name) => env[name]).find((value) => value !== undefined);
  const match = args === undefined ? null : OLD_SPACE_FLAG.exec(args);
  if (!match) return { heapLimitMb };
  const requestedOldSpaceMb = Number(match[1]);
  const applied = heapLimitMb <= requestedOldSpaceMb + YOUNG_GENERATION_MARGIN_MB;
  return { heapLimitMb, requestedOldSpaceMb, applied };
}

/** Logs the worker's heap once at start: info when it is as deployed, a warning that says what to do when not. */
export function reportWorkerHeap(logger: Pick<Logger, 'info' | 'warn'>, heap: WorkerHeap): void {
  if (heap.applied === false) {
    logger.warn(
      `worker heap limit is ${heap.heapLimitMb} MB, but languageWorkers__node__arguments asks for ` +
        `--max-old-space-size=${heap.requestedOldSpaceMb}: the Functions host started this worker without its ` +
        'arguments, so a large initial sync may outgrow the instance memory. Restart the function app; if this ' +
        `persists, also set the app setting NODE_OPTIONS=--max-old-space-size=${heap.requestedOldSpaceMb}`,
      { component: 'worker', ...heap },
    );
    return;
  }
  logger.info('worker heap', { component: 'worker', ...heap });
}
