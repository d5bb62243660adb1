import { readFileSync } from 'node:fs';
import net from 'node:net';
import { DEFAULT_CONN_LIMIT_PER_CLIENT, DEFAULT_RATE_LIMIT_PER_CLIENT } from '../lib/client-limits';
import { ConfigError, envValue, readSecretFile, rejectConfig } from '../lib/config-error';
import {
  CONSUL_ADDRESS_ALLOWED,
  DEFAULT_CONSUL_ADDRESS,
  parseConsulAddress,
  parseConsulToken,
  type ConsulAddress,
} from '../lib/consul-address';
import { parseRouteOwners, ROUTE_OWNERS_ALLOWED, type RouteOwners } from '../lib/route-owners';
import { parseRoutesEnv, ROUTE_ALLOWED, type Route } from '../lib/routes';
import { ACTIVITY_STREAM_PATH } from './evidence-activity';
import { parseAdminTls, parsePublicTls, parseUpstreamCa, type PublicTls } from './tls-config';

/**
 * Event streams one client address may hold open on the stream paths. A browser holds at most 6 connections
 * to one host (HTTP/1.1), so one browser never meets it, and a few users behind one NAT neither; one
 * address can no longer hold the activity service's streams (each a replica's memory and two nginx slots).
 */
export const DEFAULT_STREAM_LIMIT_PER_CLIENT = 16;

/** Everything the balancer reads from its environment, parsed and checked once at start. */
export interface BalancerConfig {
  /** Consul's HTTP API, e.g. http://127.0.0.1:8500. */
  consul: ConsulAddress;
  /** CONSUL_HTTP_TOKEN: sent as X-Consul-Token; undefined means Consul's anonymous token. */
  consulToken: string | undefined;
  listenAddress: string;
  listenPort: number;
  /** HTTPS on the public listener (TLS_CERT_FILE, TLS_KEY_FILE) and what plain HTTP gets; undefined: plain HTTP. */
  tls: PublicTls | undefined;
  /** ADMIN_TLS_CERT_FILE and ADMIN_TLS_KEY_FILE: HTTPS on the admin listener; undefined: plain HTTP. */
  adminTls: { certFile: string; keyFile: string } | undefined;
  /** UPSTREAM_CA_FILE: HTTPS to the replicas, verified with this CA (render.ts NginxSettings.upstreamCaFile); undefined: HTTP. */
  upstreamCaFile: string | undefined;
  /**
   * The admin listener: /_balancer/status, and the proxy that adds X-Upstream-Addr. Keep it on loopback or
   * a private network; the public port shows neither.
   */
  adminAddress: string;
  adminPort: number;
  /**
   * Both TCP listeners with SO_REUSEPORT (REUSE_PORT=true): another balancer of the same user may listen on
   * the same ports, which is how a new balancer takes over from an old one without a refused connection.
   */
  reusePort: boolean;
  /** Requests one client address may have in flight on the public port at once; more get a JSON 429. */
  connLimitPerClient: number;
  /** Requests per second one client address may send on the public port (nginx limit_req); 0 turns the limit off. */
  rateLimitPerClient: number;
  /** Requests beyond the rate served at once before the limit answers 429. */
  rateBurstPerClient: number;
  /** Public routes that serve event streams (a prefix route with everything under it), counted apart per client address. */
  streamPaths: Route[];
  /** Streams one client address may hold open on streamPaths; more get a JSON 429. */
  streamLimitPerClient: number;
  /** The admin listener's credential, read from the file ADMIN_TOKEN_FILE names; undefined leaves the listener open. */
  adminToken: string | undefined;
  /** ROUTE_OWNERS: which service may serve which paths; undefined lets the services' tags decide. */
  routeOwners: RouteOwners | undefined;
  nginxBin: string;
  /** nginx prefix for its conf, pid and temp files; undefined means "make a fresh temp dir". */
  workDir: string | undefined;
  /** How long an empty set is ignored right after a Consul outage or index reset. */
  emptyGraceMs: number;
}

function integer(env: NodeJS.ProcessEnv, variable: string, fallback: number, min: number, max: number): number {
  const raw = envValue(env, variable);
  if (raw === undefined) return fallback;
  const value = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(value >= min && value <= max)) rejectConfig(variable, raw, `a whole number from ${min} to ${max}`);
  return value;
}

/** `parse(text)`, or a ConfigError naming the variable, its value, what is allowed and what is wrong. */
function parsed<T>(variable: string, text: string, allowed: string, parse: (text: string) => T): T {
  try {
    return parse(text);
  } catch (error) {
    return rejectConfig(variable, text, `${allowed} (${(error as Error).message})`);
  }
}

