import { hostPort } from '../lib/endpoints';
import { probeAddress } from '../lib/listen-address';
import { RESERVED_PATHS, routeText, type Route } from '../lib/routes';
import { adminSocketPath } from './nginx';
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

/** The JSON access-log line's nginx `log_format` (exported for the benchmark's static nginx peer). */
export const ACCESS_LOG_FORMAT = [
  '{"time":"$time_iso8601","level":"info","source":"nginx","msg":"request",',
  '"method":"$request_method","uri":"$request_uri","status":$status,"bytes":$body_bytes_sent,',
  '"durationS":$request_time,"upstream":"$upstream_addr","upstreamStatus":"$upstream_status",',
  '"upstreamTimeS":"$upstream_response_time","remote":"$remote_addr"}',
].join('');

function jsonBody(fields: Record<string, unknown>): string {
  // Single-quoted nginx string: JSON never needs a single quote or backslash here (names are validated).
  return `'${JSON.stringify(fields)}'`;
}

const TOO_MANY = jsonBody({
  error: 'too many requests',
  detail: 'this client sends requests too fast or has too many in flight; retry after the time in Retry-After',
});

const NOT_FOUND = jsonBody({ error: 'not found', detail: 'no service is routed at this path' });

const PLAIN_HTTP = jsonBody({ error: 'plain HTTP sent to the HTTPS port', detail: 'use https:// on this port' });

/** A TLS listener's certificate, and the JSON 400 plain HTTP sent to it gets (nginx's code 497), on a connection then closed. */
function tlsServerLines(files: { certFile: string; keyFile: string }): string[] {
  return [
    `    ssl_certificate ${files.certFile};`,
    `    ssl_certificate_key ${files.keyFile};`,
    "    # Plain HTTP sent to this port (nginx's code 497): a JSON 400 saying so, on a connection then closed.",
    '    error_page 497 = @plain_http;',
    '    location @plain_http {',
    '      default_type application/json;',
    `      return 400 ${PLAIN_HTTP};`,
    '    }',
  ];
}

/**
 * How a request is proxied to the replicas: keep-alive upstream connections, timeouts, and the retry on
 * another replica after a failed connect (exported: the benchmark's static nginx uses the same).
 */
export const PROXY_DIRECTIVES: readonly string[] = [
  '      proxy_http_version 1.1;',
  '      proxy_set_header Connection "";',
  '      proxy_set_header Host $host;',
  '      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
  // A connect on loopback or a private network takes about a millisecond; a dead host's addresses answer
  // nothing (no RST), so each costs this whole timeout: at 1 s, two of a dead VM's replicas in a row took a
  // request past the 2 s that counts as a failure (the multi-VM test's kill scenario).
  '      proxy_connect_timeout 500ms;',
  '      proxy_send_timeout 30s;',
  '      proxy_read_timeout 30s;',
  '      # nginx itself never retries non-idempotent requests (POST, PATCH, LOCK) once sent.',
  '      proxy_next_upstream error timeout;',
  // Every upstream at most once per request (nginx skips the ones it tried), within the 5 s timeout. A cap
  // of 3 was not enough: concurrent requests share the round robin, so a request's next try is not always
  // on the next host, and a dead VM with three replicas took all three tries of one request (a 502).
  '      proxy_next_upstream_tries 0;',
  '      proxy_next_upstream_timeout 5s;',
];

type Listener = 'public' | 'admin';

/** The upstream block's name for a service (service names are lowercase DNS labels, lib/service-name.ts). */
const upstreamName = (service: string) => `svc_${service}`;

/**
 * The inside of every location of one service: proxied to its upstream block (on the admin listener also
 * naming the upstream that answered), or, with no passing instance, the service's JSON 503. Upstream
 * responses pass through as the replica sends them: nginx honours `X-Accel-Buffering: no` (an SSE stream)
 * by default, and proxy_read_timeout (30 s) outlasts a stream's heartbeats.
 */
