// The stack's configuration: every key, its default and its rule live here, and nowhere else.
// Pulumi.yaml declares the same keys for the CLI (a test checks its defaults equal these).
import { DEFAULT_RATE_LIMIT_PER_CLIENT } from '../lib/client-limits';
import net from 'node:net';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import * as pulumi from '@pulumi/pulumi';
import { ACTIVITY_SERVICE_NAME, BROKER_SERVICE_NAME, DEFAULT_SERVICE_NAME, isServiceName, SERVICE_NAME_ALLOWED } from '../lib/service-name';
import { ACTIVITY_PORTS, BROKER_PORTS, CONSUL_CLUSTER_PORTS, MAX_REPLICAS, REPLICA_PORTS, portRangeText } from './vm-ports';
import { DURABLE_INACTIVE_SECONDS, USER_EVENTS_REPLICAS } from '../lib/broker';
import { OUTBOX_MAX_ENTRIES } from '../lib/outbox-bound';

export { MAX_REPLICAS };

/** Config namespace: the project name in Pulumi.yaml (the program reads the running project's). */
export const CONFIG_NAMESPACE = 'consul-nginx-pulumi';

/** Requests per second per client at the gateway; 0 turns the limit off. */
export const MAX_GATEWAY_RATE_LIMIT = 100000;

/** What a VM may run; a VM has one or more. `replicas` runs the hello replicas, `activity` the activity replicas. */
export const VM_ROLES = ['discovery', 'balancer', 'collector', 'replicas', 'broker', 'activity'] as const;
export type VmRole = (typeof VM_ROLES)[number];

/** One VM of the `vms` list, parsed (defaults applied). */
export interface VmConfig {
  /** A DNS label: it names the VM's resources and its Consul node. */
  name: string;
  /** How Pulumi (the docker provider's local ssh, and the bootstrap command) reaches the VM. */
  ssh: { host: string; port: number; user: string };
  /** What the other VMs use to reach this one: Consul binds and advertises it, replicas and the collector publish on it. */
  privateAddress: string;
  /** Where the balancer's port is published; defaults to privateAddress. */
  publicAddress: string;
  roles: VmRole[];
}

export interface StackConfig {
  replicas: number;
  /** Replicas of the activity service, counted apart from `replicas`. */
  activityReplicas: number;
  activityDurableInactiveSeconds: number;
  /** The gateway's per-client rate limit in requests per second (0 = off), the balancer's RATE_LIMIT_PER_CLIENT. */
  gatewayRateLimit: number;
  /** Host port of the balancer's public listener: plain HTTP, or with publicTls the redirect to HTTPS (publicHttp). */
  balancerPort: number;
  /** Host port of the balancer's HTTPS listener, published always (turning publicTls on then replaces no port holder). */
  balancerHttpsPort: number;
  /** HTTPS at the edge: `on` serves the public routes on balancerHttpsPort with publicTlsCertificate or a certificate the stack makes. */
  publicTls: 'off' | 'on';
  /** With publicTls on: what balancerPort does, `redirect` (a 308 to HTTPS) or `off` (nothing listens). */
  publicHttp: 'redirect' | 'off';
  /** With publicTls on: the certificate (chain) to serve, PEM; '' means one the stack makes, signed by a CA of its own. */
  publicTlsCertificate: string;
  /** The private key of publicTlsCertificate, PEM, a Pulumi secret. */
  publicTlsKey: string;
  /** Host port of the balancer's admin listener (status, X-Upstream-Addr), on bindAddress. */
  balancerAdminPort: number;
  consulUiPort: number;
  collectorPort: number;
  bindAddress: string;
  /** '' means the local Docker engine. */
  dockerHost: string;
  baseImage: string;
  consulImage: string;
  /** Base of the broker's image (broker/Dockerfile): a nats-server 2.9 image. */
  natsImage: string;
  serviceName: string;
  /** Subnet of the stack's bridge network on each VM; its gateway is where local containers reach the VM's Consul agent. */
  vmNetworkSubnet: string;
  /** The most events a hello replica's outbox holds unpublished (its OUTBOX_MAX_ENTRIES). */
  outboxMaxEntries: number;
  /** Empty: everything on one engine (dockerHost's, or the local one). */
  vms: VmConfig[];
  /** A Pulumi secret; '' means the user's ssh-agent (SSH_AUTH_SOCK). Wrap it with pulumi.secret where used. */
  sshPrivateKey: string;
  /** A Pulumi secret; '' means a key generated once by the stack (infra/gossip-key.ts). */
  consulGossipKey: string;
}

