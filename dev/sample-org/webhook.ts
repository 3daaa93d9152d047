/**
 * Delivers the sample org's webhooks the way an asynchronous plug-in step registered on a webhook does:
 * after the write has answered, POST the RemoteExecutionContext to `<url>?code=<key>`, and retry a few
 * times with backoff when the endpoint answers 5xx or cannot be reached.
 */

export interface WebhookDelivery {
  messageName: string;
  entity: string;
  id: string;
  /** The last HTTP status (0 when the endpoint could not be reached). */
  status: number;
  attempts: number;
}

export interface WebhookInfo {
  messageName: string;
  entity: string;
  id: string;
  organizationId: string;
  correlationId: string;
}

export interface WebhookTarget {
  url: string;
  /** The WebhookKey, sent as `?code=`. */
  key?: string;
}

export class WebhookDispatcher {
  private readonly pending = new Set<Promise<void>>();
  /** Every finished delivery, oldest first. */
  readonly deliveries: WebhookDelivery[] = [];

  constructor(
    private readonly maxAttempts = 4,
    private readonly baseDelayMs = 200,
  ) {}

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Queues one delivery; returns at once, like Dataverse's asynchronous service. */
  fire(target: WebhookTarget, body: string, info: WebhookInfo): void {
    const url = new URL(target.url);
    if (target.key) url.searchParams.set('code', target.key);
    const delivery = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.deliver(url.toString(), body, info))
      .finally(() => this.pending.delete(delivery));
    this.pending.add(delivery);
  }

  /** Resolves when every queued delivery has finished (including ones queued while waiting). */
  async drain(): Promise<void> {
    while (this.pending.size) await Promise.allSettled([...this.pending]);
  }

  private async deliver(url: string, body: string, info: WebhookInfo): Promise<void> {
    let status = 0;
    let attempts = 0;
    while (attempts < this.maxAttempts) {
      attempts++;
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-ms-dynamics-organization': info.organizationId,
            'x-ms-dynamics-entity-name': info.entity,
            'x-ms-dynamics-request-name': info.messageName,
            'x-ms-correlation-request-id': info.correlationId,
          },
          body,
          signal: AbortSignal.timeout(60_000),
        });
        status = res.status;
        await res.arrayBuffer();
        if (status < 500) break;
      } catch {
        status = 0;
      }
      if (attempts < this.maxAttempts) await new Promise((r) => setTimeout(r, this.baseDelayMs * 2 ** (attempts - 1)));
    }
    this.deliveries.push({ messageName: info.messageName, entity: info.entity, id: info.id, status, attempts });
  }
}
