// The stack's configuration: every key, its default and its rule live here, and nowhere else.
// Pulumi.yaml declares the same keys for the CLI (a test checks its defaults equal these).
import net from 'node:net';
import * as pulumi from '@pulumi/pulumi';
import { DEFAULT_SERVICE_NAME, isServiceName, SERVICE_NAME_ALLOWED } from '../lib/service-name';

/** Config namespace: the project name in Pulumi.yaml (the program reads the running project's). */
export const CONFIG_NAMESPACE = 'consul-nginx-pulumi';

export const MAX_REPLICAS = 20;

export interface StackConfig {
  replicas: number;
  balancerPort: number;
  /** Host port of the balancer's admin listener (status, X-Upstream-Addr), on bindAddress. */
  balancerAdminPort: number;
  consulUiPort: number;
  collectorPort: number;
  bindAddress: string;
  /** '' means the local Docker engine. */
  dockerHost: string;
  baseImage: string;
  consulImage: string;
  serviceName: string;
}

export type ConfigKey = keyof StackConfig;

export const DEFAULTS: StackConfig = {
  replicas: 1,
  balancerPort: 8080,
  balancerAdminPort: 8081,
  consulUiPort: 8500,
  collectorPort: 5514,
  bindAddress: '127.0.0.1',
  dockerHost: '',
  baseImage: 'node:20-bookworm-slim',
  consulImage: 'hashicorp/consul:1.20',
  serviceName: DEFAULT_SERVICE_NAME,
};

/** What each key accepts, in words; used in error messages and mirrored in the README table. */
export const ALLOWED: Record<ConfigKey, string> = {
  replicas: `a whole number from 1 to ${MAX_REPLICAS}`,
  balancerPort: 'a TCP port number from 1 to 65535',
  balancerAdminPort: 'a TCP port number from 1 to 65535',
  consulUiPort: 'a TCP port number from 1 to 65535',
  collectorPort: 'a TCP port number from 1 to 65535',
  bindAddress: 'an IPv4 or IPv6 address literal, such as 127.0.0.1 or ::1',
  dockerHost: 'empty (the local Docker engine) or ssh://user@host[:port]',
  baseImage: 'a Docker image reference, such as node:20-bookworm-slim',
  consulImage: 'a Docker image reference, such as hashicorp/consul:1.20',
  serviceName: SERVICE_NAME_ALLOWED,
};

const KEYS = Object.keys(DEFAULTS) as ConfigKey[];

function wholeNumber(raw: string, min: number, max: number): number | undefined {
  if (!/^[0-9]+$/.test(raw)) return undefined;
  const value = Number(raw);
  return value >= min && value <= max ? value : undefined;
}

// Docker's reference grammar, simplified: [registry[:port]/]path[:tag][@sha256:digest].
const IMAGE_REFERENCE =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;
const SSH_HOST = /^ssh:\/\/[A-Za-z0-9._-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?$/;

function parseValue(key: ConfigKey, raw: string): StackConfig[ConfigKey] | undefined {
  switch (key) {
    case 'replicas':
      return wholeNumber(raw, 1, MAX_REPLICAS);
    case 'balancerPort':
    case 'balancerAdminPort':
    case 'consulUiPort':
    case 'collectorPort':
      return wholeNumber(raw, 1, 65535);
    case 'bindAddress':
      return net.isIP(raw) ? raw : undefined;
    case 'dockerHost': {
      if (raw === '') return raw;
      const match = SSH_HOST.exec(raw);
      if (!match) return undefined;
      if (match[1] !== undefined && wholeNumber(match[1], 1, 65535) === undefined) return undefined;
      if (match[0].includes('[') && !net.isIPv6(raw.slice(raw.indexOf('[') + 1, raw.indexOf(']')))) return undefined;
      return raw;
    }
    case 'baseImage':
    case 'consulImage':
      return IMAGE_REFERENCE.test(raw) ? raw : undefined;
    case 'serviceName':
      return isServiceName(raw) ? raw : undefined;
  }
}

/**
 * Parses raw config values (as the CLI passes them: strings, keys without the namespace) into a
 * StackConfig. Every problem is collected into one Error naming key, value and what is allowed.
 */
export function parseConfig(raw: Readonly<Record<string, string | undefined>>, namespace: string = CONFIG_NAMESPACE): StackConfig {
  const problems: string[] = [];
  const parsed: Record<string, unknown> = { ...DEFAULTS };
  for (const key of Object.keys(raw)) {
    if (!(KEYS as string[]).includes(key)) {
      problems.push(`unknown config key ${namespace}:${key}; known keys: ${KEYS.join(', ')}`);
    }
  }
  for (const key of KEYS) {
    const value = raw[key];
    if (value === undefined) continue;
    const result = parseValue(key, value);
    if (result === undefined) {
      problems.push(`${namespace}:${key} = ${JSON.stringify(value)} is not allowed: use ${ALLOWED[key]}`);
    } else {
      parsed[key] = result;
    }
  }
  const config = parsed as unknown as StackConfig;
  if (problems.length === 0) {
    // The published ports share one bind address, so they must differ.
    const ports: ConfigKey[] = ['balancerPort', 'balancerAdminPort', 'consulUiPort', 'collectorPort'];
    for (let i = 0; i < ports.length; i++) {
      for (let j = i + 1; j < ports.length; j++) {
        if (config[ports[i]] === config[ports[j]]) {
          problems.push(
            `${namespace}:${ports[j]} = "${config[ports[j]]}" is not allowed: it equals ${ports[i]}; ` +
              'the balancer, balancer admin, Consul UI and collector ports are published on one address and must differ',
          );
        }
      }
    }
  }
  if (problems.length > 0) {
    throw new Error(`Invalid stack configuration: ${problems.join('; ')}`);
  }
  return config;
}

/** Reads this project's keys from the stack's config (set with `pulumi config set KEY VALUE`). */
export function loadConfig(): StackConfig {
  const namespace = pulumi.getProject();
  const prefix = `${namespace}:`;
  const raw: Record<string, string> = {};
  for (const [key, value] of Object.entries(pulumi.runtime.allConfig())) {
    if (key.startsWith(prefix)) raw[key.slice(prefix.length)] = value;
  }
  return parseConfig(raw, namespace);
}