export type ConfigKey = keyof StackConfig;

export const DEFAULTS: StackConfig = {
  replicas: 1,
  activityReplicas: 1,
  activityDurableInactiveSeconds: DURABLE_INACTIVE_SECONDS.default,
  // The balancer's own default (balancer/config.ts says why). On one host every client reaches the gateway
  // from docker-proxy's one address, so there it bounds everyone together; the steady loops stay under it.
  gatewayRateLimit: DEFAULT_RATE_LIMIT_PER_CLIENT,
  balancerPort: 8080,
  balancerHttpsPort: 8443,
  publicTls: 'off',
  publicHttp: 'redirect',
  publicTlsCertificate: '',
  publicTlsKey: '',
  balancerAdminPort: 8081,
  consulUiPort: 8500,
  collectorPort: 5514,
  bindAddress: '127.0.0.1',
  dockerHost: '',
  baseImage: 'node:20-bookworm-slim',
  consulImage: 'hashicorp/consul:1.20',
  natsImage: 'nats:2.9-alpine',
  serviceName: DEFAULT_SERVICE_NAME,
  vmNetworkSubnet: '10.213.0.0/24',
  outboxMaxEntries: OUTBOX_MAX_ENTRIES.default,
  vms: [],
  sshPrivateKey: '',
  consulGossipKey: '',
};

/**
 * Keys Pulumi.yaml does not declare: project config cannot type a list of objects (`vms`); a declared key
 * needs a default there (the CLI requires the others), which a secret cannot have in a committed file; and
 * the CLI hands the program every declared default the stack does not set (pulumi/pulumi
 * sdk/go/common/workspace/config.go, mergeConfig), so a declared `bindAddress` would always arrive, and its
 * refusal together with `vms` would refuse every VM stack.
 */
export const UNDECLARED_KEYS: readonly ConfigKey[] = [
  'vms',
  'sshPrivateKey',
  'consulGossipKey',
  'publicTlsCertificate',
  'publicTlsKey',
  'bindAddress',
];

/** Keys whose value must be a Pulumi secret; their values never appear in an error. */
export const SECRET_KEYS: readonly ConfigKey[] = ['sshPrivateKey', 'consulGossipKey', 'publicTlsKey'];

