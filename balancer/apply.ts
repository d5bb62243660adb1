import type { Logger } from '../lib/logger';
import { sameUpstreams } from './render';
import { recordServed, type BalancerStatus } from './status';

/** The nginx operations the applier needs (the real one is Nginx; unit tests pass a fake). */
export interface ConfigTarget {
  /** Writes and checks a candidate config; the error text, or null when it is valid. */
  check(text: string): Promise<string | null>;
  installCandidate(): Promise<void>;
  /** Reloads nginx and resolves once it serves the config numbered `generation`. */
  reload(generation: number): Promise<void>;
}

export interface ApplierOptions {
  target: ConfigTarget;
  /** Renders the full config for a set of upstreams; `generation` numbers it (the initial config is 0). */
  renderText(upstreams: readonly string[], generation: number): Promise<string> | string;
  status: BalancerStatus;
  logger: Logger;
  /** Quiet time that ends a burst of changes. */
  debounceMs?: number;
  /** A burst never delays a reload longer than this. */
  maxDelayMs?: number;
  /** A set that could not be applied is tried again after this, doubling per failure up to retryMaxMs. */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** Called once nginx serves a new set (after the status has it), for the evidence page's stream. */
  onApplied?(upstreams: readonly string[]): void;
}

export interface Applier {
  /** Asks for `upstreams` to be served; bursts are coalesced, applies never overlap. */
  request(upstreams: readonly string[]): void;
  /** Resolves once nothing is pending or running (a retry waiting out its backoff does not count). */
  idle(): Promise<void>;
  stop(): void;
}

/**
 * The "act" step: turns wanted upstream sets into checked, installed, reloaded nginx configs.
 * A config that fails `nginx -t` is never installed; the last good one stays loaded. A set that could
 * not be applied is retried with backoff until it is, and a newer set replaces it at once, so no
 * failure can stop later changes from reaching nginx.
 */
export function createApplier(o: ApplierOptions): Applier {
  const debounceMs = o.debounceMs ?? 50;
  const maxDelayMs = o.maxDelayMs ?? 250;
  const retryInitialMs = o.retryInitialMs ?? 500;
  const retryMaxMs = o.retryMaxMs ?? 10_000;
  let wanted: readonly string[] | undefined;
  let firstRequestAt = 0;
  let lastRequestAt = 0;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  let generation = 0;
  let retryTimer: NodeJS.Timeout | undefined;

  const recordError = (error: string) => {
    o.status.lastReloadError = error;
    o.status.lastReloadErrorAt = new Date().toISOString();
  };

  /** Null once nginx serves `upstreams`; else what went wrong (`refused` when nginx -t said no). */
  const applyOnce = async (upstreams: readonly string[], requestedAt: number): Promise<{ error: string; refused: boolean } | null> => {
    if (sameUpstreams(o.status.upstreams, upstreams)) return null;
    generation++;
    const text = await o.renderText(upstreams, generation);
    const error = await o.target.check(text);
    if (error !== null) return { error, refused: true };
    await o.target.installCandidate();
    await o.target.reload(generation);
    const previous = o.status.upstreams;
    recordServed(o.status, upstreams);
    o.status.reloads++;
    o.status.changedAt = o.status.lastReloadAt = new Date().toISOString();
    o.logger.info('nginx reloaded', {
      upstreams,
      added: upstreams.filter((u) => !previous.includes(u)),
      removed: previous.filter((u) => !upstreams.includes(u)),
      reloads: o.status.reloads,
      msSinceChange: Date.now() - requestedAt,
    });
    o.onApplied?.(upstreams);
    return null;
  };

  const retryLater = (upstreams: readonly string[]) => {
    const delay = Math.min(retryMaxMs, retryInitialMs * 2 ** Math.min(o.status.failedApplies - 1, 20));
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      if (wanted === undefined) request(upstreams);
    }, delay);
    return delay;
  };

  // A burst ends after `debounceMs` of quiet, but never later than `maxDelayMs` after its first change.
  const schedule = () => {
    if (timer) clearTimeout(timer);
    const due = Math.min(lastRequestAt + debounceMs, firstRequestAt + maxDelayMs);
    timer = setTimeout(run, Math.max(0, due - Date.now()));
  };

  const run = () => {
    timer = undefined;
    if (running || wanted === undefined || stopped) return;
    const upstreams = wanted;
    const requestedAt = firstRequestAt;
    wanted = undefined;
    running = applyOnce(upstreams, requestedAt)
      .catch((error: unknown) => ({ error: String(error instanceof Error ? error.message : error), refused: false }))
      .then((failure) => {
        if (failure === null) {
          if (o.status.failedApplies > 0)
            o.logger.info('the wanted upstream set is applied again', { failedAttempts: o.status.failedApplies });
          o.status.failedApplies = 0;
          return;
        }
        recordError(failure.error);
        o.status.failedApplies++;
        // A newer set already waiting goes first; it is retried itself if it fails too.
        const retryInMs = wanted === undefined && !stopped ? retryLater(upstreams) : null;
        const msg = failure.refused
          ? 'rendered nginx config refused by nginx -t; keeping the last good one'
          : 'applying the nginx config failed';
        o.logger.error(msg, { error: failure.error, wanted: upstreams, attempt: o.status.failedApplies, retryInMs });
      })
      .finally(() => {
        running = undefined;
        // Changes that arrived while nginx was being checked and reloaded keep their own schedule.
        if (wanted !== undefined && !timer) schedule();
      });
  };

  function request(upstreams: readonly string[]) {
    if (stopped) return;
    if (retryTimer) clearTimeout(retryTimer);
    retryTimer = undefined;
    lastRequestAt = Date.now();
    if (wanted === undefined) firstRequestAt = lastRequestAt;
    wanted = upstreams;
    schedule();
  }

  return {
    request,
    async idle() {
      while (timer || running) {
        if (running) await running;
        else await new Promise((r) => setTimeout(r, 5));
      }
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (retryTimer) clearTimeout(retryTimer);
      timer = retryTimer = undefined;
    },
  };
}
