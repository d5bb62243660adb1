// One blocking query asked again and again, with its own index and backoff (the rules are lib/consul-index.ts
// and lib/backoff.ts); the watcher runs two of them, the catalog's and the health state's.
import { retryDelayMs } from '../lib/backoff';
import { nextIndex } from '../lib/consul-index';
import { wakeableSleep } from '../lib/wakeable-sleep';
import { describeError, type ConsulAnswer } from './consul-client';

/** What a loop reports; a failing loop restarts at index 0 (the agent may have restarted with a lower index). */
export interface LoopEvents {
  onFailure(error: string, failedAttempts: number): void;
  onRecovered(failedAttempts: number): void;
  onIndexReset(previous: number, received: number): void;
}

export interface QueryLoopOptions<T> extends LoopEvents {
  fetch(index: number, signal: AbortSignal): Promise<ConsulAnswer<T>>;
  onAnswer(answer: ConsulAnswer<T>): Promise<void> | void;
  backoffInitialMs: number;
  backoffMaxMs: number;
}

export function queryLoop<T>(o: QueryLoopOptions<T>): { stop(): void } {
  const controller = new AbortController();
  const { sleep: pause, wake } = wakeableSleep();
  let stopped = false;
  let index = 0;
  let lastSeen = 0;
  let failedAttempts = 0;
  void (async () => {
    while (!stopped) {
      let answer: ConsulAnswer<T>;
      try {
        answer = await o.fetch(index, controller.signal);
      } catch (error) {
        if (stopped) return;
        failedAttempts++;
        o.onFailure(describeError(error), failedAttempts);
        index = 0;
        await pause(retryDelayMs(failedAttempts, { firstMs: o.backoffInitialMs, maxMs: o.backoffMaxMs }));
        continue;
      }
      if (stopped) return;
      if (failedAttempts > 0) {
        const failed = failedAttempts;
        failedAttempts = 0;
        o.onRecovered(failed);
      }
      const next = nextIndex(lastSeen, answer.index);
      if (next.reset) o.onIndexReset(lastSeen, answer.index);
      index = next.index;
      lastSeen = answer.index;
      await o.onAnswer(answer);
    }
  })();
  return {
    stop() {
      stopped = true;
      controller.abort();
      wake();
    },
  };
}