/** What each key accepts, in words; used in error messages and mirrored in the README table. */
export const ALLOWED: Record<ConfigKey, string> = {
  replicas: `a whole number from 1 to ${MAX_REPLICAS}`,
  activityReplicas: `a whole number from 1 to ${MAX_REPLICAS}`,
  activityDurableInactiveSeconds: `a whole number of seconds from 1 to ${DURABLE_INACTIVE_SECONDS.max} (the stream's 7 days)`,
  gatewayRateLimit: `a whole number of requests per second per client from 0 (no limit) to ${MAX_GATEWAY_RATE_LIMIT}`,
  balancerPort: 'a TCP port number from 1 to 65535',
  balancerHttpsPort: 'a TCP port number from 1 to 65535',
  publicTls: 'off or on',
  publicHttp: 'redirect or off (with publicTls on)',
  publicTlsCertificate:
    'a PEM certificate for the public address, its chain after it, valid now (with publicTls on, and publicTlsKey): pulumi config set publicTlsCertificate < CERTFILE',
  publicTlsKey: "the certificate's private key, PEM, unencrypted, set as a secret: pulumi config set --secret publicTlsKey < KEYFILE",
  balancerAdminPort: 'a TCP port number from 1 to 65535',
  consulUiPort: 'a TCP port number from 1 to 65535',
  collectorPort: 'a TCP port number from 1 to 65535',
  bindAddress: 'an IPv4 or IPv6 address literal, such as 127.0.0.1 or ::1',
  dockerHost: 'empty (the local Docker engine) or ssh://user@host[:port]',
  baseImage: 'a Docker image reference, such as node:20-bookworm-slim',
  consulImage: 'a Docker image reference, such as hashicorp/consul:1.20',
  natsImage: 'a Docker image reference of a nats-server 2.9 image with a shell, such as nats:2.9-alpine',
  serviceName: SERVICE_NAME_ALLOWED,
  vmNetworkSubnet: 'an IPv4 subnet in CIDR notation, such as 10.213.0.0/24 (prefix /8 to /29), holding no VM privateAddress',
  outboxMaxEntries: `a whole number of events from 1 to ${OUTBOX_MAX_ENTRIES.max}`,
  vms:
    'a list of VMs set with `pulumi config set --path`, each {name, ssh: {host, port, user}, privateAddress, publicAddress?, roles} ' +
    '(see infra/README.md, Deploy on VMs)',
  sshPrivateKey: 'a private key in PEM or OpenSSH format, set as a secret: pulumi config set --secret sshPrivateKey < KEYFILE',
  consulGossipKey: 'the base64 form of 32 random bytes (consul keygen), set as a secret: pulumi config set --secret consulGossipKey KEY',
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
    case 'activityReplicas':
      return wholeNumber(raw, 1, MAX_REPLICAS);
    case 'gatewayRateLimit':
      return wholeNumber(raw, 0, MAX_GATEWAY_RATE_LIMIT);
    case 'activityDurableInactiveSeconds':
      return wholeNumber(raw, 1, DURABLE_INACTIVE_SECONDS.max);
    case 'publicTls':
      return raw === 'off' || raw === 'on' ? raw : undefined;
    case 'publicHttp':
      return raw === 'redirect' || raw === 'off' ? raw : undefined;
    case 'publicTlsCertificate':
      return certificateProblem(raw) === undefined ? raw : undefined;
    case 'publicTlsKey':
      return privateKeyOf(raw) ? raw : undefined;
    case 'outboxMaxEntries':
      return wholeNumber(raw, 1, OUTBOX_MAX_ENTRIES.max);
    case 'balancerPort':
    case 'balancerHttpsPort':
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
    case 'natsImage':
      return IMAGE_REFERENCE.test(raw) ? raw : undefined;
    case 'serviceName':
      return isServiceName(raw) ? raw : undefined;
    case 'vmNetworkSubnet':
      return parseSubnet(raw) ? raw : undefined;
    case 'sshPrivateKey':
      return PRIVATE_KEY.test(raw.trim()) ? raw : undefined;
    case 'consulGossipKey':
      return Buffer.from(raw, 'base64').length === 32 && Buffer.from(raw, 'base64').toString('base64') === raw ? raw : undefined;
    case 'vms':
      // Parsed by parseVms, which names the element and field at fault.
      return undefined;
  }
}

/** Why a PEM certificate is refused (not PEM, no certificate, not valid now), or undefined. */
function certificateProblem(raw: string): string | undefined {
  const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(raw)?.[0];
  if (!first) return 'holds no PEM certificate';
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(first);
  } catch {
    return 'is not a readable certificate';
  }
  const now = Date.now();
  if (Date.parse(cert.validTo) <= now || Date.parse(cert.validFrom) > now) return `is not valid now (${cert.validFrom} to ${cert.validTo})`;
  return undefined;
}

function privateKeyOf(raw: string): KeyObject | undefined {
  try {
    return createPrivateKey(raw);
  } catch {
    return undefined;
  }
}

const PRIVATE_KEY = /^-----BEGIN (?:[A-Z0-9]+ )?PRIVATE KEY-----\n[\s\S]+\n-----END (?:[A-Z0-9]+ )?PRIVATE KEY-----$/;

