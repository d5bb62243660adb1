import { hostPort } from '../lib/endpoints';
import { probeAddress } from '../lib/listen-address';
import { RESERVED_PATHS, type Route } from '../lib/routes';
import { adminSocketPath } from './nginx';
import { fillPart, NGINX_TEMPLATE, type PartValues } from './nginx-template';
import type { GatewayService, GatewayTable } from './routing';

export interface PublicTlsSettings {
  certFile: string;
  keyFile: string;
  /** A plain-HTTP listener on this port answers 308 to HTTPS; undefined: no plain-HTTP listener at all. */
  redirectPort?: number;
  /** The HTTPS port clients reach (a published port may differ from listenPort): the redirect's target. */
  publicHttpsPort: number;
}

export interface NginxSettings {
  listenAddress: string;
  listenPort: number;
  /** HTTPS on the public listener, and the optional plain-HTTP listener that redirects to it; undefined: plain HTTP. */
  tls?: PublicTlsSettings;
  /**
   * HTTPS to every replica, its certificate verified with this CA file for the name `<service>.service.consul`
   * (one name per service: nginx checks an upstream group's certificates against one name, not each peer's
   * address); undefined: plain HTTP to the replicas.
   */
  upstreamCaFile?: string;
  /** HTTPS on the admin listener (on a VM's private address); undefined: plain HTTP. */
  adminTls?: { certFile: string; keyFile: string };
  /** The admin listener (status, and the proxy that names the upstream); the public one shows neither. */
  adminAddress: string;
  adminPort: number;
  /** `reuseport` on both TCP listeners: a second balancer of the same user can take over the ports (balancer/README.md). */
  reusePort: boolean;
  /** Requests one client address may have in flight on the public port; more get a JSON 429. */
  connLimitPerClient: number;
  /** Requests per second one client address may send to the public port (nginx limit_req); 0 = no limit. */
  rateLimitPerClient: number;
  /** Requests above the rate served at once before the limit answers 429 (limit_req burst, nodelay). */
  rateBurstPerClient: number;
  /** Public routes that serve event streams: their open requests are counted per client address apart. */
  streamPaths: readonly Route[];
  /** Streams one client address may hold open on streamPaths; more get the JSON 429. */
  streamLimitPerClient: number;
  /** nginx prefix: pid and temp files live here. */
  workDir: string;
  /** Loopback port of the watcher's own status server, proxied at /_balancer/status on the admin listener. */
  statusPort: number;
  /**
   * ADMIN_TOKEN_FILE is set: every request to the admin port needs the token (a Bearer header or the session
   * cookie of /_balancer/login), checked by the watcher before nginx passes it on (adminFrontServer).
   */
  adminLogin?: boolean;
  /**
   * Where nginx writes its JSON access log: `/dev/stdout` (shared with the watcher; nginx writes each
   * line itself), or, when stdout is a socket nginx cannot open, the loopback UDP port of the
   * watcher's relay.
   */
  accessLog: { stdout: true } | { relayPort: number };
  /** One worker per CPU this process may run on (nginx 1.22's `auto` counts every CPU of the host). */
  workerProcesses: number;
  /** Set only when nginx starts as root: its workers then need an unprivileged user. */
  workerUser?: { user: string; group: string };
}

/** One part of nginx.conf.template, filled in. */
const part = (name: string, values?: PartValues) => fillPart(NGINX_TEMPLATE, name, values);

/** The JSON access-log line's `log_format` directive (for the benchmark's static nginx peer too). */
export const ACCESS_LOG_FORMAT: readonly string[] = part('log-format');

/** How a request is proxied to the replicas (for the benchmark's static nginx peer too). */
export const PROXY_DIRECTIVES: readonly string[] = part('proxy');

/**
 * Event streams one client address may hold open on each of the evidence page's stream paths: a quarter of
 * the watcher's own cap (32 each), so one address cannot lock the others out; a page holds one of each.
 */
export const ADMIN_STREAMS_PER_CLIENT = 8;

type Listener = 'public' | 'admin';

/** The upstream block's name for a service (service names are lowercase DNS labels, lib/service-name.ts). */
const upstreamName = (service: string) => `svc_${service}`;

/** On the public listener, a location's 429 is the gateway's JSON one. */
const tooManyPage = (listener: Listener) => (listener === 'public' ? part('too-many-page') : []);