function serviceBody(service: GatewayService, listener: Listener, upstreamCaFile: string | undefined): string[] {
  const tooMany = listener === 'public' ? ['      error_page 429 = @too_many;'] : [];
  if (service.upstreams.length === 0)
    return [
      '      default_type application/json;',
      '      add_header Retry-After 1 always;',
      ...tooMany,
      `      return 503 ${jsonBody({ error: 'service unavailable', detail: `no healthy instance of ${service.name} is registered in Consul`, service: service.name })};`,
    ];
  return [
    `      proxy_pass ${upstreamCaFile ? 'https' : 'http'}://${upstreamName(service.name)};`,
    ...PROXY_DIRECTIVES,
    ...(upstreamCaFile
      ? [
          '      proxy_ssl_verify on;',
          `      proxy_ssl_trusted_certificate ${upstreamCaFile};`,
          `      proxy_ssl_name ${service.name}.service.consul;`,
          '      proxy_ssl_protocols TLSv1.2 TLSv1.3;',
        ]
      : []),
    ...(listener === 'admin' ? ['      add_header X-Upstream-Addr $upstream_addr always;'] : []),
    `      error_page 502 = @${upstreamName(service.name)}_bad_gateway;`,
    `      error_page 504 = @${upstreamName(service.name)}_gateway_timeout;`,
    ...tooMany,
  ];
}

/** The JSON answers for a service whose replicas failed (named locations, one pair per served service). */
function serviceErrorLocations(service: GatewayService): string[] {
  if (service.upstreams.length === 0) return [];
  const name = upstreamName(service.name);
  return [
    `    location @${name}_bad_gateway {`,
    '      default_type application/json;',
    `      return 502 ${jsonBody({ error: 'bad gateway', detail: `no instance of ${service.name} answered`, service: service.name })};`,
    '    }',
    `    location @${name}_gateway_timeout {`,
    '      default_type application/json;',
    `      return 504 ${jsonBody({ error: 'gateway timeout', detail: `no instance of ${service.name} answered in time`, service: service.name })};`,
    '    }',
  ];
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
        lines.push(`    location ${match} {`, ...serviceBody(service, listener, upstreamCaFile), '    }');
      }
    }
    lines.push(...serviceErrorLocations(service));
  }
  if (!catchAll) lines.push('    location / {', ...notFoundBody(listener), '    }');
  return lines;
}

function notFoundBody(listener: Listener): string[] {
  return [
    '      default_type application/json;',
    ...(listener === 'public' ? ['      error_page 429 = @too_many;'] : []),
    `      return 404 ${NOT_FOUND};`,
  ];
}

/** The gateway's own paths (lib/routes.ts RESERVED_PATHS): no service is ever routed there; a JSON 404 unless a listener serves one. */
function reservedLocations(listener: Listener): string[] {
  return RESERVED_PATHS.flatMap((path) => [
    `    location = ${path} {`,
    ...notFoundBody(listener),
    '    }',
    `    location ^~ ${path}/ {`,
    ...notFoundBody(listener),
    '    }',
  ]);
}

/** The JSON 429 every per-client limit answers with (limit_conn and limit_req both answer 429). */
const TOO_MANY_LOCATION = [
  '    location @too_many {',
  '      default_type application/json;',
  '      add_header Retry-After 1 always;',
  `      return 429 ${TOO_MANY};`,
  '    }',
];

/**
 * Event streams one client address may hold open on each of the evidence page's stream paths: a quarter of
 * the watcher's own cap (32 each), so one address cannot lock the others out; a page holds one of each.
 */
export const ADMIN_STREAMS_PER_CLIENT = 8;

/** The per-address limit of an evidence page stream: its 429 is the gateway's JSON one. */
const ADMIN_STREAM_LIMIT = [`      limit_conn admin_streams_per_client ${ADMIN_STREAMS_PER_CLIENT};`, '      error_page 429 = @too_many;'];

/**
 * The key of the public listener's stream limit: the client's address on a stream path (each route with
 * everything under it; `$uri` is the normalized path nginx matches locations with), empty elsewhere, and
 * limit_conn does not count an empty key. Paths are checked routes (lib/routes.ts), so `.` is the one
 * character with a meaning in a regular expression.
 */
