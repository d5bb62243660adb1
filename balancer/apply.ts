import { retryDelayMs } from '../lib/backoff';
import type { Logger } from '../lib/logger';
import { routeText } from '../lib/routes';
import { EMPTY_TABLE, onlyUpstreamsChanged, tableKey, type GatewayTable } from './routing';
import type { StatusStore } from './status';

/** The nginx operations the applier needs (the real one is Nginx; unit tests pass a fake). */
export interface ConfigTarget {
  /** Writes a candidate config without checking it. */
  writeCandidate(text: string): Promise<void>;
  /** Writes and checks a candidate config; the error text, or null when it is valid. */
  check(text: string): Promise<string | null>;
  installCandidate(): Promise<void>;
  /** Reloads nginx and resolves once it serves the config numbered `generation`. */
  reload(generation: number): Promise<void>;
}

export interface ApplierOptions {
  target: ConfigTarget;
  /** Renders the full config for a routing table; `generation` numbers it (the initial config is 0). */
  renderText(table: GatewayTable, generation: number): Promise<string> | string;
  /** The table nginx was started with (default: none). */
  initial?: GatewayTable;
  /** Where the served table and the outcome of each apply are recorded for display. */
  status: StatusStore;
  logger: Logger;
  /** Quiet time that ends a burst of changes. */
  debounceMs?: number;
  /** A burst never delays a reload longer than this. */
  maxDelayMs?: number;
  /** A table that could not be applied is tried again after this, doubling per failure up to retryMaxMs. */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /**
   * Whether every config must pass `nginx -t`, even one whose only change is upstream addresses (which is
   * otherwise installed unchecked: nginx's reload refuses what it cannot load). The unit tests of the check
   * path use it with tables that change only addresses; the balancer does not.
   */
  alwaysCheck?(): boolean;
  /** Called once nginx serves a new table (after the status has it), for the evidence page's stream. */
  onApplied?(table: GatewayTable): void;
}

export interface Applier {
  /** Asks for `table` to be served; bursts are coalesced, applies never overlap. */
  request(table: GatewayTable): void;
  /** Resolves once nothing is pending or running (a retry waiting out its backoff does not count). */
  idle(): Promise<void>;
  stop(): void;
}

/**
 * The "act" step: turns wanted routing tables into checked, installed, reloaded nginx configs.
 * A config that fails `nginx -t` is never installed; the last good one stays loaded. A table that could
 * not be applied is retried with backoff until it is, and a newer one replaces it at once, so no
 * failure can stop later changes from reaching nginx. It owns what nginx serves and the failures in a row;
 * the status store only records them.
 */
export function createApplier(o: ApplierOptions): Applier {
  const debounceMs = o.debounceMs ?? 50;
  const maxDelayMs = o.maxDelayMs ?? 250;
  const retryInitialMs = o.retryInitialMs ?? 500;
  const retryMaxMs = o.retryMaxMs ?? 10_000;
  let wanted: GatewayTable | undefined;
  let firstRequestAt = 0;
  let lastRequestAt = 0;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  let generation = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  let served = o.initial ?? EMPTY_TABLE;
  let failedApplies = 0;
  o.status.recordServed(served, false);

  /** Null once nginx serves `table`; else what went wrong (`refused` when nginx -t said no). */
  const applyOnce = async (table: GatewayTable, requestedAt: number): Promise<{ error: string; refused: boolean } | null> => {
    const previous = served;
    if (tableKey(previous) === tableKey(table)) return null;
    generation++;
    const startedAt = Date.now();
    const text = await o.renderText(table, generation);
    // Skipped only for a change of addresses, and never on a retry: a reload nginx refused is checked next time.
    const checked = !onlyUpstreamsChanged(previous, table) || failedApplies > 0 || (o.alwaysCheck?.() ?? false);
    if (checked) {
      const error = await o.target.check(text);
      if (error !== null) return { error, refused: true };
    } else await o.target.writeCandidate(text);
    await o.target.installCandidate();
    await o.target.reload(generation);
    served = table;
    const reloadMs = Date.now() - startedAt;
    o.status.recordServed(table, true, undefined, reloadMs);
    o.logger.info('nginx reloaded', {
      ...tableChange(previous, table),
      reloads: o.status.read().reloads,
      reloadMs,
      checked,
      msSinceChange: Date.now() - requestedAt,
    });
    o.onApplied?.(table);
    return null;
  };

  const retryLater = (table: GatewayTable, failedApplies: number) => {
    const delay = retryDelayMs(failedApplies, { firstMs: retryInitialMs, maxMs: retryMaxMs });
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      if (wanted === undefined) request(table);
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
    const table = wanted;
    const requestedAt = firstRequestAt;
    wanted = undefined;
    running = applyOnce(table, requestedAt)
      .catch((error: unknown) => ({ error: String(error instanceof Error ? error.message : error), refused: false }))
      .then((failure) => {
        if (failure === null) {
          if (failedApplies > 0) o.logger.info('the wanted routing table is applied again', { failedAttempts: failedApplies });
          failedApplies = 0;
          o.status.recordApplySuccess();
          return;
        }
        failedApplies++;
        o.status.recordApplyFailure(failure.error, failedApplies);
        // A newer table already waiting goes first; it is retried itself if it fails too.
        const retryInMs = wanted === undefined && !stopped ? retryLater(table, failedApplies) : null;
        const msg = failure.refused
          ? 'rendered nginx config refused by nginx -t; keeping the last good one'
          : 'applying the nginx config failed';
        o.logger.error(msg, { error: failure.error, wanted: table.services, attempt: failedApplies, retryInMs });
      })
      .finally(() => {
        running = undefined;
        // Changes that arrived while nginx was being checked and reloaded keep their own schedule.
        if (wanted !== undefined && !timer) schedule();
      });
  };

  function request(table: GatewayTable) {
    if (stopped) return;
    if (retryTimer) clearTimeout(retryTimer);
    retryTimer = undefined;
    lastRequestAt = Date.now();
    if (wanted === undefined) firstRequestAt = lastRequestAt;
    wanted = table;
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

/** What a reload changed, per service that changed (with a thousand services, the others would fill the log), for its log line. */
export function tableChange(previous: GatewayTable, next: GatewayTable): Record<string, unknown> {
  const before = new Map(previous.services.map((s) => [s.name, s]));
  const after = new Map(next.services.map((s) => [s.name, s]));
  const services: Record<string, unknown> = {};
  for (const name of new Set([...before.keys(), ...after.keys()])) {
    const was = before.get(name);
    const now = after.get(name);
    const routes = (s: typeof was) => (s ? s.routes.map(routeText) : []);
    const upstreams = (s: typeof was) => s?.upstreams ?? [];
    if (was && now && JSON.stringify(was) === JSON.stringify(now)) continue;
    services[name] = {
      routes: routes(now),
      upstreams: upstreams(now),
      added: upstreams(now).filter((u) => !upstreams(was).includes(u)),
      removed: upstreams(was).filter((u) => !upstreams(now).includes(u)),
      ...(was === undefined ? { routed: true } : now === undefined ? { unrouted: true } : {}),
    };
  }
  return { services, routedServices: next.services.length };
}
