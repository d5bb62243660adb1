import type { PortRange } from '../lib/port-range';
import { readTlsPair, type TlsPair } from '../lib/tls-files';
import net from 'node:net';
import type { NetworkInterfaceInfo } from 'node:os';
import { envValue, rejectConfig } from '../lib/config-error';
import {
  CONSUL_ADDRESS_ALLOWED,
  DEFAULT_CONSUL_ADDRESS,
  parseConsulAddress,
  parseConsulToken,
  type ConsulAddress,
} from '../lib/consul-address';
import { isWildcardAddress, probeAddress } from '../lib/listen-address';
import { routesSetting, type Route } from '../lib/routes';
import { DEFAULT_SERVICE_NAME, isServiceName, SERVICE_DEFAULT_ROUTES, SERVICE_NAME_ALLOWED } from '../lib/service-name';

export const DEFAULT_ROUTES = SERVICE_DEFAULT_ROUTES;

export interface ServiceConfig {
  /** PORT: one port, or a range; the one bound is known once listening (replica/listen.ts). */
  ports: PortRange;
  host: string;
  serviceName: string;
  serviceId: string;
  serviceAddress: string;
  consul: ConsulAddress;
  /** CONSUL_HTTP_TOKEN: sent as X-Consul-Token; undefined means Consul's anonymous token. */
  consulToken: string | undefined;
  /** ROUTES: the paths the gateway routes here, registered as `urlprefix-` tags (lib/routes.ts). */
  routes: Route[];
  /** TLS_CERT_FILE and TLS_KEY_FILE: HTTPS on the replica's port (on VMs, for the gateway on another VM); undefined: HTTP. */
  tls: TlsPair | undefined;
}

/** Facts about the machine that the defaults depend on, passed in so parsing stays pure. */
export interface HostFacts {
  hostname: string;
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>;
}

// The id goes into Consul API paths, so nothing that needs escaping there.
const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const HOSTNAME = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;

const PORT_ALLOWED = 'a whole number from 1 to 65535, or a range FIRST-LAST of them (FIRST <= LAST) to listen on the first free one';

function parsePorts(raw: string | undefined): PortRange {
  if (raw === undefined) return { first: 8080, last: 8080 };
  const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(raw);
  const first = Number(match?.[1]);
  const last = Number(match?.[2] ?? match?.[1]);
  const valid = match !== null && first >= 1 && last <= 65535 && first <= last;
  return valid ? { first, last } : rejectConfig('PORT', raw, PORT_ALLOWED);
}

function parseHost(raw: string | undefined): string {
  if (raw === undefined) return '0.0.0.0';
  if (net.isIP(raw) === 0) rejectConfig('HOST', raw, 'an IPv4 or IPv6 address to bind, such as 0.0.0.0 or 127.0.0.1');
  return raw;
}

function parseName(raw: string | undefined, fallback: string): string {
  const name = raw ?? fallback;
  return isServiceName(name) ? name : rejectConfig('SERVICE_NAME', name, SERVICE_NAME_ALLOWED);
}

function parseId(raw: string | undefined, fallback: string | undefined): string | undefined {
  if (raw === undefined) return fallback;
  if (!ID.test(raw)) rejectConfig('SERVICE_ID', raw, "1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit");
  return raw;
}

/** The first non-internal IPv4 address: in a container, the address other containers reach it on. */
export function firstExternalIPv4(interfaces: HostFacts['interfaces']): string | undefined {
  for (const list of Object.values(interfaces)) {
    for (const info of list ?? []) if (info.family === 'IPv4' && !info.internal) return info.address;
  }
  return undefined;
}

function parseAddress(raw: string | undefined, host: string, facts: HostFacts): string {
  if (raw === undefined) {
    // Bound to one address: that is the only one a health check can reach.
    if (!isWildcardAddress(host)) return host;
    return firstExternalIPv4(facts.interfaces) ?? probeAddress(host);
  }
  if (net.isIP(raw) === 0 && !HOSTNAME.test(raw)) rejectConfig('SERVICE_ADDRESS', raw, 'an IP address or a host name Consul can reach');
  return raw;
}

function parseConsul(raw: string | undefined): ConsulAddress {
  const text = raw ?? DEFAULT_CONSUL_ADDRESS;
  return parseConsulAddress(text) ?? rejectConfig('CONSUL_HTTP_ADDR', text, CONSUL_ADDRESS_ALLOWED);
}

/** What a service of the stack takes when SERVICE_NAME or ROUTES is unset (hello's; the activity service has its own). */
export interface ServiceDefaults {
  serviceName: string;
  routes: string;
}

/** Reads the service's environment once, at start; throws ConfigError naming the first bad variable. */
export function parseConfig(
  env: NodeJS.ProcessEnv,
  facts: HostFacts,
  defaults: ServiceDefaults = { serviceName: DEFAULT_SERVICE_NAME, routes: DEFAULT_ROUTES },
): ServiceConfig {
  const portText = envValue(env, 'PORT');
  const ports = parsePorts(portText);
  const host = parseHost(envValue(env, 'HOST'));
  const serviceName = parseName(envValue(env, 'SERVICE_NAME'), defaults.serviceName);
  const hostname = facts.hostname.replace(/[^A-Za-z0-9.-]/g, '-') || 'host';
  // The default id names the port, which a range leaves open until the replica has bound one.
  const defaultId = ports.first === ports.last ? `${serviceName}-${hostname}-${ports.first}` : undefined;
  const serviceId =
    parseId(envValue(env, 'SERVICE_ID'), defaultId) ??
    rejectConfig('PORT', portText!, 'a single port when SERVICE_ID is unset (the default id names the port), or set SERVICE_ID too');
  const serviceAddress = parseAddress(envValue(env, 'SERVICE_ADDRESS'), host, facts);
  const consul = parseConsul(envValue(env, 'CONSUL_HTTP_ADDR'));
  const consulToken = parseConsulToken(env);
  const routes = routesSetting(env, defaults.routes);
  return { ports, host, serviceName, serviceId, serviceAddress, consul, consulToken, routes, tls: readTlsPair(env) };
}
