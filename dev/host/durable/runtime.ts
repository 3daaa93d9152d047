/**
 * Runs orchestrations in-process the way the Durable extension does for an out-of-process worker: each
 * episode sends the instance's full history to the orchestrator function (durable-functions' own replay
 * engine), then schedules what it is newly waiting for — activities, timers, sub-orchestrations — and
 * feeds their outcomes back as history events. Work is at-least-once: after a restart, scheduled work
 * without a recorded outcome is dispatched again; completed work is only replayed from history.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from '../../../lib/log.js';
import type { RpcTypedData } from '../core-api.js';
import {
  fromTypedData,
  InvocationFailedError,
  type InvocationInput,
  type InvocationOutcome,
  messageOf,
} from '../invoke.js';
import type { FunctionRegistration, FunctionRegistry } from '../registry.js';
import { EventType, events, type HistoryEvent, schedulingTypes } from './history.js';
import { InstanceStore, type OrchestrationInstance, type RuntimeStatus, terminalStatuses } from './store.js';

/** OOProc replay schema V2: plain timers and nested compound actions (no long-timer splitting). */
const REPLAY_SCHEMA = 1;

export interface DurableRuntimeOptions {
  registry: FunctionRegistry;
  stateDir?: string;
  /** Activities running at once across all instances (host.json maxConcurrentActivityFunctions). */
  maxConcurrentActivities?: number;
  logger: Logger;
  invoke(fn: FunctionRegistration, input: InvocationInput): Promise<InvocationOutcome>;
}

export interface OrchestrationStatusJson {
  name: string;
  instanceId: string;
  createdTime: string;
  lastUpdatedTime: string;
  input: unknown;
  output: unknown;
  runtimeStatus: RuntimeStatus;
  customStatus: unknown;
  history?: unknown[];
}

export class DurableError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

interface OrchestratorState {
  isDone?: boolean;
  output?: unknown;
  error?: string;
  customStatus?: unknown;
  actions?: unknown[][];
}

interface Action {
  actionType: number;
  functionName?: string;
  input?: unknown;
  instanceId?: string;
  fireAt?: Date | string;
  retryOptions?: RetryOptions;
  compoundActions?: Action[];
}

interface RetryOptions {
  firstRetryIntervalInMilliseconds: number;
  maxNumberOfAttempts: number;
  backoffCoefficient?: number;
  maxRetryIntervalInMilliseconds?: number;
}

/** The parts of durable-functions' task objects read to see which tasks an episode left open. */
interface OpenTask {
  id: number | string | false;
  actionObj?: Action | string;
  parent?: { retryOptions?: RetryOptions; isWaitingOnTimer?: boolean; attemptNumber?: number; actionObj?: Action };
}

type Work = () => void;

/** Where an outcome goes: an instance, and the execution (continueAsNew starts a new one) that awaits it. */
interface Target {
  instanceId: string;
  executionId?: string;
}

type ParentLink = Target & { taskId: number };

const targetOf = (instance: OrchestrationInstance): Target => ({
  instanceId: instance.instanceId,
  executionId: instance.executionId,
});

export class DurableRuntime {
  readonly #store: InstanceStore;
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #busy = new Map<string, Promise<void>>();
  readonly #dirty = new Set<string>();
  readonly #changes = new EventEmitter();
  readonly #activitySlots: ActivitySlots;
  #stopping = false;

  constructor(private readonly options: DurableRuntimeOptions) {
    this.#store = new InstanceStore(options.stateDir);
    this.#activitySlots = new ActivitySlots(options.maxConcurrentActivities ?? Number.POSITIVE_INFINITY);
    this.#changes.setMaxListeners(0);
  }