function streamClientMap(streamPaths: readonly Route[]): string[] {
  const lines = ['  map $uri $stream_client {', '    default "";'];
  for (const route of streamPaths) {
    lines.push(`    ${route.path} $binary_remote_addr;`);
    if (!route.exact) lines.push(`    "~^${route.path === '/' ? '/' : `${route.path.replace(/\./g, '\\.')}/`}" $binary_remote_addr;`);
  }
  return [...lines, '  }'];
}

/**
 * The evidence page (balancer/evidence-page.ts): the page, its script and style and its event stream come
 * from the watcher's status server; `/_balancer/try` sends one GET through the public listener, so the
 * page's "send N requests" stays same-origin (CSP `default-src 'self'`) and still goes through the
 * balancer. `/_balancer/activity` is the activity service's event stream, relayed by the watcher from the
 * public listener (so a reload or a stop can end it). Served on the admin listener only.
 */
function evidenceLocations(s: NginxSettings): string[] {
  const watcher = `http://127.0.0.1:${s.statusPort}`;
  return [
    '    location ^~ /_balancer/evidence {',
    '      access_log off;',
    `      proxy_pass ${watcher};`,
    '      proxy_connect_timeout 1s;',
    '      proxy_read_timeout 5s;',
    '    }',
    '    location = /_balancer/events {',
    '      access_log off;',
    `      proxy_pass ${watcher};`,
    '      proxy_connect_timeout 1s;',
    '      # A Server-Sent Events stream: passed on as written; the watcher sends a comment every 15 s.',
    '      proxy_buffering off;',
    '      proxy_read_timeout 60s;',
    ...ADMIN_STREAM_LIMIT,
    '    }',
    '    location = /_balancer/activity {',
    '      # The activity events, relayed by the watcher from the public listener (evidence-activity.ts).',
    '      access_log off;',
    `      proxy_pass ${watcher};`,
    '      proxy_connect_timeout 1s;',
    '      # Server-Sent Events: passed on as written; the activity service sends a heartbeat every 15 s.',
    '      proxy_buffering off;',
    '      proxy_read_timeout 60s;',
    ...ADMIN_STREAM_LIMIT,
    '    }',
    '    location = /_balancer/try {',
    '      # The page only reads: a GET of / through the public listener, nothing else.',
    '      limit_except GET { deny all; }',
    ...(s.tls ? ['      # HTTPS to its own public listener on loopback (not verified: the certificate names the public host).'] : []),
    `      proxy_pass ${s.tls ? 'https' : 'http'}://${hostPort(probeAddress(s.listenAddress), s.listenPort)}/;`,
    '      proxy_connect_timeout 1s;',
    '      proxy_read_timeout 35s;',
    '      add_header Cache-Control no-store always;',
    '    }',
  ];
}

/**
 * The public listener: the routed services, nothing about the balancer. Each client address may have
 * connLimitPerClient requests in flight (nginx counts a connection once its request header is read, so
 * this bounds bursts of requests and slow bodies; slow headers are bounded by client_header_timeout and
 * the connection headroom, see renderNginxConfig) and send rateLimitPerClient requests a second.
 */
function publicServer(s: NginxSettings, table: GatewayTable): string[] {
  return [
    '  server {',
    `    listen ${hostPort(s.listenAddress, s.listenPort)}${s.tls ? ' ssl' : ''}${s.reusePort ? ' reuseport' : ''};`,
    ...(s.tls ? tlsServerLines(s.tls) : []),
    `    limit_conn per_client ${s.connLimitPerClient};`,
    `    # Streams on ${s.streamPaths.map(routeText).join(', ')}: open for minutes, so counted apart from the requests in flight.`,
    `    limit_conn streams_per_client ${s.streamLimitPerClient};`,
    ...(s.rateLimitPerClient > 0 ? [`    limit_req zone=rate_per_client burst=${s.rateBurstPerClient} nodelay;`] : []),
    ...reservedLocations('public'),
    ...TOO_MANY_LOCATION,
    ...routeLocations(table, 'public', s.upstreamCaFile),
    '  }',
  ];
}

