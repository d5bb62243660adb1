// The two windows of time the watcher keeps about Consul: an outage (from the first failed query until none
// fails: one warning and one recovery line) and the empty-set grace that follows an outage or an index
// reset (routing.ts holdThroughGrace says what it keeps).
import type { Logger } from '../lib/logger';

export interface OutageWindow {
  /** A query (named by `key`) failed; logs the outage's first failure. */
  failed(key: string, what: string, error: string, failedAttempts: number): void;
  /** The query answered again; true when this ends an outage it was part of (the grace starts). */
  recovered(key: string, what: string, failedAttempts: number): boolean;
  /** A query that is no longer asked (its service left) does not keep the outage open. */
  forget(key: string): void;
  state(): { reachable: boolean; lastError: string | null; failedAttempts: number };
}

export function outageWindow(
  logger: Logger,
  kept: () => unknown,
  onChange: (reachable: boolean, lastError: string | null) => void,
): OutageWindow {
  const failing = new Set<string>();
  let outage = false;
  let startedAt = 0;
  let lastError: string | null = null;
  let failedMax = 0;
  const report = () => onChange(failing.size === 0, lastError);
  const endIfClear = () => {
    if (failing.size > 0) return;
    outage = false;
    lastError = null;
    failedMax = 0;
  };
  return {
    failed(key, what, error, failedAttempts) {
      lastError = error;
      failedMax = Math.max(failedMax, failedAttempts);
      if (!outage) {
        outage = true;
        startedAt = Date.now();
        logger.warn('Consul query failed; keeping the last good routing table and retrying with backoff', {
          query: what,
          error,
          kept: kept(),
        });
      }
      failing.add(key);
      report();
    },
    recovered(key, what, failedAttempts) {
      failing.delete(key);
      const wasOutage = outage;
      if (failing.size === 0 && outage)
        logger.info('Consul answers again', { query: what, failedAttempts, outageMs: Date.now() - startedAt });
      endIfClear();
      report();
      return wasOutage;
    },
    forget(key) {
      if (!failing.delete(key)) return;
      endIfClear();
      report();
    },
    state: () => ({ reachable: failing.size === 0, lastError, failedAttempts: failedMax }),
  };
}

export interface GraceWindow {
  /** Opens the window unless one is open already (or the grace is off). */
  start(why: string): void;
  open(): boolean;
  leftMs(): number;
  /** Calls `onEnd` once when an open window ends by itself (not when it is ended). */
  whenOver(onEnd: () => void): boolean;
  end(): void;
}

export function graceWindow(logger: Logger, graceMs: number): GraceWindow {
  let until = 0;
  let timer: NodeJS.Timeout | undefined;
  const end = () => {
    until = 0;
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
  return {
    start(why) {
      if (graceMs <= 0 || Date.now() < until) return;
      end();
      until = Date.now() + graceMs;
      logger.info('empty-set grace started', { why, graceMs });
    },
    open: () => Date.now() < until,
    leftMs: () => Math.max(0, until - Date.now()),
    whenOver(onEnd) {
      if (timer) return false;
      timer = setTimeout(() => {
        timer = undefined;
        until = 0;
        onEnd();
      }, until - Date.now());
      return true;
    },
    end,
  };
}
