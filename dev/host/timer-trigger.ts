/**
 * Timer triggers: NCRONTAB (six fields, seconds first) or TimeSpan (`hh:mm:ss`) schedules, evaluated in UTC
 * unless `WEBSITE_TIME_ZONE` names an IANA zone. Like the host, one timer never overlaps itself: the next
 * occurrence is planned when the current invocation ends.
 */
import { CronExpressionParser } from 'cron-parser';
import { AppError } from '../../lib/errors.js';
import type { FunctionRegistration } from './registry.js';

export interface TimerSchedule {
  /** The next occurrence strictly after `after`. */
  next(after: Date): Date;
}

export function parseSchedule(fn: string, schedule: string, timeZone: string | undefined): TimerSchedule {
  const timeSpan = /^(?:(\d+)\.)?(\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(schedule.trim());
  if (timeSpan) {
    const [, d, h, m, s] = timeSpan;
    const ms = (((Number(d ?? 0) * 24 + Number(h)) * 60 + Number(m)) * 60 + Number(s ?? 0)) * 1000;
    if (ms <= 0) throw scheduleError(fn, schedule, 'a TimeSpan schedule must be longer than zero');
    return { next: (after) => new Date(after.getTime() + ms) };
  }
  const fields = schedule.trim().split(/\s+/);
  if (fields.length !== 6) {
    throw scheduleError(
      fn,
      schedule,
      `NCRONTAB needs six fields (second minute hour day month day-of-week), got ${fields.length}`,
    );
  }
  try {
    CronExpressionParser.parse(schedule, { tz: timeZone ?? 'UTC' });
  } catch (err) {
    throw scheduleError(fn, schedule, err instanceof Error ? err.message : String(err));
  }
  return {
    next: (after) =>
      CronExpressionParser.parse(schedule, { currentDate: after, tz: timeZone ?? 'UTC' })
        .next()
        .toDate(),
  };
}

function scheduleError(fn: string, schedule: string, why: string): AppError {
  return new AppError('CONFIG_INVALID', `Timer "${fn}": schedule "${schedule}" is invalid: ${why}.`, {
    details: [{ field: 'schedule', message: why, value: schedule }],
  });
}

export interface TimerFire {
  isPastDue: boolean;
  last?: Date;
  next: Date;
}

/** The trigger value the host passes (PascalCase; the library camel-cases it for the handler). */
export function timerInfo(fire: TimerFire): Record<string, unknown> {
  return {
    Schedule: { AdjustForDST: true },
    ScheduleStatus: {
      Last: (fire.last ?? new Date(0)).toISOString(),
      Next: fire.next.toISOString(),
      LastUpdated: new Date().toISOString(),
    },
    IsPastDue: fire.isPastDue,
  };
}

const MAX_TIMEOUT = 2 ** 31 - 1;

/** Runs each timer on its schedule until stopped. */
export class TimerScheduler {
  readonly #handles = new Map<string, NodeJS.Timeout>();
  readonly #last = new Map<string, Date>();
  #stopped = true;

  constructor(
    private readonly timers: { fn: FunctionRegistration; schedule: TimerSchedule }[],
    private readonly fire: (fn: FunctionRegistration, info: TimerFire) => Promise<unknown>,
  ) {}

  start(): void {
    this.#stopped = false;
    for (const timer of this.timers) this.#plan(timer.fn, timer.schedule, new Date());
  }

  lastFired(name: string): Date | undefined {
    return this.#last.get(name);
  }

  noteFired(name: string, at: Date): void {
    this.#last.set(name, at);
  }

  stop(): void {
    this.#stopped = true;
    for (const handle of this.#handles.values()) clearTimeout(handle);
    this.#handles.clear();
  }

  #plan(fn: FunctionRegistration, schedule: TimerSchedule, from: Date): void {
    if (this.#stopped) return;
    const due = schedule.next(from);
    const wait = () => {
      const delay = due.getTime() - Date.now();
      if (delay > MAX_TIMEOUT) {
        this.#handles.set(fn.name, setTimeout(wait, MAX_TIMEOUT));
        return;
      }
      this.#handles.set(
        fn.name,
        setTimeout(
          () => {
            this.#handles.delete(fn.name);
            if (this.#stopped) return;
            const next = schedule.next(due);
            const isPastDue = Date.now() - due.getTime() > 1000;
            this.fire(fn, { isPastDue, last: this.#last.get(fn.name), next })
              .catch(() => {})
              .finally(() => this.#plan(fn, schedule, new Date(Math.max(Date.now(), due.getTime()))));
          },
          Math.max(0, delay),
        ),
      );
    };
    wait();
  }
}