/**
 * The plain-HTTP listener beside HTTPS (PUBLIC_HTTP=redirect): every request gets a 308 to the same host and
 * path on the HTTPS port clients reach; nothing is proxied in clear. 308, not 301: a POST stays a POST.
 */
function redirectServer(s: NginxSettings, tls: PublicTlsSettings & { redirectPort: number }): string[] {
  const port = tls.publicHttpsPort === 443 ? '' : `:${tls.publicHttpsPort}`;
  return [
    '  server {',
    `    listen ${hostPort(s.listenAddress, tls.redirectPort)}${s.reusePort ? ' reuseport' : ''};`,
    `    return 308 https://$host${port}$request_uri;`,
    '  }',
  ];
}

/**
 * HTTPS at the edge: Mozilla's "intermediate" profile (TLS 1.2 and 1.3, AEAD ciphers with forward secrecy,
 * the client's preference, as all of them are strong). Sessions resume from a cache shared by the workers;
 * no tickets, as nginx never rotates its ticket key while it runs, which would weaken forward secrecy.
 */
const TLS_SETTINGS = [
  '  ssl_protocols TLSv1.2 TLSv1.3;',
  '  ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;',
  '  ssl_prefer_server_ciphers off;',
  '  # About 4,000 sessions a MiB.',
  '  ssl_session_cache shared:tls_sessions:10m;',
  '  ssl_session_timeout 1d;',
  '  ssl_session_tickets off;',
  '',
];

/** The admin listener's TCP socket, over TLS when it has a certificate. */
const adminListen = (s: NginxSettings): string[] => [
  `    listen ${hostPort(s.adminAddress, s.adminPort)}${s.adminTls ? ' ssl' : ''}${s.reusePort ? ' reuseport' : ''};`,
  ...(s.adminTls ? tlsServerLines(s.adminTls) : []),
];

/** The JSON 401 of the admin port: what a request without the credential must bring. */
const ADMIN_UNAUTHORIZED = jsonBody({
  error: 'unauthorized',
  detail:
    'the admin listener needs the admin token: send Authorization: Bearer <token>, or log in at /_balancer/login for a session cookie',
  login: '/_balancer/login',
});

/**
 * With ADMIN_TOKEN_FILE, the admin port is this front: every request is first checked by the watcher
 * (auth_request to /_balancer/auth, the Bearer header or the session cookie), then passed whole to the admin
 * server on its Unix socket. One location passes everything, so no admin path (the status, the evidence page
 * and its streams, the routes with X-Upstream-Addr, nginx's own answers) is left out of the check, and the
 * token never reaches a replica. Without the credential: the JSON 401, or the login form for the page.
 */
function adminFrontServer(s: NginxSettings): string[] {
  const socket = adminSocketPath(s.workDir.replace(/\/+$/, ''));
  const watcher = `http://127.0.0.1:${s.statusPort}`;
  const toAdminServer = [
    `      proxy_pass http://unix:${socket}:;`,
    '      proxy_http_version 1.1;',
    '      proxy_set_header Connection "";',
    '      proxy_set_header Host $host;',
    '      # The admin server counts streams per client and logs this address (set_real_ip_from there).',
    '      proxy_set_header X-Real-IP $remote_addr;',
    '      proxy_set_header Authorization "";',
    '      proxy_connect_timeout 1s;',
    '      # Event streams pass as written; the admin server has the shorter timeouts (60 s at most).',
    '      proxy_buffering off;',
    '      proxy_read_timeout 90s;',
    '      proxy_send_timeout 90s;',
    '      # The admin server logs the request.',
    '      access_log off;',
  ];
  return [
    '  server {',
    ...adminListen(s),
    '    auth_request /_balancer/auth;',
    '    error_page 401 = @admin_unauthorized;',
    '    # Redirects stay relative, right behind a TLS proxy too.',
    '    absolute_redirect off;',
    '    location / {',
    ...toAdminServer,
    '    }',
    '    location = /_balancer/evidence {',
    ...toAdminServer,
    '      error_page 401 = @admin_login;',
    '    }',
    '    location = /_balancer/login {',
    '      auth_request off;',
    `      proxy_pass ${watcher};`,
    '      # The session cookie is Secure when the client came over HTTPS.',
    '      proxy_set_header X-Admin-Scheme $scheme;',
    '      client_max_body_size 4k;',
    '      proxy_connect_timeout 1s;',
    '      proxy_read_timeout 5s;',
    '    }',
    '    location = /_balancer/auth {',
    '      internal;',
    `      proxy_pass ${watcher};`,
    '      proxy_pass_request_body off;',
    '      proxy_set_header Content-Length "";',
    '      proxy_connect_timeout 1s;',
    '      proxy_read_timeout 5s;',
    '    }',
    '    location @admin_unauthorized {',
    '      default_type application/json;',
    '      add_header WWW-Authenticate \'Bearer realm="balancer admin"\' always;',
    '      add_header Cache-Control no-store always;',
    `      return 401 ${ADMIN_UNAUTHORIZED};`,
    '    }',
    '    location @admin_login {',
    '      add_header Cache-Control no-store always;',
    '      return 302 /_balancer/login;',
    '    }',
    '  }',
    '',
  ];
}

