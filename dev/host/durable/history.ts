/**
 * Orchestration history events, built with durable-functions' own history classes so the field names are
 * the ones its replay engine reads. Not public API: pinned to durable-functions 3.5 and covered by the
 * dev-host integration test.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

type EventClass = new (options: Record<string, unknown>) => HistoryEvent;
const load = (file: string, name: string): EventClass =>
  (require(`durable-functions/lib/src/history/${file}`) as Record<string, EventClass>)[name];

const classes = {
  OrchestratorStarted: load('OrchestratorStartedEvent', 'OrchestratorStartedEvent'),
  OrchestratorCompleted: load('OrchestratorCompletedEvent', 'OrchestratorCompletedEvent'),
  ExecutionStarted: load('ExecutionStartedEvent', 'ExecutionStartedEvent'),
  TaskScheduled: load('TaskScheduledEvent', 'TaskScheduledEvent'),
  TaskCompleted: load('TaskCompletedEvent', 'TaskCompletedEvent'),
  TaskFailed: load('TaskFailedEvent', 'TaskFailedEvent'),
  TimerCreated: load('TimerCreatedEvent', 'TimerCreatedEvent'),
  TimerFired: load('TimerFiredEvent', 'TimerFiredEvent'),
  SubOrchestrationInstanceCreated: load('SubOrchestrationInstanceCreatedEvent', 'SubOrchestrationInstanceCreatedEvent'),
  SubOrchestrationInstanceCompleted: load(
    'SubOrchestrationInstanceCompletedEvent',
    'SubOrchestrationInstanceCompletedEvent',
  ),
  SubOrchestrationInstanceFailed: load('SubOrchestrationInstanceFailedEvent', 'SubOrchestrationInstanceFailedEvent'),
  EventRaised: load('EventRaisedEvent', 'EventRaisedEvent'),
};

/** `HistoryEventType` of durable-functions (= DurableTask's). */
export const EventType = {
  ExecutionStarted: 0,
  ExecutionCompleted: 1,
  ExecutionFailed: 2,
  ExecutionTerminated: 3,
  TaskScheduled: 4,
  TaskCompleted: 5,
  TaskFailed: 6,
  SubOrchestrationInstanceCreated: 7,
  SubOrchestrationInstanceCompleted: 8,
  SubOrchestrationInstanceFailed: 9,
  TimerCreated: 10,
  TimerFired: 11,
  OrchestratorStarted: 12,
  OrchestratorCompleted: 13,
  EventRaised: 15,
  ContinueAsNew: 16,
} as const;

/** One event as the host serialises it (PascalCase, as the replay engine reads it). */
export interface HistoryEvent {
  EventType: number;
  EventId: number;
  IsPlayed: boolean;
  Timestamp: Date | string;
  [field: string]: unknown;
}

const opts = (eventId: number, extra: Record<string, unknown> = {}) => ({
  eventId,
  timestamp: new Date(),
  isPlayed: false,
  ...extra,
});

/** A JSON-clean copy (Dates as ISO strings), which is what is persisted and sent to the worker. */
const plain = (event: HistoryEvent): HistoryEvent => JSON.parse(JSON.stringify(event)) as HistoryEvent;

export const events = {
  orchestratorStarted: () => plain(new classes.OrchestratorStarted(opts(-1))),
  orchestratorCompleted: () => plain(new classes.OrchestratorCompleted(opts(-1))),
  executionStarted: (name: string, input: string | undefined) =>
    plain(new classes.ExecutionStarted(opts(-1, { name, input }))),
  taskScheduled: (id: number, name: string, input: string | undefined) =>
    plain(new classes.TaskScheduled(opts(id, { name, input }))),
  taskCompleted: (id: number, result: string) =>
    plain(new classes.TaskCompleted(opts(-1, { taskScheduledId: id, result }))),
  taskFailed: (id: number, reason: string, details: string) =>
    plain(new classes.TaskFailed(opts(-1, { taskScheduledId: id, reason, details }))),
  timerCreated: (id: number, fireAt: Date) => plain(new classes.TimerCreated(opts(id, { fireAt }))),
  timerFired: (id: number, fireAt: Date | string) =>
    plain(new classes.TimerFired(opts(-1, { timerId: id, fireAt: new Date(fireAt) }))),
  subOrchestrationCreated: (id: number, name: string, instanceId: string, input: string | undefined) =>
    plain(new classes.SubOrchestrationInstanceCreated(opts(id, { name, instanceId, input }))),
  subOrchestrationCompleted: (id: number, result: string) =>
    plain(new classes.SubOrchestrationInstanceCompleted(opts(-1, { taskScheduledId: id, result }))),
  subOrchestrationFailed: (id: number, reason: string, details: string) =>
    plain(new classes.SubOrchestrationInstanceFailed(opts(-1, { taskScheduledId: id, reason, details }))),
  eventRaised: (name: string, input: string | undefined) => plain(new classes.EventRaised(opts(-1, { name, input }))),
  /** DurableTask's terminal events have no class in durable-functions; the engine never reads them. */
  terminal: (type: 1 | 2 | 3, fields: Record<string, unknown>): HistoryEvent => ({
    EventType: type,
    EventId: -1,
    IsPlayed: false,
    Timestamp: new Date().toISOString(),
    ...fields,
  }),
};

/** The event types that open a task with the sequence id in `EventId`. */
export const schedulingTypes: ReadonlySet<number> = new Set([
  EventType.TaskScheduled,
  EventType.TimerCreated,
  EventType.SubOrchestrationInstanceCreated,
]);
