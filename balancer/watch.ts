// The "watch" step: follows Consul with blocking queries (the catalog, to learn which services ask for
// routes, and each routed service's health) and hands on the routing table it implies. The rules (next
// index, backoff, route selection, the empty-set grace) are pure functions in routing.ts; this file only
// fetches, applies them and calls back.
import { retryDelayMs } from '../lib/backoff';
import { nextIndex } from '../lib/consul-index';
import type { Logger } from '../lib/logger';
import { wakeableSleep } from '../lib/wakeable-sleep';
import type { BalancerConfig } from './config';
import { hostNamesOf, selectUpstreams, type DroppedEntry, type HealthEntry, type Resolution, type UpstreamSelection } from './render';
import type { ResolveNames } from './resolve';
import {
  claimOf,
  holdThroughGrace,
  isPassing,
  routedServices,
  routeTable,
  tableKey,
  type DroppedRoute,
  type GatewayTable,
  type ServiceClaim,
} from './routing';

/** One answer of a blocking query: the body and Consul's X-Consul-Index. */
export interface ConsulAnswer<T> {
  body: T;
  index: number;
}

/** `/v1/catalog/services`: service name → the union of its instances' tags. */
export type FetchCatalog = (index: number, signal: AbortSignal) => Promise<ConsulAnswer<Record<string, string[] | null>>>;
/** `/v1/health/service/<name>`: every registered instance with its checks (not only the passing ones). */
export type FetchHealth = (service: string, index: number, signal: AbortSignal) => Promise<ConsulAnswer<HealthEntry[]>>;

/** Why a request to Consul failed, with the system error behind fetch's "fetch failed". */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: string; message?: string } | undefined;
  return cause ? `${error.message}: ${cause.code ?? cause.message ?? 'no detail'}` : error.message;
}

/** Blocking queries over Consul's HTTP API, with the balancer's token; `waitSeconds` 0 asks for the current answer. */
export function consulFetchers(config: BalancerConfig, waitSeconds = 30): { catalog: FetchCatalog; health: FetchHealth } {
  const headers: Record<string, string> = config.consulToken !== undefined ? { 'X-Consul-Token': config.consulToken } : {};
  // Consul adds up to wait/16 of jitter; allow for it before calling the query dead.
  const timeoutMs = waitSeconds * 1000 + Math.max((waitSeconds * 1000) / 8, 5000);
  const query = async <T>(path: string, index: number, signal: AbortSignal): Promise<ConsulAnswer<T>> => {
    const url = `${config.consul.url}${path}?index=${index}&wait=${waitSeconds}s`;
    let res: Response;
    try {
      res = await fetch(url, { headers, signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) });
    } catch (error) {
      throw new Error(`Consul ${path}: ${describe(error)}`, { cause: error });
    }
    const text = await res.text();
    if (!res.ok) throw new Error(`Consul ${path}: HTTP ${res.status} ${text.trim().slice(0, 200)}`);
    const header = res.headers.get('x-consul-index');
    const parsed = Number(header);
    if (header === null || !Number.isFinite(parsed)) throw new Error(`Consul ${path} answered without a valid X-Consul-Index header`);
    return { body: JSON.parse(text) as T, index: parsed };
  };
  return {
    catalog: async (index, signal) => {
      const answer = await query<Record<string, string[] | null>>('/v1/catalog/services', index, signal);
      return { index: answer.index, body: answer.body !== null && typeof answer.body === 'object' ? answer.body : {} };
    },
    health: async (service, index, signal) => {
      const answer = await query<HealthEntry[]>(`/v1/health/service/${encodeURIComponent(service)}`, index, signal);
      return { index: answer.index, body: Array.isArray(answer.body) ? answer.body : [] };
    },
  };
}

/** What the follower knows about one routed service from its last health answer. */
export interface ServiceView {
  /** Every registered instance. */
  entries: readonly HealthEntry[];
  /** The upstreams of the passing instances, and the instances left out. */
  selection: UpstreamSelection;
  resolved: ReadonlyMap<string, Resolution>;
}

/** Everything the follower knows after an answer, for the status and the evidence page. */
export interface GatewayView {
  index: number;
  services: ReadonlyMap<string, ServiceView>;
  droppedRoutes: readonly DroppedRoute[];
}

export interface FollowerOptions {
  fetchCatalog: FetchCatalog;
  fetchHealth: FetchHealth;
  /** Turns the host names among the entries into addresses (the real one is nameResolver; tests pass a map). */
  resolveNames: ResolveNames;
  /** While some name does not resolve, it is looked up again this often, even if Consul has no news. */
  resolveRetryMs?: number;
  logger: Logger;
  /** How long an empty set is ignored right after a Consul outage or index reset. */
  emptyGraceMs: number;
  /** Called with every effective change of the routing table (never twice with the same table). */
  onChange(table: GatewayTable): void;
  /** Called after every answer (before any grace), for the status page, the evidence page and logs. */
  onConsul?(view: GatewayView): void;
  /** Called whenever a query fails or Consul answers again. */
  onReachability?(reachable: boolean, lastError: string | null): void;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
}

