import type { BenchFigure } from './run.js';

/** Placeholder until the initial-sync engine lands: reports nothing rather than a made-up figure. */
export async function benchInitialSync(_root: string, _earlier: BenchFigure[]): Promise<BenchFigure[]> {
  return [];
}
