// The bounded reads of `/v1/health/service/<name>`: only services whose health changed (or newly
// followed) are read, at most `concurrency` at once, whatever the number of services. A service marked
// again while its read runs is read once more after it; a failed read is retried with backoff.
import { retryDelayMs } from '../lib/backoff';
import { describeError, type ReadService } from './consul-client';
import type { HealthEntry } from './consul-entries';
import type { LoopEvents } from './query-loop';

export interface ServiceReadsOptions extends Omit<LoopEvents, 'onIndexReset'> {
  read: ReadService;
  concurrency: number;
  /** An answer for `service`, with its X-Consul-Index. */
  onAnswer(service: string, entries: readonly HealthEntry[], index: number): Promise<void> | void;
  backoffInitialMs: number;
  backoffMaxMs: number;
}

export interface ServiceReads {
  /** Reads these services (again), soon. */
  mark(services: Iterable<string>): void;
  /** A service no longer followed: never read it again (a read under way is left to finish and ignored). */
  drop(service: string): void;
  /** Whether other reads wait or run besides the one answering now. */
  busy(): boolean;
  stop(): void;
}

export function serviceReads(o: ServiceReadsOptions): ServiceReads {
  const controller = new AbortController();
  // Every worker's backoff ends at stop.
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      controller.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
  const pending = new Set<string>();
  const running = new Set<string>();
  let workers = 0;
  let failedAttempts = 0;
  let stopped = false;

  const next = (): string | undefined => {
    for (const name of pending) if (!running.has(name)) return name;
    return undefined;
  };

  const work = async () => {
    workers++;
    try {
      for (let name = next(); name !== undefined && !stopped; name = next()) {
        pending.delete(name);
        running.add(name);
        try {
          const answer = await o.read(name, controller.signal);
          if (stopped) return;
          if (failedAttempts > 0) {
            const failed = failedAttempts;
            failedAttempts = 0;
            o.onRecovered(failed);
          }
          await o.onAnswer(name, answer.body, answer.index);
        } catch (error) {
          if (stopped) return;
          pending.add(name);
          failedAttempts++;
          o.onFailure(describeError(error), failedAttempts);
          await pause(retryDelayMs(failedAttempts, { firstMs: o.backoffInitialMs, maxMs: o.backoffMaxMs }));
        } finally {
          running.delete(name);
        }
      }
    } finally {
      workers--;
    }
  };

  const start = () => {
    while (!stopped && workers < o.concurrency && next() !== undefined) void work();
  };

  return {
    mark(services) {
      for (const name of services) pending.add(name);
      start();
    },
    drop(service) {
      pending.delete(service);
    },
    busy: () => pending.size > 0 || running.size > 1,
    stop() {
      stopped = true;
      controller.abort();
    },
  };
}