export interface Follower {
  stop(): void;
  /** Whether a query is failing now, and why. */
  consulState(): { reachable: boolean; lastError: string | null; failedAttempts: number };
  /** The table once the catalog and every routed service have answered, or the last one emitted after `timeoutMs`. */
  firstTable(timeoutMs: number): Promise<GatewayTable | undefined>;
}

interface QueryLoopOptions<T> {
  fetch(index: number, signal: AbortSignal): Promise<ConsulAnswer<T>>;
  onAnswer(answer: ConsulAnswer<T>): Promise<void> | void;
  onFailure(error: string, failedAttempts: number): void;
  onRecovered(failedAttempts: number): void;
  onIndexReset(previous: number, received: number): void;
  backoffInitialMs: number;
  backoffMaxMs: number;
}

/** One blocking query, asked again and again: its own index and backoff (routing.ts rules). */
function queryLoop<T>(o: QueryLoopOptions<T>): { stop(): void; failedAttempts(): number } {
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
        o.onFailure(describe(error), failedAttempts);
        // The agent may have restarted with a lower index; a blocking query on the old one could hang until `wait`.
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
    failedAttempts: () => failedAttempts,
  };
}

interface Followed {
  /** Stops its query loop and its name-resolution retries. */
  stop(): void;
  view?: ServiceView;
  /** Rounds of name resolution; one a newer answer overtook is discarded. */
  round: number;
  retryTimer?: NodeJS.Timeout;
}

/**
 * Follows every service that carries route tags. Keeps the last good table while Consul fails (logging
 * once per outage), resets an index that goes backwards, and right after an outage or reset keeps the
 * services nginx served with upstreams for `emptyGraceMs` while Consul shows them empty or not at all
 * (replicas registering again). Host names are resolved on every answer (and again while one fails), so
 * only IP literals reach the renderer.
 */
