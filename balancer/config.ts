import net from 'node:net';
import { parseConsulAddress, type ConsulAddress } from '../lib/consul-address';

/** Everything the balancer reads from its environment, parsed and checked once at start. */
export interface BalancerConfig {
  /** Consul's HTTP API, e.g. http://127.0.0.1:8500. */
  consul: ConsulAddress;
  serviceName: string;
  listenAddress: string;
  listenPort: number;
  nginxBin: string;
  /** nginx prefix for its conf, pid and temp files; undefined means "make a fresh temp dir". */
  workDir: string | undefined;
  /** How long an empty set is ignored right after a Consul outage or index reset. */
  emptyGraceMs: number;
  /** Test-only: while this file exists, every render gets a syntax error appended. */
  testBreakRenderFile: string | undefined;
}

export class ConfigError extends Error {}

const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

function fail(variable: string, value: string, allowed: string): never {
  throw new ConfigError(`${variable}=${JSON.stringify(value)} is not valid: ${allowed}`);
}

function integer(env: NodeJS.ProcessEnv, variable: string, fallback: number, min: number, max: number): number {
  const raw = env[variable];
  if (raw === undefined || raw.trim() === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) fail(variable, raw, `expected a whole number from ${min} to ${max}`);
  const value = Number(raw.trim());
  if (value < min || value > max) fail(variable, raw, `expected a whole number from ${min} to ${max}`);
  return value;
}

function consulAddress(raw: string): ConsulAddress {
  return parseConsulAddress(raw) ?? fail('CONSUL_HTTP_ADDR', raw, 'expected http://host:port or https://host:port (or host:port)');
}

/** Parses the balancer's environment; throws ConfigError naming the variable and what is allowed. */
export function parseConfig(env: NodeJS.ProcessEnv): BalancerConfig {
  const serviceName = env.SERVICE_NAME?.trim() || 'hello';
  if (!SERVICE_NAME.test(serviceName)) {
    fail('SERVICE_NAME', serviceName, 'expected 1-63 letters, digits, "-", "_" or ".", starting with a letter or digit');
  }

  const listenAddress = env.LISTEN_ADDRESS?.trim() || '127.0.0.1';
  if (net.isIP(listenAddress) === 0) fail('LISTEN_ADDRESS', listenAddress, 'expected an IPv4 or IPv6 address literal');

  const nginxBin = env.NGINX_BIN?.trim() || 'nginx';
  const workDir = env.WORK_DIR?.trim() || undefined;
  if (workDir !== undefined && !workDir.startsWith('/')) fail('WORK_DIR', workDir, 'expected an absolute path');

  const testBreakRenderFile = env.BALANCER_TEST_BREAK_RENDER_FILE?.trim() || undefined;

  return {
    consul: consulAddress(env.CONSUL_HTTP_ADDR?.trim() || 'http://127.0.0.1:8500'),
    serviceName,
    listenAddress,
    listenPort: integer(env, 'LISTEN_PORT', 8080, 1, 65535),
    nginxBin,
    workDir,
    emptyGraceMs: integer(env, 'EMPTY_GRACE_MS', 10_000, 0, 600_000),
    testBreakRenderFile,
  };
}
