import net from 'node:net';
import { hostPort } from '../lib/endpoints';

/** The parts of one `/v1/health/service/<name>` entry the balancer reads. */
export interface HealthEntry {
  Node?: { Node?: string; Address?: string } | null;
  Service?: { ID?: string; Service?: string; Address?: string; Port?: number } | null;
}

export interface DroppedEntry {
  /** Service ID (or node name) so an operator can find the registration. */
  id: string;
  reason: string;
}

export interface UpstreamSelection {
  /** `address:port` (IPv6 in brackets), deduplicated and sorted so equal sets render equal text. */
  upstreams: string[];
  dropped: DroppedEntry[];
}

export interface NginxSettings {
  serviceName: string;
  listenAddress: string;
  listenPort: number;
  /** nginx prefix: pid and temp files live here. */
  workDir: string;
  /** Loopback port of the watcher's own status server, proxied at /_balancer/status. */
  statusPort: number;
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

export interface Rendered extends UpstreamSelection {
  text: string;
}

// Host names pass (nginx resolves them at load); anything else could smuggle nginx syntax in.
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Whether two upstream lists (sorted, as selectUpstreams returns them) are the same set. */
export const sameUpstreams = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Picks the upstreams from Consul's health entries with Consul's own rule: the service address,
 * or the node address when the service address is empty. Entries with neither, with port 0, or
 * with an address that is not an IP literal or host name are dropped and reported, never rendered.
 */
export function selectUpstreams(entries: readonly HealthEntry[]): UpstreamSelection {
  const seen = new Set<string>();
  const dropped: DroppedEntry[] = [];
  for (const entry of entries) {
    const id = entry.Service?.ID || entry.Node?.Node || '(unnamed)';
    const address = (entry.Service?.Address?.trim() || entry.Node?.Address?.trim() || '').replace(/^\[(.*)\]$/, '$1');
    const port = entry.Service?.Port ?? 0;
    if (!address) {
      dropped.push({ id, reason: 'no address: both Service.Address and Node.Address are empty' });
    } else if (!Number.isInteger(port) || port < 1 || port > 65535) {
      dropped.push({ id, reason: `port ${port} is not in 1..65535` });
    } else if (net.isIP(address) === 0 && !HOST_NAME.test(address)) {
      dropped.push({ id, reason: `address ${JSON.stringify(address)} is neither an IP literal nor a host name` });
    } else {
      const upstream = hostPort(address.toLowerCase(), port);
      if (seen.has(upstream)) dropped.push({ id, reason: `duplicate of ${upstream}` });
      seen.add(upstream);
    }
  }
  return { upstreams: [...seen].sort(), dropped };
}

const ACCESS_LOG_FORMAT = [
  '{"time":"$time_iso8601","level":"info","source":"nginx","msg":"request",',
  '"method":"$request_method","uri":"$request_uri","status":$status,"bytes":$body_bytes_sent,',
  '"durationS":$request_time,"upstream":"$upstream_addr","upstreamStatus":"$upstream_status",',
  '"upstreamTimeS":"$upstream_response_time","remote":"$remote_addr"}',
].join('');

function jsonBody(fields: Record<string, unknown>): string {
  // Single-quoted nginx string: JSON never needs a single quote or backslash here (names are validated).
  return `'${JSON.stringify(fields)}'`;
}

function proxyLocation(s: NginxSettings): string[] {
  return [
    '    location / {',
    '      proxy_pass http://service_upstreams;',
    '      proxy_http_version 1.1;',
    '      proxy_set_header Connection "";',
    '      proxy_set_header Host $host;',
    '      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    '      proxy_connect_timeout 1s;',
    '      proxy_send_timeout 30s;',
    '      proxy_read_timeout 30s;',
    '      # nginx itself never retries non-idempotent requests (POST, PATCH, LOCK) once sent.',
    '      proxy_next_upstream error timeout;',
    '      proxy_next_upstream_tries 3;',
    '      proxy_next_upstream_timeout 5s;',
    '      add_header X-Upstream-Addr $upstream_addr always;',
    '      error_page 502 = @bad_gateway;',
    '      error_page 504 = @gateway_timeout;',
    '    }',
    '    location @bad_gateway {',
    '      default_type application/json;',
    `      return 502 ${jsonBody({ error: 'bad gateway', detail: `no instance of ${s.serviceName} answered`, service: s.serviceName })};`,
    '    }',
    '    location @gateway_timeout {',
    '      default_type application/json;',
    `      return 504 ${jsonBody({ error: 'gateway timeout', detail: `no instance of ${s.serviceName} answered in time`, service: s.serviceName })};`,
    '    }',
  ];
}

function unavailableLocation(s: NginxSettings): string[] {
  return [
    '    location / {',
    '      default_type application/json;',
    '      add_header Retry-After 1 always;',
    `      return 503 ${jsonBody({ error: 'service unavailable', detail: `no healthy instance of ${s.serviceName} is registered in Consul`, service: s.serviceName })};`,
    '    }',
  ];
}

/** The whole nginx.conf for one upstream set: a pure function of its inputs. */
export function renderNginxConfig(s: NginxSettings, upstreams: readonly string[], generation = 0): string {
  const dir = s.workDir.replace(/\/+$/, '');
  const lines = [
    '# Rendered by the balancer from Consul; rewritten on every change of the upstream set.',
    ...(s.workerUser ? [`user ${s.workerUser.user} ${s.workerUser.group};`] : []),
    'daemon off;',
    `worker_processes ${s.workerProcesses};`,
    'worker_shutdown_timeout 30s;',
    `pid ${dir}/nginx.pid;`,
    'error_log stderr warn;',
    '',
    'events {',
    '  worker_connections 1024;',
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
    '  client_max_body_size 1m;',
    '  client_header_timeout 10s;',
    '  client_body_timeout 10s;',
    '  send_timeout 30s;',
    '  keepalive_timeout 30s;',
    '',
  ];
  if (upstreams.length > 0) {
    lines.push(
      '  upstream service_upstreams {',
      ...upstreams.map((u) => `    server ${u} max_fails=1 fail_timeout=2s;`),
      '    keepalive 32;',
      '    # Below Node\'s default 5 s server keep-alive, so nginx never reuses a socket the replica is closing.',
      '    keepalive_timeout 4s;',
      '  }',
      '',
    );
  }
  lines.push(
    '  server {',
    `    listen ${hostPort(s.listenAddress, s.listenPort)};`,
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
    ...(upstreams.length > 0 ? proxyLocation(s) : unavailableLocation(s)),
    '  }',
    '}',
    '',
  );
  return lines.join('\n');
}

/** Selection and text together: data in, nginx text and the dropped entries out. */
export function render(s: NginxSettings, entries: readonly HealthEntry[], generation = 0): Rendered {
  const selection = selectUpstreams(entries);
  return { ...selection, text: renderNginxConfig(s, selection.upstreams, generation) };
}
