/**
 * The target state as this instance last wrote it, so a healthy profile costs the control store one write a
 * minute, not one per batch, while a change of condition is written at once.
 */
import type { TargetStateRecorder, TargetStateReport } from './ports.js';

export class ThrottledTargetStates implements TargetStateRecorder {
  readonly #written = new Map<string, { key: string; at: number }>();

  constructor(
    private readonly store: TargetStateRecorder,
    /** How long a written state is trusted before the same one is written again (another instance may differ). */
    private readonly refreshMs = 60_000,
    private readonly clock: () => number = Date.now,
  ) {}

  async recordTargetState(profileId: string, report: TargetStateReport | null): Promise<void> {
    const key = report ? `${report.state}\n${report.reason}` : '';
    const last = this.#written.get(profileId);
    const now = this.clock();
    if (last && last.key === key && now - last.at < this.refreshMs) return;
    await this.store.recordTargetState(profileId, report);
    this.#written.set(profileId, { key, at: now });
  }
}
