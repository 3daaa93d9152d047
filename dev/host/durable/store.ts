/**
 * Orchestration instances, kept in memory and — with a `stateDir` — one JSON file per instance, written
 * atomically after every change, so a restarted host resumes each running instance from its history.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HistoryEvent } from './history.js';

export type RuntimeStatus =
  | 'Pending'
  | 'Running'
  | 'Completed'
  | 'ContinuedAsNew'
  | 'Failed'
  | 'Terminated'
  | 'Suspended';

export const terminalStatuses: ReadonlySet<RuntimeStatus> = new Set(['Completed', 'Failed', 'Terminated']);

export interface OrchestrationInstance {
  instanceId: string;
  /** Changes with each continueAsNew; outcomes addressed to an older execution are dropped. */
  executionId?: string;
  name: string;
  status: RuntimeStatus;
  /** JSON text of the current execution's input. */
  input: string | undefined;
  /** JSON text of the output (for Failed: the error message as a JSON string). */
  output: string | undefined;
  customStatus: unknown;
  createdTime: string;
  lastUpdatedTime: string;
  parent?: { instanceId: string; executionId?: string; taskId: number };
  /** Committed history of the current execution. */
  history: HistoryEvent[];
  /** Messages that arrived since the last episode (completions, timers, raised events). */
  inbox: HistoryEvent[];
}

export class InstanceStore {
  readonly #instances = new Map<string, OrchestrationInstance>();

  constructor(private readonly dir: string | undefined) {
    if (!dir) return;
    mkdirSync(dir, { recursive: true });
    for (const file of readdirSync(dir)) {
      if (!file.endsWith('.json')) continue;
      const instance = JSON.parse(readFileSync(join(dir, file), 'utf8')) as OrchestrationInstance;
      this.#instances.set(instance.instanceId, instance);
    }
  }

  get(instanceId: string): OrchestrationInstance | undefined {
    return this.#instances.get(instanceId);
  }

  all(): OrchestrationInstance[] {
    return [...this.#instances.values()];
  }

  save(instance: OrchestrationInstance): void {
    instance.lastUpdatedTime = new Date().toISOString();
    this.#instances.set(instance.instanceId, instance);
    if (!this.dir) return;
    const file = this.#file(instance.instanceId);
    writeFileSync(`${file}.tmp`, JSON.stringify(instance));
    renameSync(`${file}.tmp`, file);
  }

  delete(instanceId: string): boolean {
    const existed = this.#instances.delete(instanceId);
    if (this.dir) rmSync(this.#file(instanceId), { force: true });
    return existed;
  }

  #file(instanceId: string): string {
    return join(this.dir!, `${encodeURIComponent(instanceId)}.json`);
  }
}