/**
 * The admin listener (loopback or a private network): the status, the generation and the naming proxy,
 * routed as the public one. With the admin login it listens only on its Unix socket, behind adminFrontServer.
 */
function adminServer(s: NginxSettings, table: GatewayTable, generation: number): string[] {
  return [
    ...(s.adminLogin ? adminFrontServer(s) : []),
    '  server {',
    ...(s.adminLogin
      ? [
          '    # Behind the front: the client is the one it names; the watcher and the health probe come as unix:.',
          '    set_real_ip_from unix:;',
          '    real_ip_header X-Real-IP;',
        ]
      : adminListen(s)),
    "    # This balancer's own: the reload check and the health check ask here, never another balancer on the port.",
    `    listen unix:${adminSocketPath(s.workDir.replace(/\/+$/, ''))};`,
    '    location = /_balancer/status {',
    '      # Health checks poll this every few seconds; keep them out of the access log.',
    '      access_log off;',
    `      proxy_pass http://127.0.0.1:${s.statusPort};`,
    '      proxy_connect_timeout 1s;',
    '      proxy_read_timeout 5s;',
    '      add_header Cache-Control no-store always;',
    '    }',
    '    # The watcher polls this after a reload: the new number means the new config is being served.',
    '    location = /_balancer/generation {',
    '      access_log off;',
    '      default_type text/plain;',
    `      return 200 "${generation}";`,
    '    }',
    ...evidenceLocations(s),
    ...TOO_MANY_LOCATION,
    ...reservedLocations('admin'),
    ...routeLocations(table, 'admin', s.upstreamCaFile),
    '  }',
  ];
}

/** Connections per worker; one worker per CPU, so a 2-core host has 8,192 in all. */
const WORKER_CONNECTIONS = 4096;

/**
 * The upstreams in the order nginx's round robin walks them, hosts taking turns (a1, b1, a2, b2, ...; each
 * host's own in sorted order): when a request's first upstream fails, the next one in that order is on
 * another host, so a dead host (a VM with three replicas) costs a retry one failed connect, not several in a
 * row. proxy_next_upstream_tries 0 (PROXY_DIRECTIVES) then bounds what is left: concurrent requests share the
 * round robin, so the next try is not always the next in this order.
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

/** One upstream block per service with passing instances. */
function upstreamBlocks(table: GatewayTable): string[] {
  return table.services
    .filter((service) => service.upstreams.length > 0)
    .flatMap((service) => [
      `  upstream ${upstreamName(service.name)} {`,
      ...interleaveByHost(service.upstreams).map((u) => `    server ${u} max_fails=1 fail_timeout=2s;`),
      '    keepalive 32;',
      "    # Below Node's default 5 s server keep-alive, so nginx never reuses a socket the replica is closing.",
      '    keepalive_timeout 4s;',
      '  }',
      '',
    ]);
}

