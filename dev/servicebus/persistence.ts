/** A JSON snapshot of every queued message, so a stand-in restarted on the same file loses nothing. */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { joinMessage, splitMessage } from './message-sections.js';
import type { QueueSnapshot } from './namespace.js';

interface SnapshotFile {
  version: 1;
  queues: Array<{
    name: string;
    nextSequence: number;
    messages: Array<{
      sequenceNumber: number;
      enqueuedTime: number;
      deliveries: number;
      scheduledFor?: number;
      /** The encoded AMQP message, base64. */
      data: string;
    }>;
  }>;
}

export function readSnapshot(file: string): QueueSnapshot[] {
  if (!existsSync(file)) return [];
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as SnapshotFile;
  return parsed.queues.map((q) => ({
    name: q.name,
    nextSequence: q.nextSequence,
    messages: q.messages.map((m) => ({
      sequenceNumber: m.sequenceNumber,
      enqueuedTime: m.enqueuedTime,
      deliveries: m.deliveries,
      scheduledFor: m.scheduledFor,
      sections: splitMessage(Buffer.from(m.data, 'base64')),
    })),
  }));
}

/** Written to a temporary file and renamed, so a crash mid-write leaves the previous snapshot intact. */
export function writeSnapshot(file: string, queues: QueueSnapshot[]): void {
  const content: SnapshotFile = {
    version: 1,
    queues: queues.map((q) => ({
      name: q.name,
      nextSequence: q.nextSequence,
      messages: q.messages.map((m) => ({
        sequenceNumber: m.sequenceNumber,
        enqueuedTime: m.enqueuedTime,
        deliveries: m.deliveries,
        scheduledFor: m.scheduledFor,
        data: joinMessage(m.sections).toString('base64'),
      })),
    })),
  };
  mkdirSync(dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify(content));
  renameSync(temporary, file);
}
