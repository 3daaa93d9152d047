import { type AppError, toAppError } from './errors.js';
import type { Logger } from './log.js';

/**
 * The boundary of a trigger that nobody answers (Service Bus, timer, activity): whatever is thrown becomes a
 * coded error, is logged once with `failed` as the message, and is thrown again so the host retries or
 * redelivers. The HTTP counterpart, which answers instead, is `httpBoundary`.
 */
export async function triggerBoundary<T>(logger: Logger, failed: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (thrown) {
    const error: AppError = toAppError(thrown);
    logger.error(failed, { error });
    throw error;
  }
}