export function followGateway(o: FollowerOptions): Follower {
  const backoffInitialMs = o.backoffInitialMs ?? 200;
  const backoffMaxMs = o.backoffMaxMs ?? 3000;
  const resolveRetryMs = o.resolveRetryMs ?? 5000;
  const followed = new Map<string, Followed>();
  const failing = new Set<object>();
  let stopped = false;
  let catalogAnswered = false;
  let catalogDropped: DroppedRoute[] = [];
  let lastIndex = 0;
  let lastError: string | null = null;
  let outageStartedAt = 0;
  /** From the first failed query until no query fails: one warning and one recovery line per outage. */
  let outage = false;
  let current: GatewayTable | undefined;
  let latest: GatewayTable | undefined;
  let graceUntil = 0;
  let graceTimer: NodeJS.Timeout | undefined;
  let settledWaiters: Array<() => void> = [];
  let failedMax = 0;

  const emit = (table: GatewayTable) => {
    if (current && tableKey(current) === tableKey(table)) return;
    current = table;
    o.onChange(table);
  };

  const endGrace = () => {
    graceUntil = 0;
    if (graceTimer) clearTimeout(graceTimer);
    graceTimer = undefined;
  };

  const startGrace = (why: string) => {
    if (o.emptyGraceMs <= 0 || Date.now() < graceUntil) return;
    endGrace();
    graceUntil = Date.now() + o.emptyGraceMs;
    o.logger.info('empty-set grace started', { why, graceMs: o.emptyGraceMs });
  };

  const handle = (table: GatewayTable) => {
    latest = table;
    if (current && Date.now() < graceUntil) {
      const { table: kept, held } = holdThroughGrace(current, table);
      if (held.length > 0) {
        if (!graceTimer) {
          o.logger.info('Consul shows services empty or gone right after an outage; keeping their last set during the grace', {
            held,
            graceLeftMs: graceUntil - Date.now(),
          });
          graceTimer = setTimeout(() => {
            graceTimer = undefined;
            graceUntil = 0;
            if (!stopped && latest) handle(latest);
          }, graceUntil - Date.now());
        }
        emit(kept);
        return;
      }
    }
    endGrace();
    emit(table);
  };

  /**
   * Whether a table may be handed on: the first waits for every followed service's first answer, so a
   * replacing balancer starts with them all; later ones wait only for the services nginx serves now, so
   * a newcomer whose health query has not answered (or keeps failing) holds up no other service's change.
   */
  const settled = () =>
    catalogAnswered &&
    [...followed].every(([name, f]) => f.view !== undefined || (current !== undefined && !current.services.some((s) => s.name === name)));

  /** The table Consul's answers imply; handed on once it is settled. */
  const recompute = () => {
    if (stopped || !catalogAnswered) return;
    const claims: ServiceClaim[] = [];
    for (const [name, f] of followed) {
      const claim = f.view && claimOf(name, f.view.entries, f.view.selection.upstreams);
      if (claim) claims.push(claim);
    }
    const { table, droppedRoutes } = routeTable(claims);
    const views = new Map<string, ServiceView>();
    for (const [name, f] of followed) if (f.view) views.set(name, f.view);
    o.onConsul?.({ index: lastIndex, services: views, droppedRoutes: [...catalogDropped, ...droppedRoutes] });
    if (!settled()) return;
    handle(table);
    for (const resolve of settledWaiters) resolve();
    settledWaiters = [];
  };

  const reachability = () => o.onReachability?.(failing.size === 0, lastError);

  /** The callbacks every query loop shares: outage logging, recovery (with the grace), index resets. */
  const loopEvents = (what: string) => {
    const key = {};
    return {
      onFailure(error: string, failedAttempts: number) {
        lastError = error;
        failedMax = Math.max(failedMax, failedAttempts);
        if (!outage) {
          outage = true;
          outageStartedAt = Date.now();
          o.logger.warn('Consul query failed; keeping the last good routing table and retrying with backoff', {
            query: what,
            error,
            kept: current?.services ?? [],
          });
        }
        failing.add(key);
        reachability();
      },
      onRecovered(failedAttempts: number) {
        failing.delete(key);
        // The first answer after an outage starts the grace; the outage ends once no query fails any more.
        if (outage) startGrace('consul outage');
        if (failing.size === 0) {
          if (outage) o.logger.info('Consul answers again', { query: what, failedAttempts, outageMs: Date.now() - outageStartedAt });
          outage = false;
          lastError = null;
          failedMax = 0;
        }
        reachability();
      },
      onIndexReset(previous: number, received: number) {
        o.logger.warn('Consul index went backwards; resetting it', { query: what, previous, received });
        startGrace('index reset');
      },
      forget() {
        if (!failing.delete(key)) return;
        // A service that left while its query failed: the outage is over if no other query fails.
        if (failing.size === 0) {
          outage = false;
          lastError = null;
          failedMax = 0;
        }
        reachability();
      },
    };
  };

  const selectService = async (name: string, f: Followed, entries: readonly HealthEntry[]) => {
    const mine = ++f.round;
    if (f.retryTimer) clearTimeout(f.retryTimer);
    f.retryTimer = undefined;
    const passing = entries.filter(isPassing);
    const names = hostNamesOf(passing);
    const resolved: ReadonlyMap<string, Resolution> =
      names.length > 0
        ? await o.resolveNames(names).catch((error: unknown) => new Map(names.map((n) => [n, { error: String(error) }])))
        : new Map();
    if (stopped || mine !== f.round || followed.get(name) !== f) return;
    f.view = { entries, selection: selectUpstreams(passing, resolved), resolved };
    recompute();
    if ([...resolved.values()].some((r) => 'error' in r)) {
      f.retryTimer = setTimeout(() => void selectService(name, f, entries), resolveRetryMs);
    }
  };

  const follow = (name: string) => {
    const events = loopEvents(`health of ${name}`);
    const f: Followed = { round: 0, stop: () => {} };
    const loop = queryLoop<HealthEntry[]>({
      fetch: (index, signal) => o.fetchHealth(name, index, signal),
      onAnswer: async (answer) => {
        lastIndex = answer.index;
        await selectService(name, f, answer.body);
      },
      ...events,
      backoffInitialMs,
      backoffMaxMs,
    });
    f.stop = () => {
      loop.stop();
      events.forget();
      if (f.retryTimer) clearTimeout(f.retryTimer);
    };
    followed.set(name, f);
  };

  const catalogEvents = loopEvents('catalog');
  const catalog = queryLoop<Record<string, string[] | null>>({
    fetch: (index, signal) => o.fetchCatalog(index, signal),
    onAnswer: (answer) => {
      lastIndex = answer.index;
      const routed = routedServices(answer.body);
      catalogDropped = routed.dropped;
      for (const name of routed.follow) {
        if (followed.has(name)) continue;
        o.logger.info('following a routed service', { service: name });
        follow(name);
      }
      for (const [name, f] of followed) {
        if (routed.follow.includes(name)) continue;
        o.logger.info('no longer following a service: it has no route tags or no registration left', { service: name });
        f.stop();
        followed.delete(name);
      }
      catalogAnswered = true;
      recompute();
    },
    ...catalogEvents,
    backoffInitialMs,
    backoffMaxMs,
  });

  return {
    stop() {
      stopped = true;
      endGrace();
      catalog.stop();
      for (const f of followed.values()) f.stop();
      followed.clear();
      for (const resolve of settledWaiters) resolve();
    },
    consulState: () => ({ reachable: failing.size === 0, lastError, failedAttempts: failedMax }),
    firstTable(timeoutMs) {
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve(current), timeoutMs);
        const done = () => {
          clearTimeout(timer);
          resolve(current);
        };
        if (current && settled()) done();
        else settledWaiters.push(done);
      });
    },
  };
}

/** The instances left out of each followed service, for the status. */
export function droppedByService(view: GatewayView): Map<string, DroppedEntry[]> {
  return new Map([...view.services].map(([name, s]) => [name, s.selection.dropped]));
}