/** An IPv4 network in CIDR notation, the network address itself (no host bits set). */
export function parseSubnet(raw: string): { network: number; prefix: number } | undefined {
  const match = /^([0-9.]+)\/([0-9]{1,2})$/.exec(raw);
  if (!match || !net.isIPv4(match[1])) return undefined;
  const prefix = Number(match[2]);
  if (prefix < 8 || prefix > 29) return undefined;
  const network = ipv4ToNumber(match[1]);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return (network & mask) >>> 0 === network ? { network, prefix } : undefined;
}

function ipv4ToNumber(address: string): number {
  return address.split('.').reduce((acc, part) => ((acc << 8) | Number(part)) >>> 0, 0);
}

/** The first host address of a subnet: the gateway Docker gives a bridge network with that subnet. */
export function subnetGateway(subnet: string): string {
  const parsed = parseSubnet(subnet);
  if (!parsed) throw new Error(`subnet ${JSON.stringify(subnet)} is not allowed: use ${ALLOWED.vmNetworkSubnet}`);
  const gateway = parsed.network + 1;
  return [24, 16, 8, 0].map((shift) => (gateway >>> shift) & 0xff).join('.');
}

function subnetContains(subnet: string, address: string): boolean {
  const parsed = parseSubnet(subnet);
  if (!parsed || !net.isIPv4(address)) return false;
  const mask = (0xffffffff << (32 - parsed.prefix)) >>> 0;
  return (ipv4ToNumber(address) & mask) >>> 0 === parsed.network;
}

const VM_NAME = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;
const VM_NAME_ALLOWED = 'lowercase letters, digits and inner hyphens, at most 32 characters (a DNS label)';
const SSH_HOSTNAME = /^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/;
const SSH_USER = /^[A-Za-z0-9._][A-Za-z0-9._-]*$/;

/** How many discovery VMs Consul can run with: bootstrap-expect is their count, and a quorum needs 1 or 3 here. */
const DISCOVERY_COUNTS = [1, 3];

/**
 * The `vms` value (a JSON list, as the CLI passes structured config) parsed into VmConfigs; every problem is
 * pushed with the path of the element and field at fault.
 */
