import { AppError, toAppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { FailureEntry } from '../pipeline/ports.js';
import { readChangeMessage } from '../queue/envelope.js';
import { isFailureLogProfileId, UNATTRIBUTED_PROFILE_ID } from '../storage/failure-log.js';

export { UNATTRIBUTED_PROFILE_ID };

/** The failure-log code of a change Service Bus gave up on (not an apply error, so not in ErrorCodes). */
export const DEAD_LETTERED = 'DEAD_LETTERED';

/** The fields of a dead-lettered Service Bus message that the drain reads. */
export interface DeadLetteredMessage {
  body: unknown;
  messageId?: unknown;
  correlationId?: unknown;
  deadLetterReason?: string;
  deadLetterErrorDescription?: string;
  deliveryCount?: number;
}

/** A peek-lock receiver on `changes/$deadletterqueue`. */
export interface DeadLetterReceiver<M extends DeadLetteredMessage = DeadLetteredMessage> {
  /** Up to `maxMessages`, waiting at most `maxWaitTimeInMs` for the first; an empty array when the queue is empty. */
  receiveMessages(maxMessages: number, maxWaitTimeInMs: number): Promise<M[]>;
  completeMessage(message: M): Promise<void>;
}

export interface DrainDeps<M extends DeadLetteredMessage> {
  receiver: DeadLetterReceiver<M>;
  /** `FailureLog` itself, or the pipeline's writer port. */
  failureLog: { writeFailures(profileId: string, entries: FailureEntry[]): Promise<unknown> };
  logger: Logger;
  now?: () => Date;
  /** Messages per receive (default 100). */
  batchSize?: number;
  /** Stops after this many, so one timer run stays short however full the queue is (default 5,000). */
  maxMessages?: number;
  /** How long an empty queue is waited on before the drain ends (default 1 s). */
  waitMs?: number;
}

export interface DrainReport {
  received: number;
  completed: number;
  linesWritten: number;
  /** Bodies that were not a change message (their lines are under {@link UNATTRIBUTED_PROFILE_ID}). */
  unreadable: number;
  /** Messages left in the queue because their lines or their completion failed; the next run retries them. */
  failed: number;
}

/** Same rule as FailureLog's: a profile id outside it cannot name a folder. */

/**
 * Turns every dead-lettered change into failure-log lines — one per profile the change was for — so a user
 * sees it where DES showed failures and can resync it, then completes the message. A message is completed
 * only after all of its lines are written; if writing fails it stays in the queue (its lock lapses) and the
 * next run writes it again, so a line can repeat but is never lost.
 */
export async function drainDeadLetters<M extends DeadLetteredMessage>(deps: DrainDeps<M>): Promise<DrainReport> {
  const now = deps.now ?? (() => new Date());
  const batchSize = deps.batchSize ?? 100;
  const maxMessages = deps.maxMessages ?? 5000;
  const waitMs = deps.waitMs ?? 1000;
  const report: DrainReport = { received: 0, completed: 0, linesWritten: 0, unreadable: 0, failed: 0 };

  while (report.received < maxMessages) {
    const batch = await receive(deps.receiver, Math.min(batchSize, maxMessages - report.received), waitMs);
    if (!batch.length) break;
    report.received += batch.length;

    const time = now().toISOString();
    const linesOf = batch.map((message) => {
      const lines = failureLines(message, time);
      if (lines.unreadable) report.unreadable++;
      return lines.lines;
    });

    // One write per profile for the whole batch keeps the failure log to a blob per profile per run.
    const byProfile = new Map<string, FailureEntry[]>();
    for (const line of linesOf.flat()) byProfile.set(line.profileId, [...(byProfile.get(line.profileId) ?? []), line]);
    const unwritten = new Set<string>();
    for (const [profileId, lines] of byProfile) {
      try {
        await deps.failureLog.writeFailures(profileId, lines);
        report.linesWritten += lines.length;
      } catch (err) {
        unwritten.add(profileId);
        deps.logger.error('dead-lettered changes could not be written to the failure log; they stay queued', {
          profileId,
          lines: lines.length,
          error: toAppError(err),
        });
      }
    }

    await Promise.all(
      batch.map(async (message, index) => {
        if (linesOf[index].some((line) => unwritten.has(line.profileId))) {
          report.failed++;
          return;
        }
        try {
          await deps.receiver.completeMessage(message);
          report.completed++;
        } catch (err) {
          // The lines are written; the message comes back and is written again (a repeated line, not a lost one).
          report.failed++;
          deps.logger.warn('a drained dead letter could not be completed', {
            messageId: idOf(message.messageId),
            error: toAppError(err),
          });
        }
      }),
    );
  }
  if (report.received) deps.logger.info('dead-lettered changes drained to the failure log', { ...report });
  return report;
}

async function receive<M extends DeadLetteredMessage>(
  receiver: DeadLetterReceiver<M>,
  max: number,
  waitMs: number,
): Promise<M[]> {
  try {
    return await receiver.receiveMessages(max, waitMs);
  } catch (err) {
    throw new AppError(
      'QUEUE_UNAVAILABLE',
      `Reading the dead-letter queue of 'changes' failed: ${toAppError(err).message}. Check ServiceBusConnection and the app's Service Bus Data Receiver role.`,
      { cause: err },
    );
  }
}

/** The lines of one message, and whether its body was unreadable. */
function failureLines(message: DeadLetteredMessage, time: string): { lines: FailureEntry[]; unreadable: boolean } {
  const messageId = idOf(message.messageId);
  const deadLettered = `Service Bus dead-lettered the change (${message.deadLetterReason || 'no reason given'}${
    message.deadLetterErrorDescription ? `: ${message.deadLetterErrorDescription}` : ''
  })`;
  const attempts = typeof message.deliveryCount === 'number' ? message.deliveryCount : undefined;
  const change = readChangeMessage(message.body);

  if ('error' in change) {
    return {
      unreadable: true,
      lines: [
        {
          profileId: UNATTRIBUTED_PROFILE_ID,
          entity: 'unknown',
          recordId: messageId ?? 'unknown',
          changeType: 'unknown',
          time,
          // The body is not copied: it may hold record data, which must not rest in plaintext.
          reason: `${deadLettered}, and its body is not a change message (${change.error}); message id ${messageId ?? 'none'}. Nothing can be resynced from it; check which component sent it to 'changes'.`,
          code: DEAD_LETTERED,
          attempts,
          correlationId: idOf(message.correlationId),
        },
      ],
    };
  }

  const reason = `${deadLettered}. The target does not have this change; resync the record (POST /api/profiles/{id}/failures/resync).`;
  const valid = change.profileIds.filter(isFailureLogProfileId);
  const invalid = change.profileIds.filter((id) => !valid.includes(id as string));
  const line = (profileId: string, why: string): FailureEntry => ({
    profileId,
    entity: change.entity,
    recordId: change.recordId,
    changeType: change.operation,
    time,
    reason: why,
    code: DEAD_LETTERED,
    attempts,
    correlationId: change.correlationId ?? idOf(message.correlationId),
  });
  const lines = valid.map((profileId) => line(profileId, reason));
  if (invalid.length || !valid.length) {
    const named = invalid.length
      ? `names invalid profile id(s) ${invalid.map((id) => JSON.stringify(id)).join(', ')}`
      : 'names no profile';
    lines.push(
      line(UNATTRIBUTED_PROFILE_ID, `${deadLettered}; the message ${named}, message id ${messageId ?? 'none'}.`),
    );
  }
  return { lines, unreadable: false };
}

function idOf(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (Buffer.isBuffer(value)) return value.toString('hex');
  return String(value);
}
