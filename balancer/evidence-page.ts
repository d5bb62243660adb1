// The evidence page: a read-only page that shows the instances the watcher follows, live, and lets a
// browser send requests through the balancer. Served by the watcher's status server; nginx proxies its
// paths (render.ts evidenceLocations). See balancer/README.md, "The evidence page".
import http from 'node:http';
import https from 'node:https';
import { createActivityRelay } from './evidence-activity';
import {
  healthOfChecks,
  instanceRows,
  outboxOfHealth,
  type ConsulInstance,
  type EvidenceSnapshot,
  type OutboxSignal,
} from './evidence-model';
import { isPassing, selectUpstreams, type HealthEntry, type Resolution, type UpstreamSelection } from './consul-entries';
import type { BalancerStatus, ExtraRoutes } from './status';
import type { GatewayView } from './watch';

/** The page's files, built by scripts/build.mjs (the script is balancer/page/page.ts bundled for browsers). */
export interface EvidenceAssets {
  html: string;
  css: string;
  icon: string;
  script: string;
}

export const EVIDENCE_PATHS = {
  page: '/_balancer/evidence',
  script: '/_balancer/evidence/page.js',
  style: '/_balancer/evidence/page.css',
  icon: '/_balancer/evidence/icon.svg',
  events: '/_balancer/events',
  /** The activity service's event stream, relayed (evidence-activity.ts). */
  activity: '/_balancer/activity',
} as const;

// Only the page's own origin, no inline script or style, never framed; every answer is current.
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

export interface EvidencePageOptions {
  assets: EvidenceAssets;
  /** The watcher's status, read on every snapshot. */
  readStatus(): BalancerStatus;
  /** The activity stream on the balancer's public listener (`http://<listener>/api/activity/stream`), relayed to the page. */
  activityStreamUrl: string;
  /** Open event streams at most (each holds an nginx connection); more get a 503. */
  maxStreams?: number;
  /** Open activity relays at most (default maxStreams); more get a 503. */
  maxActivityStreams?: number;
  /** A comment line this often keeps a quiet stream open through nginx's read timeout (60 s). */
  heartbeatMs?: number;
  /** While a stream is open, the snapshot is compared this often too (Consul reachability has no event). */
  pollMs?: number;
  /**
   * An instance's /health answer (parsed JSON), asked while a page is open for the outbox a hello replica
   * reports there; default a GET of `/health` on the upstream, as nginx reaches it (healthOverUpstream).
   */
  readHealth?: (upstream: string, service: string) => Promise<unknown>;
  /** The CA of the replicas' HTTPS (UPSTREAM_CA_FILE's content, on VMs); undefined: they serve HTTP. */
  upstreamCa?: string;
  /** How often the open page's instances are asked (default 2 s). */
  healthEveryMs?: number;
}

/** At most this many instances are asked for their /health per round: the page is a view, not a monitor. */
export const MAX_HEALTH_PROBES = 64;

/**
 * GET /health of one instance the way nginx proxies to it (render.ts upstream-tls): HTTPS verified with the
 * upstream CA for the name `<service>.service.consul` when there is one, else HTTP.
 */
