import http from 'node:http';
import type { DroppedEntry } from './render';

/** What GET /_balancer/status answers: the set nginx serves now and how it got there. */
export interface BalancerStatus {
  service: string;
  /** `address:port` of every upstream in the config nginx has loaded. */
  upstreams: string[];
  /** Entries Consul reported that are left out (no address, bad port, zone id, host name that does not resolve...), and why. */
  dropped: DroppedEntry[];
  /** X-Consul-Index of the last answer from Consul. */
  consulIndex: number | null;
  /** When each upstream entered the set nginx serves (ISO 8601), kept while it stays in. */
  upstreamsSince: Record<string, string>;
  /** When the upstream set nginx serves last changed (ISO 8601). */
  changedAt: string | null;
  /** Successful graceful reloads since start. */
  reloads: number;
  lastReloadAt: string | null;
  /** Why the last refused config was refused (`nginx -t` output); kept after later successes, see lastReloadErrorAt. */
  lastReloadError: string | null;
  lastReloadErrorAt: string | null;
  /** Failed attempts in a row to apply the set Consul asks for (retried with backoff); 0 once nginx serves it. */
  failedApplies: number;
  consul: { address: string; reachable: boolean; lastError: string | null };
}

export function initialStatus(service: string, consulAddress: string): BalancerStatus {
  return {
    service,
    upstreams: [],
    upstreamsSince: {},
    dropped: [],
    consulIndex: null,
    changedAt: null,
    reloads: 0,
    lastReloadAt: null,
    lastReloadError: null,
    lastReloadErrorAt: null,
    failedApplies: 0,
    consul: { address: consulAddress, reachable: false, lastError: null },
  };
}

export interface StatusServer {
  port: number;
  close(): Promise<void>;
}

/** Answers a request it owns and returns true, or returns false and leaves it to the status answer. */
export type ExtraRoutes = (req: http.IncomingMessage, res: http.ServerResponse) => boolean;

/** Marks `upstreams` as the set nginx serves now; one already in keeps its `since`. */
export function recordServed(status: BalancerStatus, upstreams: readonly string[], now = new Date().toISOString()): void {
  status.upstreams = [...upstreams];
  status.upstreamsSince = Object.fromEntries(upstreams.map((u) => [u, status.upstreamsSince[u] ?? now]));
}

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
