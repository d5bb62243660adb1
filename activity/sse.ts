// Server-Sent Events: the framing (pure), one bounded queue per client, and the hub that pushes every
// frame to every connected client. A client that does not read falls behind by at most its queue's
// bound and is then disconnected, so no client can make the service's memory grow without bound.
import type { Logger } from '../lib/logger';

/** One SSE message: `id` (what EventSource sends back as Last-Event-ID), then `data`, one line each. */
export function sseMessage(id: string, data: string): string {
  if (/[\r\n]/.test(id)) throw new RangeError('an SSE id cannot hold a line break');
  const lines = data.split(/\r\n|\r|\n/).map((line) => `data: ${line}\n`);
  return `id: ${id}\n${lines.join('')}\n`;
}

/** A comment line: ignored by EventSource, it keeps idle connections (and proxies' timers) alive. */
export function sseComment(text: string): string {
  return `: ${text.replace(/[\r\n]+/g, ' ')}\n\n`;
}

/** How an SSE connection ended: its client left, it fell behind, or the service stopped. */
export type CloseReason = 'gone' | 'slow' | 'stopping';

/** The frames one client has yet to receive, at most `limit`; a push beyond that closes it as 'slow'. */
export class SseClient {
  private readonly queue: string[] = [];
  private waiting: ((frame: string | undefined) => void) | undefined;
  private reason: CloseReason | undefined;
  private readonly closeListeners: Array<(reason: CloseReason) => void> = [];

  constructor(private readonly limit: number) {}

  get closedBecause(): CloseReason | undefined {
    return this.reason;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Queues `frame`; false when the client is closed, or was just closed for falling behind. */
  push(frame: string): boolean {
    if (this.reason) return false;
    if (this.waiting) {
      const deliver = this.waiting;
      this.waiting = undefined;
      deliver(frame);
      return true;
    }
    if (this.queue.length >= this.limit) {
      this.close('slow');
      return false;
    }
    this.queue.push(frame);
    return true;
  }

  /** The next frame, once there is one; undefined once the client is closed (queued frames are dropped). */
  next(): Promise<string | undefined> {
    if (this.reason) return Promise.resolve(undefined);
    const frame = this.queue.shift();
    if (frame !== undefined) return Promise.resolve(frame);
    return new Promise((resolve) => (this.waiting = resolve));
  }

  close(reason: CloseReason): void {
    if (this.reason) return;
    this.reason = reason;
    this.queue.length = 0;
    this.waiting?.(undefined);
    this.waiting = undefined;
    for (const listener of this.closeListeners) listener(reason);
  }

  onClose(listener: (reason: CloseReason) => void): void {
    if (this.reason) listener(this.reason);
    else this.closeListeners.push(listener);
  }
}

export interface SseHubOptions {
  /** A heartbeat comment goes to every client this often. */
  heartbeatMs: number;
  /** Frames one client may have queued before it is disconnected. */
  queueLimit: number;
  logger: Logger;
}

/** Every connected client; what is broadcast reaches each one's queue at once, never waiting for any. */
export class SseHub {
  private readonly clients = new Set<SseClient>();
  private readonly heartbeat: NodeJS.Timeout;

  constructor(private readonly options: SseHubOptions) {
    this.heartbeat = setInterval(() => this.broadcast(sseComment('heartbeat')), options.heartbeatMs);
    this.heartbeat.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  connect(): SseClient {
    const client = new SseClient(this.options.queueLimit);
    this.clients.add(client);
    client.onClose((reason) => {
      this.clients.delete(client);
      if (reason === 'slow') {
        this.options.logger.warn('an event stream client fell behind; disconnected', { queueLimit: this.options.queueLimit });
      }
    });
    return client;
  }

  broadcast(frame: string): void {
    for (const client of [...this.clients]) client.push(frame);
  }

  /** Ends every stream (the service is stopping: EventSource clients reconnect, to another replica). */
  closeAll(): void {
    for (const client of [...this.clients]) client.close('stopping');
  }

  stop(): void {
    clearInterval(this.heartbeat);
    this.closeAll();
  }
}
