import net from 'node:net';
import type { NetworkInterfaceInfo } from 'node:os';
import { parseConsulAddress, type ConsulAddress } from '../lib/consul-address';

export interface ServiceConfig {
  port: number;
  host: string;
  serviceName: string;
  serviceId: string;
  serviceAddress: string;
  consul: ConsulAddress;
}

/** Facts about the machine that the defaults depend on, passed in so parsing stays pure. */
export interface HostFacts {
  hostname: string;
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>;
}

/** A bad environment value; the message names the variable and what is allowed. */
export class ConfigError extends Error {}

const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
// The id goes into Consul API paths, so nothing that needs escaping there.
const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const HOSTNAME = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;

function parsePort(raw: string | undefined): number {
  if (raw === undefined || raw === '') return 8080;
  const port = /^\d{1,5}$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw new ConfigError(`PORT must be a whole number from 1 to 65535; got ${JSON.stringify(raw)}`);
  }
  return port;
}

function parseHost(raw: string | undefined): string {
  if (raw === undefined || raw === '') return '0.0.0.0';
  const host = raw.trim();
  if (net.isIP(host) === 0) {
    throw new ConfigError(`HOST must be an IPv4 or IPv6 address to bind, such as 0.0.0.0 or 127.0.0.1; got ${JSON.stringify(raw)}`);
  }
  return host;
}

function parseName(raw: string | undefined): string {
  const name = raw === undefined ? 'hello' : raw.trim();
  if (!NAME.test(name)) {
    throw new ConfigError(
      `SERVICE_NAME must be 1-63 letters, digits or '-', starting and ending with a letter or digit; got ${JSON.stringify(raw)}`,
    );
  }
  return name;
}

function parseId(raw: string | undefined, fallback: string): string {
  if (raw === undefined || raw === '') return fallback;
  const id = raw.trim();
  if (!ID.test(id)) {
    throw new ConfigError(
      `SERVICE_ID must be 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit; got ${JSON.stringify(raw)}`,
    );
  }
  return id;
}

/** The first non-internal IPv4 address: in a container, the address other containers reach it on. */
export function firstExternalIPv4(interfaces: HostFacts['interfaces']): string | undefined {
  for (const list of Object.values(interfaces)) {
    for (const info of list ?? []) if (info.family === 'IPv4' && !info.internal) return info.address;
  }
  return undefined;
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

function parseAddress(raw: string | undefined, host: string, facts: HostFacts): string {
  if (raw === undefined || raw === '') {
    // Bound to one address: that is the only one a health check can reach.
    if (!isWildcard(host)) return host;
    return firstExternalIPv4(facts.interfaces) ?? '127.0.0.1';
  }
  const address = raw.trim();
  if (net.isIP(address) === 0 && !HOSTNAME.test(address)) {
    throw new ConfigError(`SERVICE_ADDRESS must be an IP address or a host name Consul can reach; got ${JSON.stringify(raw)}`);
  }
  return address;
}

function parseConsul(raw: string | undefined): ConsulAddress {
  const text = raw === undefined || raw.trim() === '' ? 'http://127.0.0.1:8500' : raw.trim();
  const address = parseConsulAddress(text);
  if (!address) {
    throw new ConfigError(`CONSUL_HTTP_ADDR must be an http(s) URL or host:port of the Consul agent, such as http://127.0.0.1:8500; got ${JSON.stringify(raw)}`);
  }
  return address;
}

/** Reads the service's environment once, at start; throws ConfigError naming the first bad variable. */
export function parseConfig(env: NodeJS.ProcessEnv, facts: HostFacts): ServiceConfig {
  const port = parsePort(env.PORT);
  const host = parseHost(env.HOST);
  const serviceName = parseName(env.SERVICE_NAME);
  const hostname = facts.hostname.replace(/[^A-Za-z0-9.-]/g, '-') || 'host';
  const serviceId = parseId(env.SERVICE_ID, `${serviceName}-${hostname}-${port}`);
  const serviceAddress = parseAddress(env.SERVICE_ADDRESS, host, facts);
  const consul = parseConsul(env.CONSUL_HTTP_ADDR);
  return { port, host, serviceName, serviceId, serviceAddress, consul };
}