  /** Resumes every unfinished instance: re-dispatches outstanding work and runs pending episodes. */
  start(): void {
    this.#stopping = false;
    for (const instance of this.#store.all()) {
      if (terminalStatuses.has(instance.status)) continue;
      this.#redispatchOutstanding(instance);
      if (instance.inbox.length > 0) this.#kick(instance.instanceId);
    }
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    for (const handle of this.#timers.values()) clearTimeout(handle);
    this.#timers.clear();
    while (this.#busy.size > 0) await Promise.allSettled([...this.#busy.values()]);
  }

  orchestrationNames(): string[] {
    return this.options.registry.functions.filter((f) => f.trigger.type === 'orchestrationTrigger').map((f) => f.name);
  }

  startNew(name: string, instanceId: string, inputJson: string | undefined, parent?: ParentLink): string {
    const fn = this.#function(name, 'orchestrationTrigger');
    if (!fn) {
      throw new DurableError(
        400,
        `The function '${name}' doesn't exist, is disabled, or is not an orchestrator function.`,
      );
    }
    const existing = this.#store.get(instanceId);
    if (existing && !terminalStatuses.has(existing.status)) {
      throw new DurableError(
        409,
        `An orchestration with instance ID '${instanceId}' already exists and is ${existing.status}.`,
      );
    }
    const now = new Date().toISOString();
    const instance: OrchestrationInstance = {
      instanceId,
      executionId: randomUUID(),
      name: fn.name,
      status: 'Pending',
      input: inputJson,
      output: undefined,
      customStatus: undefined,
      createdTime: now,
      lastUpdatedTime: now,
      history: [],
      inbox: [events.executionStarted(fn.name, inputJson)],
      ...(parent ? { parent } : {}),
    };
    this.#save(instance);
    this.#kick(instanceId);
    return instanceId;
  }

  status(instanceId: string, options: { showHistory?: boolean; showInput?: boolean } = {}): OrchestrationStatusJson {
    const instance = this.#store.get(instanceId);
    if (!instance) throw new DurableError(404, `No instance with ID '${instanceId}' found.`);
    return toStatusJson(instance, options);
  }

  list(
    filter: { runtimeStatus?: string[]; createdTimeFrom?: Date; createdTimeTo?: Date } = {},
  ): OrchestrationStatusJson[] {
    return this.#store
      .all()
      .filter((i) => !filter.runtimeStatus?.length || filter.runtimeStatus.includes(i.status))
      .filter((i) => !filter.createdTimeFrom || new Date(i.createdTime) >= filter.createdTimeFrom)
      .filter((i) => !filter.createdTimeTo || new Date(i.createdTime) <= filter.createdTimeTo)
      .map((i) => toStatusJson(i, { showInput: true }));
  }

  raiseEvent(instanceId: string, eventName: string, inputJson: string | undefined): void {
    const instance = this.#live(instanceId);
    instance.inbox.push(events.eventRaised(eventName, inputJson));
    this.#save(instance);
    this.#kick(instanceId);
  }

  terminate(instanceId: string, reason: string): void {
    const instance = this.#live(instanceId);
    instance.inbox = [];
    instance.history.push(events.terminal(EventType.ExecutionTerminated, { Input: JSON.stringify(reason) }));
    this.#finish(instance, 'Terminated', JSON.stringify(reason));
  }

  suspend(instanceId: string): void {
    const instance = this.#live(instanceId);
    instance.status = 'Suspended';
    this.#save(instance);
  }

  resume(instanceId: string): void {
    const instance = this.#live(instanceId);
    if (instance.status !== 'Suspended') return;
    instance.status = 'Running';
    this.#save(instance);
    this.#kick(instanceId);
  }

  purge(instanceId: string): boolean {
    this.#clearTimers(instanceId);
    return this.#store.delete(instanceId);
  }

  purgeAll(filter: { runtimeStatus?: string[]; createdTimeFrom?: Date; createdTimeTo?: Date }): number {
    const ids = this.list(filter).map((s) => s.instanceId);
    for (const id of ids) this.purge(id);
    return ids.length;
  }

  /** Resolves with the status once the instance reaches a terminal state (for tools and tests). */
  waitForCompletion(instanceId: string, timeoutMs = 30_000): Promise<OrchestrationStatusJson> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const instance = this.#store.get(instanceId);
        if (instance && terminalStatuses.has(instance.status)) {
          cleanup();
          resolve(toStatusJson(instance, { showInput: true }));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`Orchestration '${instanceId}' did not finish within ${timeoutMs} ms.`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.#changes.off('change', check);
      };
      this.#changes.on('change', check);
      check();
    });
  }

  // ── episodes ──────────────────────────────────────────────────────────────────────────────────

  #kick(instanceId: string): void {
    if (this.#stopping) return;
    if (this.#busy.has(instanceId)) {
      this.#dirty.add(instanceId);
      return;
    }
    const run = (async () => {
      do {
        this.#dirty.delete(instanceId);
        const instance = this.#store.get(instanceId);
        if (!instance || instance.inbox.length === 0 || instance.status === 'Suspended') continue;
        if (terminalStatuses.has(instance.status)) continue;
        await this.#episode(instance).catch((err) =>
          this.options.logger.error('Orchestration episode failed in the host', { instanceId, error: messageOf(err) }),
        );
      } while (!this.#stopping && (this.#dirty.has(instanceId) || this.#hasWork(instanceId)));
    })().finally(() => this.#busy.delete(instanceId));
    this.#busy.set(instanceId, run);
  }

  #hasWork(instanceId: string): boolean {
    const instance = this.#store.get(instanceId);
    return Boolean(
      instance &&
        instance.inbox.length > 0 &&
        !terminalStatuses.has(instance.status) &&
        instance.status !== 'Suspended',
    );
  }

  async #episode(instance: OrchestrationInstance): Promise<void> {
    const fn = this.#function(instance.name, 'orchestrationTrigger');
    // The inbox is trimmed only when the episode is committed: a save in between (a delivery) must not
    // persist an instance whose new events are in neither inbox nor history.
    const newEvents = instance.inbox.slice();
    const commit = () => instance.inbox.splice(0, newEvents.length);
    const started = events.orchestratorStarted();
    if (!fn) {
      commit();
      this.#fail(instance, [started, ...newEvents], `Orchestrator function '${instance.name}' is not registered.`);
      return;
    }
    const past = instance.history.map((e) => ({ ...e, IsPlayed: true }));
    const payload = {
      history: [...past, started, ...newEvents],
      input: instance.input === undefined ? undefined : JSON.parse(instance.input),
      instanceId: instance.instanceId,
      isReplaying: past.length > 0,
      parentInstanceId: instance.parent?.instanceId,
      upperSchemaVersion: REPLAY_SCHEMA,
      upperSchemaVersionNew: REPLAY_SCHEMA,
      longRunningTimerIntervalDuration: '3.00:00:00',
      maximumShortTimerDuration: '6.00:00:00',
      defaultHttpAsyncRequestSleepTimeMillseconds: 30_000,
    };
    if (instance.status === 'Pending') instance.status = 'Running';

    let state: OrchestratorState;
    let openTasks: Record<string, OpenTask> = {};
    try {
      const outcome = await this.options.invoke(fn, {
        inputData: [{ name: fn.trigger.name, data: { string: JSON.stringify(payload) } }],
      });
      state = (fromTypedData(outcome.response.returnValue) ?? {}) as OrchestratorState;
      openTasks = openTasksOf(outcome.context);
    } catch (err) {
      state = failureState(err);
    }
    // Terminated (or purged) while the orchestrator ran: its decisions no longer count.
    if (terminalStatuses.has(instance.status) || this.#store.get(instance.instanceId) !== instance) return;
    if (state.customStatus !== undefined) instance.customStatus = state.customStatus;
    const episode = [started, ...newEvents];
    commit();

    if (state.error !== undefined) {
      this.#fail(instance, episode, `Orchestrator function '${instance.name}' failed: ${state.error}`);
      return;
    }
    const actions = flatten(state.actions ?? []);
    const continueAsNew = actions.find((a) => a.actionType === 4);
    if (continueAsNew && state.isDone) {
      const next = continueAsNew.input;
      instance.input = next === undefined ? undefined : typeof next === 'string' ? next : JSON.stringify(next);
      instance.history = [];
      // A new execution: outcomes of the previous one's outstanding work no longer apply.
      instance.executionId = randomUUID();
      instance.inbox = [events.executionStarted(instance.name, instance.input)];
      instance.status = 'Running';
      this.#save(instance);
      this.#dirty.add(instance.instanceId);
      return;
    }
    if (state.isDone) {
      instance.history.push(...episode, events.orchestratorCompleted());
      instance.history.push(
        events.terminal(EventType.ExecutionCompleted, { Result: JSON.stringify(state.output ?? null) }),
      );
      this.#finish(instance, 'Completed', JSON.stringify(state.output ?? null));
      return;
    }

    const scheduled: HistoryEvent[] = [];
    const work: Work[] = [];
    const known = new Set(
      [...instance.history, ...newEvents].filter((e) => schedulingTypes.has(e.EventType)).map((e) => e.EventId),
    );
    try {
      for (const [key, task] of Object.entries(openTasks)) {
        const id = Number(key);
        if (!Number.isInteger(id) || known.has(id)) continue;
        this.#schedule(instance, id, task, scheduled, work);
      }
    } catch (err) {
      this.#fail(instance, episode, `Orchestrator function '${instance.name}' failed: ${messageOf(err)}`);
      return;
    }
    instance.history.push(...episode, ...scheduled, events.orchestratorCompleted());
    this.#save(instance);
    // While stopping, scheduled work stays in history only; the next start dispatches it.
    if (!this.#stopping) for (const w of work) w();
  }

  /** Turns one newly opened task into its scheduling event plus the work that produces its outcome. */
  #schedule(
    instance: OrchestrationInstance,
    id: number,
    task: OpenTask,
    scheduled: HistoryEvent[],
    work: Work[],
  ): void {
    const target = targetOf(instance);
    const retry = task.parent?.retryOptions ? task.parent : undefined;
    // A retry's timer and re-attempt are NoOp tasks whose `actionObj` is the string "noOp".
    let action = typeof task.actionObj === 'object' && task.actionObj !== null ? task.actionObj : undefined;
    if (!action && retry) {
      if (retry.isWaitingOnTimer) {
        // The retry policy's back-off timer; after the last attempt the engine waits on it before failing.
        const attempts = (retry.attemptNumber ?? 2) - 1;
        const exhausted = (retry.attemptNumber ?? 0) > retry.retryOptions!.maxNumberOfAttempts;
        const fireAt = new Date(Date.now() + (exhausted ? 0 : retryDelay(retry.retryOptions!, attempts)));
        scheduled.push(events.timerCreated(id, fireAt));
        work.push(() => this.#armTimer(target, id, fireAt));
        return;
      }
      action = retry.actionObj;
    }
    if (!action) throw new Error(`task ${id} has no action the host can run`);
    switch (action.actionType) {
      case 0:
      case 1: {
        const name = String(action.functionName);
        const input = inputJson(action.input);
        scheduled.push(events.taskScheduled(id, name, input));
        work.push(() => void this.#runActivity(target, id, name, input));
        return;
      }
      case 2:
      case 3: {
        const name = String(action.functionName);
        const childId = action.instanceId || `${instance.instanceId}:${id}`;
        const input = action.input === undefined ? undefined : JSON.stringify(action.input);
        scheduled.push(events.subOrchestrationCreated(id, name, childId, input));
        work.push(() => this.#startChild(target, id, name, childId, input));
        return;
      }
      case 5: {
        const fireAt = new Date(action.fireAt as string);
        scheduled.push(events.timerCreated(id, fireAt));
        work.push(() => this.#armTimer(target, id, fireAt));
        return;
      }
      case 7:
      case 9:
      case 13:
        throw new Error('durable entities are not supported by the development host');
      case 8:
        throw new Error('callHttp is not supported by the development host');
      default:
        throw new Error(`action type ${action.actionType} is not supported by the development host`);
    }
  }

  // ── work ─────────────────────────────────────────────────────────────────────────────────────

  async #runActivity(target: Target, taskId: number, name: string, input: string | undefined): Promise<void> {
    await this.#activitySlots.acquire();
    try {
      // Still queued when the host stopped: the next start dispatches it again from history.
      if (this.#stopping) return;
      await this.#runActivityNow(target, taskId, name, input);
    } finally {
      this.#activitySlots.release();
    }
  }

  async #runActivityNow(target: Target, taskId: number, name: string, input: string | undefined): Promise<void> {
    const fn = this.#function(name, 'activityTrigger');
    let outcome: HistoryEvent;
    if (!fn) {
      outcome = events.taskFailed(taskId, `The activity function '${name}' is not registered.`, '');
    } else {
      try {
        const data: RpcTypedData | undefined = input === undefined ? undefined : { json: input };
        const result = await this.options.invoke(fn, { inputData: [{ name: fn.trigger.name, data }] });
        const value = fromTypedData(result.response.returnValue);
        outcome = events.taskCompleted(taskId, JSON.stringify(value ?? null));
      } catch (err) {
        const cause = err instanceof InvocationFailedError ? err.cause : err;
        outcome = events.taskFailed(
          taskId,
          `Activity function '${name}' failed: ${messageOf(cause)}`,
          cause instanceof Error ? (cause.stack ?? cause.message) : String(cause),
        );
      }
    }
    this.#deliver(target, outcome);
  }

  #armTimer(target: Target, timerId: number, fireAt: Date): void {
    if (this.#stopping) return;
    const key = `${target.instanceId}\u0000${timerId}`;
    const handle = setTimeout(
      () => {
        this.#timers.delete(key);
        this.#deliver(target, events.timerFired(timerId, fireAt));
      },
      Math.min(Math.max(0, fireAt.getTime() - Date.now()), 2 ** 31 - 1),
    );
    handle.unref();
    this.#timers.set(key, handle);
  }

  #clearTimers(instanceId: string): void {
    for (const [key, handle] of this.#timers) {
      if (key.startsWith(`${instanceId}\u0000`)) {
        clearTimeout(handle);
        this.#timers.delete(key);
      }
    }
  }

  #startChild(parent: Target, taskId: number, name: string, childId: string, input: string | undefined): void {
    const child = this.#store.get(childId);
    if (child && !terminalStatuses.has(child.status)) {
      // Already started for this very task (a restart re-dispatching it): it reports back when done.
      const ours =
        child.parent?.instanceId === parent.instanceId &&
        child.parent.taskId === taskId &&
        child.parent.executionId === parent.executionId;
      if (!ours) {
        const reason = `Sub-orchestration instance '${childId}' is already ${child.status} for another caller (a terminated parent does not stop its sub-orchestrations); terminate it or wait for it before starting again.`;
        this.#deliver(parent, events.subOrchestrationFailed(taskId, reason, ''));
      }
      return;
    }
    try {
      this.startNew(name, childId, input, { ...parent, taskId });
    } catch (err) {
      this.#deliver(parent, events.subOrchestrationFailed(taskId, messageOf(err), ''));
    }
  }

  #deliver(target: Target, event: HistoryEvent): void {
    const instance = this.#store.get(target.instanceId);
    if (!instance || terminalStatuses.has(instance.status)) return;
    if (target.executionId && instance.executionId && target.executionId !== instance.executionId) return;
    instance.inbox.push(event);
    this.#save(instance);
    this.#kick(target.instanceId);
  }

  /** After a restart: work that was scheduled but has no outcome in history or inbox runs again. */
  #redispatchOutstanding(instance: OrchestrationInstance): void {
    const target = targetOf(instance);
    const all = [...instance.history, ...instance.inbox];
    const done = new Set<number>();
    for (const e of all) {
      if (e.EventType === EventType.TimerFired) done.add(Number(e.TimerId));
      else if (e.TaskScheduledId !== undefined) done.add(Number(e.TaskScheduledId));
    }
    for (const e of instance.history) {
      if (!schedulingTypes.has(e.EventType) || done.has(e.EventId)) continue;
      if (e.EventType === EventType.TaskScheduled) {
        void this.#runActivity(target, e.EventId, String(e.Name), e.Input as string | undefined);
      } else if (e.EventType === EventType.TimerCreated) {
        this.#armTimer(target, e.EventId, new Date(e.FireAt as string));
      } else {
        const child = this.#store.get(String(e.InstanceId));
        if (!child) this.#startChild(target, e.EventId, String(e.Name), String(e.InstanceId), e.Input as string);
        else if (terminalStatuses.has(child.status)) this.#notifyParent(child);
      }
    }
  }

  #fail(instance: OrchestrationInstance, episode: HistoryEvent[], message: string): void {
    instance.history.push(...episode, events.orchestratorCompleted());
    instance.history.push(events.terminal(EventType.ExecutionFailed, { Reason: message }));
    this.options.logger.warn('Orchestration failed', {
      instanceId: instance.instanceId,
      orchestration: instance.name,
      error: message,
    });
    this.#finish(instance, 'Failed', JSON.stringify(message));
  }

  #finish(instance: OrchestrationInstance, status: RuntimeStatus, output: string): void {
    instance.status = status;
    instance.output = output;
    instance.inbox = [];
    this.#clearTimers(instance.instanceId);
    this.#save(instance);
    this.#notifyParent(instance);
  }

  #notifyParent(child: OrchestrationInstance): void {
    if (!child.parent) return;
    const { taskId, ...parent } = child.parent;
    if (child.status === 'Completed') {
      this.#deliver(parent, events.subOrchestrationCompleted(taskId, child.output ?? 'null'));
    } else {
      const reason = child.output ? String(JSON.parse(child.output)) : child.status;
      this.#deliver(
        parent,
        events.subOrchestrationFailed(
          taskId,
          `Sub-orchestration '${child.name}' ${child.status.toLowerCase()}: ${reason}`,
          '',
        ),
      );
    }
  }

  #save(instance: OrchestrationInstance): void {
    this.#store.save(instance);
    this.#changes.emit('change', instance.instanceId);
  }

  #live(instanceId: string): OrchestrationInstance {
    const instance = this.#store.get(instanceId);
    if (!instance) throw new DurableError(404, `No instance with ID '${instanceId}' found.`);
    if (terminalStatuses.has(instance.status)) {
      throw new DurableError(410, `The instance '${instanceId}' is ${instance.status} and takes no more operations.`);
    }
    return instance;
  }

  #function(name: string, type: string): FunctionRegistration | undefined {
    const fn = this.options.registry.get(name);
    return fn && fn.trigger.type === type ? fn : undefined;
  }
}

