/** Structured logs: one JSON object per line, with fields that follow a change from ingest to apply. */
import { redactSecrets } from './redact.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogSink = (level: LogLevel, line: string) => void;

const stdoutSink: LogSink = (level, line) => {
  (level === 'error' || level === 'warn' ? process.stderr : process.stdout).write(line + '\n');
};

let defaultLevel: LogLevel = 'info';

/** Sets the level of loggers made without one (the wiring passes the validated `LogLevel` setting); answers the previous one. */
export function setDefaultLogLevel(level: LogLevel): LogLevel {
  const previous = defaultLevel;
  defaultLevel = level;
  return previous;
}

export function createLogger(options: { level?: LogLevel; fields?: LogFields; sink?: LogSink } = {}): Logger {
  const min = rank[options.level ?? defaultLevel];
  const base = options.fields ?? {};
  const sink = options.sink ?? stdoutSink;
  const write = (level: LogLevel, message: string, fields?: LogFields) => {
    if (rank[level] < min) return;
    sink(level, JSON.stringify({ time: new Date().toISOString(), level, message, ...base, ...fields }, errorReplacer));
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (fields) => createLogger({ level: options.level, fields: { ...base, ...fields }, sink }),
  };
}

/** Also the one place every logged string passes: no line may carry a connection string's password. */
function errorReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (value instanceof Error) {
    const coded = value as Error & { code?: unknown; toJSON?: () => unknown };
    if (typeof coded.toJSON === 'function') return coded.toJSON();
    return { name: value.name, message: value.message, ...(coded.code ? { code: coded.code } : {}) };
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/** A logger that discards everything (for tests that do not look at logs). */
export const silentLogger: Logger = createLogger({ sink: () => {} });

/** The logging surface of a Functions InvocationContext (typed structurally: lib/ never imports the SDK). */
export interface InvocationLog {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
  invocationId?: string;
  functionName?: string;
}

/** A structured logger writing through the invocation's logger, so the host correlates the lines. */
export function loggerFor(context: InvocationLog, fields: LogFields = {}): Logger {
  const base = { functionName: context.functionName, invocationId: context.invocationId, ...fields };
  return createLogger({
    fields: base,
    sink: (level, line) => context[level](line),
  });
}
