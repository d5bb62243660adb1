import http from 'node:http';
import { routeText } from '../lib/routes';
import type { DroppedEntry } from './consul-entries';
import { EMPTY_TABLE, tableKey, type DroppedRoute, type GatewayTable } from './routing';

/** One service in GET /_balancer/status. */
export interface ServiceStatus {
  /** The routes nginx serves for it (`=/`, `/api/users`); empty while it holds none. */
  routes: string[];
  /** `address:port` of every upstream nginx has loaded for it. */
  upstreams: string[];
  /** When each upstream entered the set nginx serves (ISO 8601), kept while it stays in. */
  upstreamsSince: Record<string, string>;
  /** Instances Consul reports that are left out (no check of their own, no address, bad port, zone id, host name that does not resolve...), and why. */
  dropped: DroppedEntry[];
}

/** What GET /_balancer/status answers: the routing table nginx serves now and how it got there. */
export interface BalancerStatus {
  /** Every service nginx serves or Consul shows with route tags, by name. */
  services: Record<string, ServiceStatus>;
  /** Route tags left out of nginx's config (hostile, broken, reserved, or lost to an older service), and why. */
  droppedRoutes: DroppedRoute[];
  /** X-Consul-Index of the last answer from Consul. */
  consulIndex: number | null;
  /** When the table nginx serves last changed (ISO 8601). */
  changedAt: string | null;
  /** Successful graceful reloads since start. */
  reloads: number;
  lastReloadAt: string | null;
  /** How long the last reload took, from rendering to nginx serving it (ms). */
  lastReloadMs: number | null;
  /** Why the last refused config was refused (`nginx -t` output); kept after later successes, see lastReloadErrorAt. */
  lastReloadError: string | null;
  lastReloadErrorAt: string | null;
  /** Failed attempts in a row to apply the table Consul asks for (retried with backoff); 0 once nginx serves it. */
  failedApplies: number;
  consul: { address: string; reachable: boolean; lastError: string | null };
}

/** What the follower learned from Consul, for the status (watch.ts). */
export interface ConsulView {
  index: number;
  /** Per followed service: the instances left out, and why. */
  dropped: ReadonlyMap<string, readonly DroppedEntry[]>;
  droppedRoutes: readonly DroppedRoute[];
}

/**
 * The status for display: the applier records what nginx serves and how applying went (it owns both; this
 * is a record of them), the follower what Consul said; everyone else reads snapshots.
 */
export interface StatusStore {
  /** A copy of the current status. */
  read(): BalancerStatus;
  /** nginx serves `table` now: as the first config at start (`reload` false) or after a reload. */
  recordServed(table: GatewayTable, reload: boolean, now?: string, reloadMs?: number): void;
  /** An apply failed; `failedApplies` is the applier's count of failures in a row. */
  recordApplyFailure(error: string, failedApplies: number, now?: string): void;
  recordApplySuccess(): void;
  recordConsulAnswer(view: ConsulView): void;
  recordConsulReachability(reachable: boolean, lastError: string | null): void;
}

export function createStatusStore(consulAddress: string): StatusStore {
  let table: GatewayTable = EMPTY_TABLE;
  let since = new Map<string, Record<string, string>>();
  let consulDropped: ReadonlyMap<string, readonly DroppedEntry[]> = new Map();
  let droppedRoutes: readonly DroppedRoute[] = [];
  let consulIndex: number | null = null;
  let changedAt: string | null = null;
  let reloads = 0;
  let lastReloadAt: string | null = null;
  let lastReloadMs: number | null = null;
  let lastReloadError: string | null = null;
  let lastReloadErrorAt: string | null = null;
  let failedApplies = 0;
  // No query has failed yet; `read` also asks for an answer before it calls Consul reachable.
  let consul = { address: consulAddress, reachable: true, lastError: null as string | null };

  return {
    read() {
      const services: Record<string, ServiceStatus> = {};
      const byName = new Map(table.services.map((s) => [s.name, s]));
      const names = [...new Set([...byName.keys(), ...consulDropped.keys()])].sort();
      for (const name of names) {
        const served = byName.get(name);
        services[name] = {
          routes: served ? served.routes.map(routeText) : [],
          upstreams: served ? [...served.upstreams] : [],
          upstreamsSince: { ...(since.get(name) ?? {}) },
          dropped: [...(consulDropped.get(name) ?? [])],
        };
      }
      return {
        services,
        droppedRoutes: [...droppedRoutes],
        consulIndex,
        changedAt,
        reloads,
        lastReloadAt,
        lastReloadMs,
        lastReloadError,
        lastReloadErrorAt,
        failedApplies,
        // Reachable means Consul has answered since start and its last query did not fail.
        consul: { ...consul, reachable: consul.reachable && consulIndex !== null },
      };
    },
    recordServed(next, reload, now = new Date().toISOString(), reloadMs) {
      const changed = tableKey(next) !== tableKey(table);
      // An upstream that stays in its service's set keeps its `since`.
      since = new Map(next.services.map((s) => [s.name, Object.fromEntries(s.upstreams.map((u) => [u, since.get(s.name)?.[u] ?? now]))]));
      table = next;
      if (reload) {
        reloads++;
        lastReloadAt = now;
        lastReloadMs = reloadMs ?? null;
      }
      if (changed && (reload || next.services.length > 0)) changedAt = now;
    },
    recordApplyFailure(error, failed, now = new Date().toISOString()) {
      lastReloadError = error;
      lastReloadErrorAt = now;
      failedApplies = failed;
    },
    recordApplySuccess() {
      failedApplies = 0;
    },
    recordConsulAnswer(view) {
      consulIndex = view.index;
      consulDropped = new Map(view.dropped);
      droppedRoutes = [...view.droppedRoutes];
    },
    recordConsulReachability(reachable, lastError) {
      consul = { ...consul, reachable, lastError };
    },
  };
}

export interface StatusServer {
  port: number;
  close(): Promise<void>;
}

/** Answers a request it owns and returns true, or returns false and leaves it to the status answer. */
export type ExtraRoutes = (req: http.IncomingMessage, res: http.ServerResponse) => boolean;

/**
 * A loopback-only HTTP server nginx proxies /_balancer/status to, so the answer is always current;
 * `routes` (the evidence page) answers its own paths first.
 */
export function startStatusServer(read: () => BalancerStatus, routes?: ExtraRoutes): Promise<StatusServer> {
  const server = http.createServer((req, res) => {
    if (routes?.(req, res)) return;
    const ok = req.method === 'GET' || req.method === 'HEAD';
    const body = ok ? JSON.stringify(read()) : JSON.stringify({ error: 'method not allowed', allowed: ['GET', 'HEAD'] });
    res.writeHead(ok ? 200 : 405, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as import('node:net').AddressInfo;
      resolve({
        port,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}