/** A TCP listener's `listen` parameters. */
const listenOn = (address: string, port: number, ssl: boolean, reusePort: boolean) =>
  `${hostPort(address, port)}${ssl ? ' ssl' : ''}${reusePort ? ' reuseport' : ''}`;

const tlsServer = (files: { certFile: string; keyFile: string }) => part('tls-server', { cert: files.certFile, key: files.keyFile });

/**
 * The inside of every location of one service: proxied to its upstream block (on the admin listener also
 * naming the upstream that answered), or, with no passing instance, the service's JSON 503.
 */
function serviceBody(service: GatewayService, listener: Listener, upstreamCaFile: string | undefined): string[] {
  if (service.upstreams.length === 0) return part('unavailable', { service: service.name, too_many_page: tooManyPage(listener) });
  return part('proxied', {
    scheme: upstreamCaFile ? 'https' : 'http',
    upstream: upstreamName(service.name),
    proxy: PROXY_DIRECTIVES,
    upstream_tls: upstreamCaFile ? part('upstream-tls', { ca: upstreamCaFile, service: service.name }) : [],
    upstream_addr: listener === 'admin' ? part('upstream-addr') : [],
    too_many_page: tooManyPage(listener),
  });
}

/**
 * nginx location matches for one route: an exact route is `= path`; a prefix route is the path itself and
 * everything under it as whole segments (`= /api/users` and `^~ /api/users/`, never `/api/usersX`), and
 * nginx picks the longest matching prefix. When another route claims the same path exactly, that exact
 * route gets the path and this one only what is under it. The prefix `/` is the catch-all.
 */
export function locationMatches(route: Route, exactPaths: ReadonlySet<string>): string[] {
  if (route.exact) return [`= ${route.path}`];
  if (route.path === '/') return ['/'];
  return [...(exactPaths.has(route.path) ? [] : [`= ${route.path}`]), `^~ ${route.path}/`];
}

/** Every route's locations, the services' error answers, and the gateway's JSON 404 for any other path. */
function routeLocations(table: GatewayTable, listener: Listener, upstreamCaFile: string | undefined): string[] {
  const exactPaths = new Set(table.services.flatMap((s) => s.routes.filter((r) => r.exact).map((r) => r.path)));
  const lines: string[] = [];
  let catchAll = false;
  for (const service of table.services) {
    for (const route of service.routes) {
      for (const match of locationMatches(route, exactPaths)) {
        catchAll ||= match === '/';
        lines.push(...part('location', { match, body: serviceBody(service, listener, upstreamCaFile) }));
      }
    }
    if (service.upstreams.length > 0)
      lines.push(...part('service-errors', { upstream: upstreamName(service.name), service: service.name }));
  }
  if (!catchAll) lines.push(...part('location', { match: '/', body: notFoundBody(listener) }));
  return lines;
}

const notFoundBody = (listener: Listener) => part('not-found', { too_many_page: tooManyPage(listener) });

/** The gateway's own paths (lib/routes.ts RESERVED_PATHS): no service is ever routed there; a JSON 404 unless a listener serves one. */
function reservedLocations(listener: Listener): string[] {
  return RESERVED_PATHS.flatMap((path) => [`= ${path}`, `^~ ${path}/`]).flatMap((match) =>
    part('location', { match, body: notFoundBody(listener) }),
  );
}

/**
 * The `map` lines that key the public listener's stream limit: the client's address on a stream path (each
 * route with everything under it; `$uri` is the normalized path nginx matches locations with). Paths are
 * checked routes (lib/routes.ts), so `.` is the one character with a meaning in a regular expression.
 */
function streamPathLines(streamPaths: readonly Route[]): string[] {
  return streamPaths.flatMap((route) => [
    `    ${route.path} $binary_remote_addr;`,
    ...(route.exact ? [] : [`    "~^${route.path === '/' ? '/' : `${route.path.replace(/\./g, '\\.')}/`}" $binary_remote_addr;`]),
  ]);
}

/**
 * The upstreams in the order nginx's round robin walks them, hosts taking turns (a1, b1, a2, b2, ...; each
 * host's own in sorted order): when a request's first upstream fails, the next one in that order is on
 * another host, so a dead host (a VM with three replicas) costs a retry one failed connect, not several in a
 * row. proxy_next_upstream_tries 0 (the template's proxy part) then bounds what is left: concurrent requests
 * share the round robin, so the next try is not always the next in this order.
 */
