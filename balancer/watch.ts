// The "watch" step: the coordinator that follows Consul with a fixed number of connections, whatever the
// number of routed services: a blocking query on the catalog (which services ask for routes), one on the
// health state (whose checks changed), and bounded reads of only the services that changed
// (service-reads.ts). The rules are pure functions elsewhere: the blocking-query loop's next index and
// backoff in lib/ (query-loop.ts runs them), which entries become upstreams in consul-entries.ts, route
// selection, which services changed and the empty-set grace in routing.ts. Each followed service is a small
// view (service-view.ts), the outage and the grace are windows (consul-windows.ts); this file wires them and
// hands on the routing table.
import type { Logger } from '../lib/logger';
import type { RouteOwners } from '../lib/route-owners';
import type { FetchCatalog, FetchHealthState, ReadService } from './consul-client';
import { READ_CONCURRENCY } from './consul-client';
import type { DroppedEntry } from './consul-entries';
import { graceWindow, outageWindow } from './consul-windows';
import { queryLoop, type LoopEvents } from './query-loop';
import type { ResolveNames } from './resolve';
import { followedService, type FollowedService, type ServiceView } from './service-view';
import { serviceReads } from './service-reads';
import {
  claimOf,
  healthChanges,
  healthSnapshot,
  holdThroughGrace,
  routedServices,
  routeTable,
  tableKey,
  type DroppedRoute,
  type GatewayTable,
  type HealthSnapshot,
  type ServiceClaim,
} from './routing';

export type { ConsulAnswer } from './consul-client';
export type { ServiceView } from './service-view';

/** Everything the follower knows after an answer, for the status and the evidence page. */
export interface GatewayView {
  index: number;
  services: ReadonlyMap<string, ServiceView>;
  droppedRoutes: readonly DroppedRoute[];
}