/** A counting semaphore: activities beyond the limit wait their turn in order. */
class ActivitySlots {
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  acquire(): Promise<void> {
    if (this.#running < this.limit) {
      this.#running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#running--;
  }
}

function toStatusJson(
  instance: OrchestrationInstance,
  options: { showHistory?: boolean; showInput?: boolean },
): OrchestrationStatusJson {
  const parse = (text: string | undefined) => (text === undefined ? null : JSON.parse(text));
  return {
    name: instance.name,
    instanceId: instance.instanceId,
    createdTime: instance.createdTime,
    lastUpdatedTime: instance.lastUpdatedTime,
    input: options.showInput === false ? null : parse(instance.input),
    output: parse(instance.output),
    runtimeStatus: instance.status,
    customStatus: instance.customStatus ?? null,
    ...(options.showHistory ? { history: instance.history } : {}),
  };
}

/** Action inputs arrive as durable-functions leaves them: strings already JSON-encoded, other values raw. */
function inputJson(input: unknown): string | undefined {
  if (input === undefined) return undefined;
  return typeof input === 'string' ? input : JSON.stringify(input);
}

function flatten(groups: unknown[][]): Action[] {
  const out: Action[] = [];
  const walk = (a: Action) => {
    out.push(a);
    for (const child of a.compoundActions ?? []) walk(child);
  };
  for (const group of groups) for (const a of group as Action[]) walk(a);
  return out;
}

function retryDelay(options: RetryOptions, failedAttempts: number): number {
  const delay =
    options.firstRetryIntervalInMilliseconds * (options.backoffCoefficient || 1) ** Math.max(0, failedAttempts - 1);
  return options.maxRetryIntervalInMilliseconds && options.maxRetryIntervalInMilliseconds > 0
    ? Math.min(delay, options.maxRetryIntervalInMilliseconds)
    : delay;
}

/** The tasks the replay engine is still waiting on after this episode, by sequence id. */
function openTasksOf(context: unknown): Record<string, OpenTask> {
  const df = (context as { df?: { taskOrchestratorExecutor?: { openTasks?: Record<string, OpenTask> } } }).df;
  return df?.taskOrchestratorExecutor?.openTasks ?? {};
}

/** A failed orchestrator run carries its state after `$OutOfProcData$:` in the error message. */
function failureState(err: unknown): OrchestratorState {
  const cause = err instanceof InvocationFailedError ? err.cause : err;
  const message = messageOf(cause);
  const marker = message.indexOf('$OutOfProcData$:');
  if (marker >= 0) {
    try {
      const state = JSON.parse(message.slice(marker + '$OutOfProcData$:'.length)) as OrchestratorState;
      return { ...state, error: state.error ?? message.slice(0, marker).trim() };
    } catch {
      // fall through to the raw message
    }
  }
  return { isDone: false, error: message };
}