export const ADMIN_TOKEN_FILE_ENV = 'ADMIN_TOKEN_FILE';
const ADMIN_TOKEN_ALLOWED = 'a token of 16 to 256 printable ASCII characters without spaces (the whole file, one line)';

/**
 * The admin token from the file ADMIN_TOKEN_FILE names, read once at start (a file, never the environment,
 * so `docker inspect` does not show it). Errors name the variable and the file, never the value.
 */
export function readAdminToken(
  env: NodeJS.ProcessEnv,
  readFile: (file: string) => string = (f) => readFileSync(f, 'utf8'),
): string | undefined {
  const file = envValue(env, ADMIN_TOKEN_FILE_ENV);
  if (file === undefined) return undefined;
  const value = readSecretFile(ADMIN_TOKEN_FILE_ENV, file, ADMIN_TOKEN_ALLOWED, readFile);
  if (!/^[\x21-\x7e]{16,256}$/.test(value))
    throw new ConfigError(`${ADMIN_TOKEN_FILE_ENV} (${file}) is not allowed (value not shown): use ${ADMIN_TOKEN_ALLOWED}`);
  return value;
}

/** Parses the balancer's environment; throws ConfigError naming the variable and what is allowed. */
export function parseConfig(env: NodeJS.ProcessEnv): BalancerConfig {
  const address = (variable: string): string => {
    const value = envValue(env, variable) ?? '127.0.0.1';
    if (net.isIP(value) === 0) rejectConfig(variable, value, 'an IPv4 or IPv6 address literal, such as 127.0.0.1 or ::');
    return value;
  };
  const listenAddress = address('LISTEN_ADDRESS');
  const adminAddress = address('ADMIN_ADDRESS');
  const listenPort = integer(env, 'LISTEN_PORT', 8080, 1, 65535);
  const adminPort = integer(env, 'ADMIN_PORT', 8081, 1, 65535);
  if (adminPort === listenPort) rejectConfig('ADMIN_PORT', String(adminPort), `a port other than LISTEN_PORT (${listenPort})`);

  const consulText = envValue(env, 'CONSUL_HTTP_ADDR') ?? DEFAULT_CONSUL_ADDRESS;
  const consul = parseConsulAddress(consulText) ?? rejectConfig('CONSUL_HTTP_ADDR', consulText, CONSUL_ADDRESS_ALLOWED);

  const workDir = envValue(env, 'WORK_DIR');
  if (workDir !== undefined && !workDir.startsWith('/')) rejectConfig('WORK_DIR', workDir, 'an absolute path');

  const reuseText = envValue(env, 'REUSE_PORT') ?? 'false';
  if (reuseText !== 'true' && reuseText !== 'false') rejectConfig('REUSE_PORT', reuseText, 'true or false');

  const streamPathsText = envValue(env, 'STREAM_PATHS') ?? ACTIVITY_STREAM_PATH;
  const streamPaths = parsed('STREAM_PATHS', streamPathsText, `comma-separated routes, each ${ROUTE_ALLOWED}`, parseRoutesEnv);
  const ownersText = envValue(env, 'ROUTE_OWNERS');
  const routeOwners = ownersText === undefined ? undefined : parsed('ROUTE_OWNERS', ownersText, ROUTE_OWNERS_ALLOWED, parseRouteOwners);

  const rateLimitPerClient = integer(env, 'RATE_LIMIT_PER_CLIENT', DEFAULT_RATE_LIMIT_PER_CLIENT, 0, 1_000_000);
  return {
    consul,
    consulToken: parseConsulToken(env),
    listenAddress,
    listenPort,
    tls: parsePublicTls(env, { listenPort, adminPort }),
    upstreamCaFile: parseUpstreamCa(env),
    adminTls: parseAdminTls(env),
    adminAddress,
    adminPort,
    reusePort: reuseText === 'true',
    connLimitPerClient: integer(env, 'CONN_LIMIT_PER_CLIENT', DEFAULT_CONN_LIMIT_PER_CLIENT, 1, 100_000),
    rateLimitPerClient,
    // A page load or a reconnecting client's backlog comes at once: by default two seconds' worth.
    rateBurstPerClient: integer(env, 'RATE_BURST_PER_CLIENT', 2 * rateLimitPerClient, 0, 2_000_000),
    streamPaths,
    streamLimitPerClient: integer(env, 'STREAM_LIMIT_PER_CLIENT', DEFAULT_STREAM_LIMIT_PER_CLIENT, 1, 100_000),
    adminToken: readAdminToken(env),
    routeOwners,
    nginxBin: envValue(env, 'NGINX_BIN') ?? 'nginx',
    workDir,
    emptyGraceMs: integer(env, 'EMPTY_GRACE_MS', 10_000, 0, 600_000),
  };
}