/** The whole nginx.conf for one routing table: a pure function of its inputs. */
export function renderNginxConfig(s: NginxSettings, table: GatewayTable, generation = 0): string {
  const dir = s.workDir.replace(/\/+$/, '');
  const lines = [
    '# Rendered by the balancer from Consul; rewritten on every change of the routing table.',
    ...(s.workerUser ? [`user ${s.workerUser.user} ${s.workerUser.group};`] : []),
    'daemon off;',
    `worker_processes ${s.workerProcesses};`,
    'worker_shutdown_timeout 30s;',
    `pid ${dir}/nginx.pid;`,
    'error_log stderr warn;',
    '',
    // Slots for a slow-header flood on top of real traffic (a proxied request takes two: client and
    // replica); 2,100 slow connections filled 1024 (issue 14, defect 4). Each needs a file descriptor.
    `worker_rlimit_nofile ${WORKER_CONNECTIONS * 2 + 64};`,
    '',
    'events {',
    `  worker_connections ${WORKER_CONNECTIONS};`,
    '}',
    '',
    'http {',
    `  client_body_temp_path ${dir}/temp/client_body;`,
    `  proxy_temp_path ${dir}/temp/proxy;`,
    `  fastcgi_temp_path ${dir}/temp/fastcgi;`,
    `  uwsgi_temp_path ${dir}/temp/uwsgi;`,
    `  scgi_temp_path ${dir}/temp/scgi;`,
    '',
    `  log_format json_lines escape=json '${ACCESS_LOG_FORMAT}';`,
    'stdout' in s.accessLog
      ? '  access_log /dev/stdout json_lines;'
      : `  access_log syslog:server=127.0.0.1:${s.accessLog.relayPort},facility=local7,tag=nginx,severity=info,nohostname json_lines;`,
    '',
    '  server_tokens off;',
    "  # No static file is served: nginx's own answers get the type their location names (JSON), never one",
    "  # guessed from the path's extension (/index.html would otherwise make a JSON 404 text/html).",
    '  types { }',
    '  client_max_body_size 1m;',
    '  # A real client sends its request header in one packet; 5 s covers a slow mobile link, and a slow-header',
    '  # connection holds its slot half as long as with the former 10 s.',
    '  client_header_timeout 5s;',
    '  # Between two reads of the body, not for the whole body: a 1 MiB upload on a slow link still passes.',
    '  client_body_timeout 10s;',
    '  # Between two writes to a client that stopped reading; the largest answer is small JSON.',
    '  send_timeout 10s;',
    '  # An idle kept-alive client holds a slot; clients reuse a connection within seconds or not at all, so',
    '  # 15 s keeps the reuse and halves the hold of the former 30 s.',
    '  keepalive_timeout 15s;',
    '  # A timed-out connection is reset, freeing its memory at once instead of lingering in FIN_WAIT.',
    '  reset_timedout_connection on;',
    '  # Requests in flight per client address (the key is 4 bytes for IPv4, 16 for IPv6; 1 MiB holds ~8,000',
    '  # addresses, and a full zone refuses with the same 429).',
    '  limit_conn_zone $binary_remote_addr zone=per_client:1m;',
    ...streamClientMap(s.streamPaths),
    '  limit_conn_zone $stream_client zone=streams_per_client:1m;',
    '  limit_conn_zone $binary_remote_addr zone=admin_streams_per_client:1m;',
    '  limit_conn_status 429;',
    '  limit_conn_log_level warn;',
    ...(s.rateLimitPerClient > 0
      ? [
          '  # Requests per second per client address (a state is about 64 bytes; 10 MiB holds ~160,000 addresses).',
          `  limit_req_zone $binary_remote_addr zone=rate_per_client:10m rate=${s.rateLimitPerClient}r/s;`,
          '  limit_req_status 429;',
          '  limit_req_log_level warn;',
        ]
      : []),
    '',
  ];
  const tls = s.tls;
  lines.push(
    ...(tls || s.adminTls ? TLS_SETTINGS : []),
    ...upstreamBlocks(table),
    ...publicServer(s, table),
    '',
    ...(tls?.redirectPort !== undefined ? [...redirectServer(s, { ...tls, redirectPort: tls.redirectPort }), ''] : []),
    ...adminServer(s, table, generation),
    '}',
    '',
  );
  return lines.join('\n');
}