export interface FollowerOptions {
  fetchCatalog: FetchCatalog;
  fetchHealthState: FetchHealthState;
  readService: ReadService;
  /** Reads of services at once (default READ_CONCURRENCY). */
  readConcurrency?: number;
  /** Turns the host names among the entries into addresses (the real one is nameResolver; tests pass a map). */
  resolveNames: ResolveNames;
  /** While some name does not resolve, it is looked up again this often, even if Consul has no news. */
  resolveRetryMs?: number;
  logger: Logger;
  /** How long an empty set is ignored right after a Consul outage or index reset. */
  emptyGraceMs: number;
  /** The operator's grants (ROUTE_OWNERS): with them, a service gets only routes within its own; without, tags decide. */
  routeOwners?: RouteOwners;
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

/** How long a catalog change waits for the health state to explain it before every followed service is read again. */
const UNEXPLAINED_CATALOG_MS = 250;

/**
 * While other reads are under way (every service at start, or all of them after an unattributed change),
 * the table is recomputed at most this often instead of after every answer: each recompute costs
 * O(services), so a thousand answers would cost O(services²).
 */
const RECOMPUTE_BATCH_MS = 100;

/** The table handed on last, and the rule of which tables may be: the grace holds empty sets, equal ones are skipped. */
function tableGate(o: FollowerOptions, grace: ReturnType<typeof graceWindow>) {
  let current: GatewayTable | undefined;
  let latest: GatewayTable | undefined;
  const emit = (table: GatewayTable) => {
    if (current && tableKey(current) === tableKey(table)) return;
    current = table;
    o.onChange(table);
  };
  const offer = (table: GatewayTable) => {
    latest = table;
    if (current && grace.open()) {
      const { table: kept, held } = holdThroughGrace(current, table);
      if (held.length > 0) {
        const left = grace.leftMs();
        if (grace.whenOver(() => latest && offer(latest)))
          o.logger.info('Consul shows services empty or gone right after an outage; keeping their last set during the grace', {
            held,
            graceLeftMs: left,
          });
        emit(kept);
        return;
      }
    }
    grace.end();
    emit(table);
  };
  return { offer, current: () => current };
}

/**
 * Follows every service that carries route tags. Keeps the last good table while Consul fails (logging
 * once per outage), resets an index that goes backwards, and right after an outage or reset keeps the
 * services nginx served with upstreams for `emptyGraceMs` while Consul shows them empty or not at all
 * (replicas registering again).
 */
export function followGateway(o: FollowerOptions): Follower {
  const backoff = { backoffInitialMs: o.backoffInitialMs ?? 200, backoffMaxMs: o.backoffMaxMs ?? 3000 };
  const followed = new Map<string, FollowedService>();
  const grace = graceWindow(o.logger, o.emptyGraceMs);
  const gate = tableGate(o, grace);
  const outage = outageWindow(
    o.logger,
    () => gate.current()?.services ?? [],
    (reachable, lastError) => o.onReachability?.(reachable, lastError),
  );
  let stopped = false;
  let catalog: { tags: Record<string, string[] | null>; dropped: DroppedRoute[] } | undefined;
  let health: HealthSnapshot | undefined;
  let lastIndex = 0;
  let unexplainedTimer: NodeJS.Timeout | undefined;
  let recomputeTimer: NodeJS.Timeout | undefined;
  let settledWaiters: Array<() => void> = [];

  /**
   * Whether a table may be handed on: the first waits for every followed service's first answer, so a
   * replacing balancer starts with them all; later ones wait only for the services nginx serves now, so
   * a newcomer whose read has not answered (or keeps failing) holds up no other service's change.
   */
  const settled = () => {
    if (catalog === undefined) return false;
    const current = gate.current();
    const served = new Set(current?.services.map((s) => s.name));
    return [...followed.values()].every((f) => f.view() !== undefined || (current !== undefined && !served.has(f.name)));
  };

  /** The table Consul's answers imply; handed on once it is settled. */
  const recompute = () => {
    if (stopped || catalog === undefined) return;
    const claims: ServiceClaim[] = [];
    const views = new Map<string, ServiceView>();
    for (const [name, f] of followed) {
      const view = f.view();
      if (!view) continue;
      views.set(name, view);
      const claim = claimOf(name, view.entries, view.selection.upstreams);
      if (claim) claims.push(claim);
    }
    const { table, droppedRoutes } = routeTable(claims, o.routeOwners);
    o.onConsul?.({ index: lastIndex, services: views, droppedRoutes: [...catalog.dropped, ...droppedRoutes] });
    if (!settled()) return;
    gate.offer(table);
    for (const resolve of settledWaiters) resolve();
    settledWaiters = [];
  };

  /** The events of one query (the catalog, the health state, or the reads): the outage, the grace, index resets. */
  const events = (key: string, what: string): LoopEvents => ({
    onFailure: (error, failedAttempts) => outage.failed(key, what, error, failedAttempts),
    onRecovered(failedAttempts) {
      // The first answer after an outage starts the grace; the outage ends once no query fails any more.
      if (outage.recovered(key, what, failedAttempts)) grace.start('consul outage');
    },
    onIndexReset(previous, received) {
      o.logger.warn('Consul index went backwards; resetting it', { query: what, previous, received });
      grace.start('index reset');
    },
  });

  const reads = serviceReads({
    read: o.readService,
    concurrency: o.readConcurrency ?? READ_CONCURRENCY,
    onAnswer: async (name, entries, index) => {
      const f = followed.get(name);
      if (!f) return;
      lastIndex = Math.max(lastIndex, index);
      await f.update(entries);
    },
    ...events('reads', 'health of changed services'),
    ...backoff,
  });

  /** A service's view changed: recompute now, or once per batch while other reads are under way. */
  const viewChanged = () => {
    if (reads.busy()) {
      recomputeTimer ??= setTimeout(() => {
        recomputeTimer = undefined;
        recompute();
      }, RECOMPUTE_BATCH_MS);
      return;
    }
    if (recomputeTimer) clearTimeout(recomputeTimer);
    recomputeTimer = undefined;
    recompute();
  };

  const follow = (name: string) => {
    const f = followedService(name, o.resolveNames, o.resolveRetryMs ?? 5000, () => {
      if (!stopped && followed.get(name) === f) viewChanged();
    });
    followed.set(name, f);
  };

  let lastCatalogIndex = 0;
  /**
   * The catalog moved with no tag changed: a registration the health state shows (its checks) explains
   * it once the health state reaches that index; one it never shows (an instance with no check of its
   * own) is found only by reading every followed service again.
   */
  let unexplainedIndex = 0;
  const explainLater = (index: number) => {
    unexplainedIndex = Math.max(unexplainedIndex, index);
    if (unexplainedTimer) return;
    unexplainedTimer = setTimeout(() => {
      unexplainedTimer = undefined;
      if (!stopped && (health === undefined || health.index < unexplainedIndex)) reads.mark(followed.keys());
    }, UNEXPLAINED_CATALOG_MS);
  };

  const catalogLoop = queryLoop<Record<string, string[] | null>>({
    fetch: (index, signal) => o.fetchCatalog(index, signal),
    onAnswer: (answer) => {
      const previousIndex = lastCatalogIndex;
      lastCatalogIndex = answer.index;
      lastIndex = answer.index;
      const routed = routedServices(answer.body);
      const before = catalog?.tags ?? {};
      const first = catalog === undefined;
      catalog = { tags: answer.body, dropped: routed.dropped };
      const toRead: string[] = [];
      for (const name of routed.follow) {
        if (!followed.has(name)) {
          o.logger.info('following a routed service', { service: name });
          follow(name);
          toRead.push(name);
        } else if (JSON.stringify(before[name] ?? []) !== JSON.stringify(answer.body[name] ?? [])) toRead.push(name);
      }
      const stillFollowed = new Set(routed.follow);
      for (const [name, f] of followed) {
        if (stillFollowed.has(name)) continue;
        o.logger.info('no longer following a service: it has no route tags or no registration left', { service: name });
        f.stop();
        followed.delete(name);
        reads.drop(name);
        // A read that failed for a service that left: with no other read waiting, it keeps no outage open.
        if (!reads.busy()) outage.forget('reads');
      }
      reads.mark(toRead);
      if (!first && toRead.length === 0 && answer.index > previousIndex) explainLater(answer.index);
      recompute();
    },
    ...events('catalog', 'catalog'),
    ...backoff,
  });

  const healthLoop = queryLoop({
    fetch: (index, signal) => o.fetchHealthState(index, signal),
    onAnswer: (answer) => {
      lastIndex = answer.index;
      const next = healthSnapshot(answer.index, answer.body);
      const { changed, unattributed } = healthChanges(health, next);
      health = next;
      reads.mark(unattributed ? followed.keys() : changed.filter((name) => followed.has(name)));
    },
    ...events('health', 'health state'),
    ...backoff,
  });

  return {
    stop() {
      stopped = true;
      grace.end();
      if (unexplainedTimer) clearTimeout(unexplainedTimer);
      if (recomputeTimer) clearTimeout(recomputeTimer);
      catalogLoop.stop();
      healthLoop.stop();
      reads.stop();
      for (const f of followed.values()) f.stop();
      followed.clear();
      for (const resolve of settledWaiters) resolve();
    },
    consulState: () => outage.state(),
    firstTable(timeoutMs) {
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve(gate.current()), timeoutMs);
        const done = () => {
          clearTimeout(timer);
          resolve(gate.current());
        };
        if (gate.current() && settled()) done();
        else settledWaiters.push(done);
      });
    },
  };
}

/** The instances left out of each followed service, for the status. */
export function droppedByService(view: GatewayView): Map<string, DroppedEntry[]> {
  return new Map([...view.services].map(([name, s]) => [name, s.selection.dropped]));
}