function parseVms(raw: string, namespace: string, problems: string[]): VmConfig[] {
  const key = `${namespace}:vms`;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    problems.push(`${key} = ${JSON.stringify(raw)} is not allowed: use ${ALLOWED.vms}`);
    return [];
  }
  if (!Array.isArray(value) || value.length === 0) {
    problems.push(`${key} = ${raw} is not allowed: use ${ALLOWED.vms}; leave vms unset to deploy on one engine`);
    return [];
  }
  const bad = (path: string, got: unknown, allowed: string) =>
    problems.push(`${key}${path} = ${JSON.stringify(got)} is not allowed: use ${allowed}`);
  const vms: VmConfig[] = [];
  value.forEach((item: unknown, index) => {
    const at = `[${index}]`;
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      bad(at, item, 'an object {name, ssh, privateAddress, publicAddress?, roles}');
      return;
    }
    const vm = item as Record<string, unknown>;
    const before = problems.length;
    for (const field of Object.keys(vm)) {
      if (!['name', 'ssh', 'privateAddress', 'publicAddress', 'roles'].includes(field))
        bad(`${at}.${field}`, vm[field], 'only the fields name, ssh, privateAddress, publicAddress, roles');
    }
    if (typeof vm.name !== 'string' || !VM_NAME.test(vm.name)) bad(`${at}.name`, vm.name, VM_NAME_ALLOWED);
    const ssh = (vm.ssh ?? undefined) as Record<string, unknown> | undefined;
    let port = 22;
    if (ssh === undefined || ssh === null || typeof ssh !== 'object' || Array.isArray(ssh)) {
      bad(`${at}.ssh`, vm.ssh, 'an object {host, port?, user}');
    } else {
      for (const field of Object.keys(ssh)) {
        if (!['host', 'port', 'user'].includes(field)) bad(`${at}.ssh.${field}`, ssh[field], 'only the fields host, port, user');
      }
      const host = ssh.host;
      if (typeof host !== 'string' || !(net.isIP(host) || SSH_HOSTNAME.test(host)))
        bad(`${at}.ssh.host`, host, 'a host name or an IP address literal that Pulumi can reach over SSH');
      if (ssh.port !== undefined) {
        const text = typeof ssh.port === 'number' || typeof ssh.port === 'string' ? String(ssh.port) : '';
        const parsedPort = wholeNumber(text, 1, 65535);
        if (parsedPort === undefined) bad(`${at}.ssh.port`, ssh.port, 'a TCP port number from 1 to 65535 (default 22)');
        else port = parsedPort;
      }
      if (typeof ssh.user !== 'string' || !SSH_USER.test(ssh.user))
        bad(`${at}.ssh.user`, ssh.user, 'a user name on the VM that may use Docker (or root)');
    }
    if (typeof vm.privateAddress !== 'string' || !net.isIP(vm.privateAddress))
      bad(`${at}.privateAddress`, vm.privateAddress, 'an IPv4 or IPv6 address literal the other VMs reach this one at');
    if (vm.publicAddress !== undefined && (typeof vm.publicAddress !== 'string' || !net.isIP(vm.publicAddress)))
      bad(`${at}.publicAddress`, vm.publicAddress, 'an IPv4 or IPv6 address literal of this VM (default: privateAddress)');
    const roles = vm.roles;
    if (!Array.isArray(roles) || roles.length === 0) {
      bad(`${at}.roles`, roles, `a non-empty list of ${VM_ROLES.join(', ')}`);
    } else {
      roles.forEach((role: unknown, r) => {
        if (!(VM_ROLES as readonly unknown[]).includes(role)) bad(`${at}.roles[${r}]`, role, `one of ${VM_ROLES.join(', ')}`);
        else if (roles.indexOf(role) !== r) bad(`${at}.roles[${r}]`, role, 'each role once');
      });
    }
    if (problems.length > before) return;
    const s = ssh as { host: string; user: string };
    vms.push({
      name: vm.name as string,
      ssh: { host: s.host, port, user: s.user },
      privateAddress: vm.privateAddress as string,
      publicAddress: (vm.publicAddress as string | undefined) ?? (vm.privateAddress as string),
      roles: roles as VmRole[],
    });
  });
  if (problems.length > 0) return vms;

  const duplicates = (field: 'name' | 'privateAddress') => {
    const seen = new Map<string, number>();
    vms.forEach((vm, index) => {
      const first = seen.get(vm[field]);
      if (first !== undefined) bad(`[${index}].${field}`, vm[field], `a ${field} no other VM has (vms[${first}] has it already)`);
      else seen.set(vm[field], index);
    });
  };
  duplicates('name');
  duplicates('privateAddress');
  const withRole = (role: VmRole) => vms.filter((vm) => vm.roles.includes(role));
  const discovery = withRole('discovery').length;
  if (!DISCOVERY_COUNTS.includes(discovery)) {
    problems.push(
      `${key} is not allowed: ${discovery} VMs have the role discovery; use 1 or 3: they run the Consul servers, ` +
        'started with -bootstrap-expect equal to their count, and a quorum of 2 out of 3 survives one loss (2 would survive none)',
    );
  }
  for (const role of ['balancer', 'collector'] as const) {
    const count = withRole(role).length;
    if (count !== 1) {
      problems.push(
        `${key} is not allowed: ${count} VMs have the role ${role}; use exactly one ` +
          (role === 'balancer'
            ? '(one published entry point; several would need a load balancer in front, which the stack does not declare)'
            : '(every container ships its logs to one collector, which keeps one combined log)'),
      );
    }
  }
  const broker = withRole('broker').length;
  if (!(USER_EVENTS_REPLICAS.allowed as readonly number[]).includes(broker)) {
    problems.push(
      `${key} is not allowed: ${broker} VMs have the role broker; use 1 or 3: one NATS server, or three forming one ` +
        'JetStream cluster that keeps the event stream on each and acks once two have an event (2 would stop at the loss of either)',
    );
  }
  for (const role of ['replicas', 'activity'] as const) {
    if (withRole(role).length === 0)
      problems.push(`${key} is not allowed: no VM has the role ${role}; give it to at least one (it may share a VM with other roles)`);
  }
  return vms;
}

