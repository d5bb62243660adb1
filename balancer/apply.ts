import type { Logger } from '../lib/logger';
import { sameUpstreams } from './render';
import type { BalancerStatus } from './status';

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
}

export interface Applier {
  /** Asks for `upstreams` to be served; bursts are coalesced, applies never overlap. */
  request(upstreams: readonly string[]): void;
  /** Resolves once nothing is pending or running. */
  idle(): Promise<void>;
  stop(): void;
}

/**
 * The "act" step: turns wanted upstream sets into checked, installed, reloaded nginx configs.
 * A config that fails `nginx -t` is never installed; the last good one stays loaded.
 */
export function createApplier(o: ApplierOptions): Applier {
  const debounceMs = o.debounceMs ?? 50;
  const maxDelayMs = o.maxDelayMs ?? 250;
  let wanted: readonly string[] | undefined;
  let firstRequestAt = 0;
  let lastRequestAt = 0;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  let generation = 0;

  const recordError = (error: string) => {
    o.status.lastReloadError = error;
    o.status.lastReloadErrorAt = new Date().toISOString();
  };

  const applyOnce = async (upstreams: readonly string[], requestedAt: number) => {
    if (sameUpstreams(o.status.upstreams, upstreams)) return;
    generation++;
    const text = await o.renderText(upstreams, generation);
    const error = await o.target.check(text);
    if (error !== null) {
      recordError(error);
      o.logger.error('rendered nginx config refused by nginx -t; keeping the last good one', { error, wanted: upstreams });
      return;
    }
    await o.target.installCandidate();
    await o.target.reload(generation);
    const previous = o.status.upstreams;
    o.status.upstreams = [...upstreams];
    o.status.reloads++;
    o.status.changedAt = o.status.lastReloadAt = new Date().toISOString();
    o.logger.info('nginx reloaded', {
      upstreams,
      added: upstreams.filter((u) => !previous.includes(u)),
      removed: previous.filter((u) => !upstreams.includes(u)),
      reloads: o.status.reloads,
      msSinceChange: Date.now() - requestedAt,
    });
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
      .catch((error) => {
        recordError(String(error instanceof Error ? error.message : error));
        o.logger.error('applying the nginx config failed', { error: o.status.lastReloadError });
      })
      .finally(() => {
        running = undefined;
        // Changes that arrived while nginx was being checked and reloaded keep their own schedule.
        if (wanted !== undefined && !timer) schedule();
      });
  };

  return {
    request(upstreams) {
      if (stopped) return;
      lastRequestAt = Date.now();
      if (wanted === undefined) firstRequestAt = lastRequestAt;
      wanted = upstreams;
      schedule();
    },
    async idle() {
      while (timer || running) {
        if (running) await running;
        else await new Promise((r) => setTimeout(r, 5));
      }
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}