export function healthOverUpstream(upstreamCa: string | undefined) {
  return (upstream: string, service: string) =>
    new Promise<unknown>((resolve, reject) => {
      const tls = upstreamCa === undefined ? {} : { ca: upstreamCa, servername: `${service}.service.consul` };
      const req = (upstreamCa === undefined ? http : https).get(`${upstreamCa === undefined ? 'http' : 'https'}://${upstream}/health`, {
        timeout: 1000,
        ...tls,
      });
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          try {
            resolve(JSON.parse(body));
          } catch (error) {
            reject(new Error(`${upstream} answered /health with no JSON`, { cause: error }));
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer from ${upstream} within 1 s`)));
      req.on('error', reject);
    });
}

export interface EvidencePage {
  /** Mounted in the status server: answers the page's paths, leaves the rest. */
  routes: ExtraRoutes;
  /** Every answer from Consul (watch.ts onConsul): which instance each upstream is. */
  consulAnswered(view: GatewayView): void;
  /** nginx serves a new table (apply.ts onApplied). */
  applied(): void;
  /** Ends every stream, so nginx can stop without waiting for them. */
  close(): void;
}

/** Each passing, accepted entry with the upstreams it stands for, by the balancer's one rule (selectUpstreams). */
export function consulInstances(
  selection: UpstreamSelection,
  entries: readonly HealthEntry[],
  resolved: ReadonlyMap<string, Resolution>,
): ConsulInstance[] {
  const left = new Set(selection.dropped.map((d) => d.id));
  return entries.filter(isPassing).flatMap((entry) => {
    const id = entry.Service?.ID || entry.Node?.Node || '(unnamed)';
    if (left.has(id)) return [];
    const { upstreams } = selectUpstreams([entry], resolved);
    const statuses = (entry.Checks ?? []).map((c) => c.Status ?? 'unknown');
    return upstreams.length > 0 ? [{ id, upstreams, ...healthOfChecks(statuses) }] : [];
  });
}

/** Open event streams at most by default, and as many activity relays. */
export const MAX_EVIDENCE_STREAMS = 32;

export function createEvidencePage(o: EvidencePageOptions): EvidencePage {
  const maxStreams = o.maxStreams ?? MAX_EVIDENCE_STREAMS;
  const heartbeatMs = o.heartbeatMs ?? 15_000;
  const pollMs = o.pollMs ?? 1000;
  const streams = new Set<http.ServerResponse>();
  const activity = createActivityRelay({
    upstreamUrl: o.activityStreamUrl,
    headers: SECURITY_HEADERS,
    maxStreams: o.maxActivityStreams ?? maxStreams,
  });
  let consul = new Map<string, ConsulInstance[]>();
  const knownIds = new Map<string, string>();
  const readHealth = o.readHealth ?? healthOverUpstream(o.upstreamCa);
  /** The outbox each instance reported at the last round (hello replicas); asked only while a page is open. */
  let outboxes = new Map<string, OutboxSignal>();
  let probing = false;
  let lastSent = '';
  let timers: NodeJS.Timeout[] = [];
  /** Set by close(): a browser reconnecting while nginx stops must not hold it up again. */
  let closed = false;

  const snapshot = (): EvidenceSnapshot => {
    const status = o.readStatus();
    const names = [...new Set([...Object.keys(status.services), ...consul.keys()])].sort();
    const served = (name: string) => status.services[name] ?? { routes: [], upstreams: [], upstreamsSince: {}, dropped: [] };
    return {
      services: names.map((name) => ({ name, routes: served(name).routes })),
      consulIndex: status.consulIndex,
      consulReachable: status.consul.reachable,
      changedAt: status.changedAt,
      reloads: status.reloads,
      instances: names.flatMap((name) => instanceRows(name, served(name), consul.get(name) ?? [], knownIds, outboxes)),
      dropped: names.flatMap((name) => served(name).dropped.map((d) => ({ service: name, ...d }))),
      droppedRoutes: status.droppedRoutes,
    };
  };

  const message = (data: string) => `event: snapshot\ndata: ${data}\n\n`;

  /** Sends the snapshot to every stream if it differs from the last one sent. */
  const publish = () => {
    if (streams.size === 0) return;
    const data = JSON.stringify(snapshot());
    if (data === lastSent) return;
    lastSent = data;
    for (const res of streams) res.write(message(data));
  };

  /** One round of /health reads of the instances Consul lists (the outbox signal); a round never overlaps the next. */
  const probeOutboxes = async () => {
    if (probing) return;
    probing = true;
    try {
      const probes = new Map(
        [...consul].flatMap(([service, instances]) => instances.flatMap((i) => i.upstreams.map((u) => [u, service] as const))),
      );
      const upstreams = [...probes].slice(0, MAX_HEALTH_PROBES);
      const answers = await Promise.all(upstreams.map(([u, service]) => readHealth(u, service).then(outboxOfHealth, () => null)));
      outboxes = new Map(upstreams.flatMap(([u], i) => (answers[i] ? [[u, answers[i]] as const] : [])));
      publish();
    } finally {
      probing = false;
    }
  };

  const startTimers = () => {
    void probeOutboxes();
    timers = [
      setInterval(() => {
        for (const res of streams) res.write(': keep-alive\n\n');
      }, heartbeatMs),
      setInterval(publish, pollMs),
      setInterval(() => void probeOutboxes(), o.healthEveryMs ?? 2000),
    ];
  };
  const stopTimers = () => {
    for (const timer of timers) clearInterval(timer);
    timers = [];
  };

  const openStream = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (closed || streams.size >= maxStreams) {
      const error = closed ? 'the balancer is stopping' : 'too many event streams';
      send(res, req, 503, 'application/json; charset=utf-8', JSON.stringify({ error, max: maxStreams }), { 'retry-after': '5' });
      return;
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', 'x-accel-buffering': 'no' });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const data = JSON.stringify(snapshot());
    // `retry`: after the watcher ends a stream (see applied) the browser is back within half a second.
    res.write(`retry: 500\n\n${message(data)}`);
    if (streams.size === 0) {
      lastSent = data;
      startTimers();
    }
    streams.add(res);
    res.on('close', () => {
      streams.delete(res);
      if (streams.size === 0) stopTimers();
    });
  };

  const endStreams = () => {
    for (const res of streams) res.end();
    streams.clear();
    stopTimers();
  };

  const assets: Record<string, { type: string; body: string }> = {
    [EVIDENCE_PATHS.page]: { type: 'text/html; charset=utf-8', body: o.assets.html },
    [EVIDENCE_PATHS.script]: { type: 'text/javascript; charset=utf-8', body: o.assets.script },
    [EVIDENCE_PATHS.style]: { type: 'text/css; charset=utf-8', body: o.assets.css },
    [EVIDENCE_PATHS.icon]: { type: 'image/svg+xml; charset=utf-8', body: o.assets.icon },
  };

  const routes: ExtraRoutes = (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const ours =
      path === EVIDENCE_PATHS.events ||
      path === EVIDENCE_PATHS.activity ||
      path === EVIDENCE_PATHS.page ||
      path.startsWith(`${EVIDENCE_PATHS.page}/`);
    if (!ours) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const body = JSON.stringify({ error: 'method not allowed: the evidence page only reads', allowed: ['GET', 'HEAD'] });
      send(res, req, 405, 'application/json; charset=utf-8', body, { allow: 'GET, HEAD' });
    } else if (path === EVIDENCE_PATHS.events) {
      openStream(req, res);
    } else if (path === EVIDENCE_PATHS.activity) {
      activity.open(req, res);
    } else if (path in assets) {
      send(res, req, 200, assets[path].type, assets[path].body);
    } else {
      send(res, req, 404, 'application/json; charset=utf-8', JSON.stringify({ error: 'not found', path }));
    }
    return true;
  };

  return {
    routes,
    consulAnswered(view) {
      consul = new Map([...view.services].map(([name, s]) => [name, consulInstances(s.selection, s.entries, s.resolved)]));
      const listed = [...consul.values()].flat();
      for (const instance of listed) for (const u of instance.upstreams) knownIds.set(u, instance.id);
      // Forget names of addresses neither Consul nor nginx has any more, so the map stays bounded.
      const served = new Set(Object.values(o.readStatus().services).flatMap((s) => s.upstreams));
      const inConsul = new Set(listed.flatMap((i) => i.upstreams));
      for (const u of knownIds.keys()) if (!served.has(u) && !inConsul.has(u)) knownIds.delete(u);
      publish();
    },
    applied() {
      publish();
      // nginx's old workers would hold these streams until worker_shutdown_timeout; ended, the
      // browsers reconnect (retry: 500) to the new workers and get a fresh snapshot. The same for the
      // relayed activity streams, which resume from their Last-Event-ID.
      endStreams();
      activity.endAll();
    },
    close() {
      closed = true;
      endStreams();
      activity.close();
    },
  };
}

function send(
  res: http.ServerResponse,
  req: http.IncomingMessage,
  code: number,
  type: string,
  body: string,
  extra: Record<string, string> = {},
): void {
  res.writeHead(code, { ...SECURITY_HEADERS, ...extra, 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}