/**
 * Parses raw config values (as the CLI passes them: strings, keys without the namespace; structured values
 * as JSON) into a StackConfig. `secretKeys` names the keys the stack holds as secrets. Every problem is
 * collected into one Error naming key, value (never a secret's) and what is allowed.
 */
export function parseConfig(
  raw: Readonly<Record<string, string | undefined>>,
  namespace: string = CONFIG_NAMESPACE,
  secretKeys: readonly string[] = [],
): StackConfig {
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
    if (SECRET_KEYS.includes(key)) {
      if (!secretKeys.includes(key)) {
        problems.push(
          `${namespace}:${key} is set as plain text, which is not allowed: it would sit unencrypted in the stack file; ` +
            `remove it (pulumi config rm ${key}) and use ${ALLOWED[key]}`,
        );
      } else if (parseValue(key, value) === undefined) {
        problems.push(`${namespace}:${key} (a secret, value not shown) is not allowed: use ${ALLOWED[key]}`);
      } else {
        parsed[key] = value;
      }
      continue;
    }
    if (key === 'vms') {
      parsed.vms = parseVms(value, namespace, problems);
      continue;
    }
    const certProblem = key === 'publicTlsCertificate' ? certificateProblem(value) : undefined;
    if (certProblem) {
      problems.push(`${namespace}:publicTlsCertificate ${certProblem}, which is not allowed: use ${ALLOWED.publicTlsCertificate}`);
      continue;
    }
    const result = parseValue(key, value);
    if (result === undefined) {
      problems.push(`${namespace}:${key} = ${JSON.stringify(value)} is not allowed: use ${ALLOWED[key]}`);
    } else {
      parsed[key] = result;
    }
  }
  const config = parsed as unknown as StackConfig;
  if (problems.length === 0) {
    // The published ports share one host (the collector's on its loopback), so they must differ.
    const ports = ['balancerPort', 'balancerHttpsPort', 'balancerAdminPort', 'consulUiPort', 'collectorPort'] as const;
    for (let i = 0; i < ports.length; i++) {
      for (let j = i + 1; j < ports.length; j++) {
        if (config[ports[i]] === config[ports[j]]) {
          problems.push(
            `${namespace}:${ports[j]} = "${config[ports[j]]}" is not allowed: it equals ${ports[i]}; ` +
              'the balancer, balancer HTTPS, balancer admin, Consul UI and collector ports are published on one host and must differ',
          );
        }
      }
    }
    problems.push(...publicTlsRules(config, raw, namespace));
    // The stack registers these two itself: a second service of either name would share their instances and routes.
    if ([ACTIVITY_SERVICE_NAME, BROKER_SERVICE_NAME].includes(config.serviceName)) {
      problems.push(
        `${namespace}:serviceName = ${JSON.stringify(config.serviceName)} is not allowed: ${ACTIVITY_SERVICE_NAME} and ` +
          `${BROKER_SERVICE_NAME} are the names of the stack's activity service and broker; use another name`,
      );
    }
    if (config.vms.length > 0) problems.push(...vmRules(config, raw, namespace));
  }
  if (problems.length > 0) {
    throw new Error(`Invalid stack configuration: ${problems.join('; ')}`);
  }
  return config;
}