export function interleaveByHost(upstreams: readonly string[]): string[] {
  const byHost = new Map<string, string[]>();
  for (const upstream of [...upstreams].sort()) {
    const host = upstream.slice(0, upstream.lastIndexOf(':'));
    byHost.set(host, [...(byHost.get(host) ?? []), upstream]);
  }
  const groups = [...byHost.values()];
  const longest = Math.max(0, ...groups.map((g) => g.length));
  return Array.from({ length: longest }, (_, i) => groups.flatMap((g) => (i < g.length ? [g[i]] : []))).flat();
}

/** One upstream block per service with passing instances, each followed by a blank line. */
function upstreamBlocks(table: GatewayTable): string[] {
  return table.services
    .filter((service) => service.upstreams.length > 0)
    .flatMap((service) => [
      ...part('upstream', {
        name: upstreamName(service.name),
        servers: interleaveByHost(service.upstreams).flatMap((address) => part('server', { address })),
      }),
      '',
    ]);
}

/** The whole nginx.conf for one routing table: a pure function of its inputs. */
export function renderNginxConfig(s: NginxSettings, table: GatewayTable, generation = 0): string {
  const dir = s.workDir.replace(/\/+$/, '');
  const adminSocket = adminSocketPath(dir);
  const watcher = `http://127.0.0.1:${s.statusPort}`;
  const tls = s.tls;
  const adminListen = part('admin-listen', {
    listen: listenOn(s.adminAddress, s.adminPort, s.adminTls !== undefined, s.reusePort),
    tls: s.adminTls ? tlsServer(s.adminTls) : [],
  });
  const lines = part('nginx.conf', {
    worker_user: s.workerUser ? [`user ${s.workerUser.user} ${s.workerUser.group};`] : [],
    worker_processes: String(s.workerProcesses),
    dir,
    log_format: ACCESS_LOG_FORMAT,
    access_log:
      'stdout' in s.accessLog
        ? '/dev/stdout'
        : `syslog:server=127.0.0.1:${s.accessLog.relayPort},facility=local7,tag=nginx,severity=info,nohostname`,
    stream_paths: streamPathLines(s.streamPaths),
    rate_limit_zone: s.rateLimitPerClient > 0 ? part('rate-limit-zone', { rate: String(s.rateLimitPerClient) }) : [],
    tls_settings: tls || s.adminTls ? [...part('tls-settings'), ''] : [],
    upstreams: upstreamBlocks(table),
    public_listen: listenOn(s.listenAddress, s.listenPort, tls !== undefined, s.reusePort),
    public_tls: tls ? tlsServer(tls) : [],
    conn_limit: String(s.connLimitPerClient),
    stream_limit: String(s.streamLimitPerClient),
    rate_limit: s.rateLimitPerClient > 0 ? part('rate-limit', { burst: String(s.rateBurstPerClient) }) : [],
    public_reserved: reservedLocations('public'),
    too_many: part('too-many'),
    public_routes: routeLocations(table, 'public', s.upstreamCaFile),
    redirect_server:
      tls?.redirectPort !== undefined
        ? [
            ...part('redirect-server', {
              listen: listenOn(s.listenAddress, tls.redirectPort, false, s.reusePort),
              port: tls.publicHttpsPort === 443 ? '' : `:${tls.publicHttpsPort}`,
            }),
            '',
          ]
        : [],
    admin_front_server: s.adminLogin
      ? [
          ...part('admin-front-server', {
            admin_listen: adminListen,
            to_admin_server: part('to-admin-server', { admin_socket: adminSocket }),
            watcher,
          }),
          '',
        ]
      : [],
    admin_listen: s.adminLogin ? part('admin-behind-front') : adminListen,
    admin_socket: adminSocket,
    watcher,
    generation: String(generation),
    admin_stream_limit: String(ADMIN_STREAMS_PER_CLIENT),
    try_url: `${tls ? 'https' : 'http'}://${hostPort(probeAddress(s.listenAddress), s.listenPort)}/`,
    admin_reserved: reservedLocations('admin'),
    admin_routes: routeLocations(table, 'admin', s.upstreamCaFile),
  });
  return `${lines.join('\n')}\n`;
}