/** HTTPS at the edge: its keys only with publicTls on, the certificate and key given together and matching. */
function publicTlsRules(config: StackConfig, raw: Readonly<Record<string, string | undefined>>, namespace: string): string[] {
  // Not publicHttp: Pulumi.yaml declares it, so the CLI always passes its default.
  const given = (['publicTlsCertificate', 'publicTlsKey'] as const).filter((key) => raw[key] !== undefined);
  if (config.publicTls === 'off') {
    return given.map(
      (key) =>
        `${namespace}:${key} is not allowed with publicTls off: it is the certificate HTTPS serves; set publicTls on, or unset ${key}`,
    );
  }
  const cert = config.publicTlsCertificate;
  const key = config.publicTlsKey;
  if ((cert === '') !== (key === '')) {
    const [set, missing] = cert === '' ? ['publicTlsKey', 'publicTlsCertificate'] : ['publicTlsCertificate', 'publicTlsKey'];
    return [
      `${namespace}:${set} is set without ${missing}, which is not allowed: give both (${ALLOWED[missing as ConfigKey]}), ` +
        'or neither for a certificate the stack makes',
    ];
  }
  if (cert !== '' && !new X509Certificate(cert).checkPrivateKey(privateKeyOf(key)!)) {
    return [`${namespace}:publicTlsKey (a secret, value not shown) is not allowed: it is not the private key of publicTlsCertificate`];
  }
  return [];
}

/** Rules that hold only when the stack runs on VMs. */
function vmRules(config: StackConfig, raw: Readonly<Record<string, string | undefined>>, namespace: string): string[] {
  const problems: string[] = [];
  // One way to say where containers run: the VMs' ssh settings, not a single engine.
  if (config.dockerHost !== '') {
    problems.push(
      `${namespace}:dockerHost = ${JSON.stringify(config.dockerHost)} is not allowed together with vms: ` +
        "each VM's engine is reached through its own ssh settings; unset dockerHost (pulumi config rm dockerHost)",
    );
  }
  if (raw.bindAddress !== undefined) {
    problems.push(
      `${namespace}:bindAddress = ${JSON.stringify(raw.bindAddress)} is not allowed together with vms: ` +
        "on VMs the balancer is published on its VM's publicAddress and everything else on privateAddress; unset bindAddress",
    );
  }
  const taken = new Map<number, string>([
    ...CONSUL_CLUSTER_PORTS.map((p) => [p, "Consul's agent-to-agent ports 8300-8302"] as [number, string]),
    ...REPLICA_PORTS.map((p) => [p, `the replicas' ports ${portRangeText(REPLICA_PORTS)}`] as [number, string]),
    ...ACTIVITY_PORTS.map((p) => [p, `the activity replicas' ports ${portRangeText(ACTIVITY_PORTS)}`] as [number, string]),
    ...BROKER_PORTS.map((p) => [p, `the broker's ports ${BROKER_PORTS.join(' and ')}`] as [number, string]),
  ]);
  for (const key of ['balancerPort', 'balancerHttpsPort', 'balancerAdminPort', 'consulUiPort', 'collectorPort'] as const) {
    const clash = taken.get(config[key]);
    if (clash) problems.push(`${namespace}:${key} = "${config[key]}" is not allowed with vms: it is one of ${clash}; use another port`);
  }
  for (const [index, vm] of config.vms.entries()) {
    if (subnetContains(config.vmNetworkSubnet, vm.privateAddress)) {
      problems.push(
        `${namespace}:vmNetworkSubnet = ${JSON.stringify(config.vmNetworkSubnet)} is not allowed: it holds vms[${index}].privateAddress ` +
          `${vm.privateAddress}; the stack's bridge network on each VM must not overlap the VMs' private network`,
      );
    }
  }
  return problems;
}

// Internal to the SDK (not in its typings): whether the language host marked a key as secret
// (PULUMI_CONFIG_SECRET_KEYS, which setAllConfig's second argument sets under the mocks).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runtimeConfig = require('@pulumi/pulumi/runtime/config') as { isConfigSecret(fullKey: string): boolean };

/** Reads this project's keys from the stack's config (set with `pulumi config set KEY VALUE`). */
export function loadConfig(): StackConfig {
  const namespace = pulumi.getProject();
  const prefix = `${namespace}:`;
  const raw: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const [key, value] of Object.entries(pulumi.runtime.allConfig())) {
    if (!key.startsWith(prefix)) continue;
    raw[key.slice(prefix.length)] = value;
    if (runtimeConfig.isConfigSecret(key)) secretKeys.push(key.slice(prefix.length));
  }
  return parseConfig(raw, namespace, secretKeys);
}
