import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { activityRole, agentAclHcl, agentRole, aclPlan, balancerRole, replicaRole, roleToken, type AclRole } from '../lib/consul-acl';
import { applyAclPlan } from '../lib/consul-acl-apply';
import { consulLimitArgs } from '../lib/consul-limits';
import { freePorts } from './ports';
import { startProcess, waitFor, type Managed } from './processes';

/** The roles a test starts processes as; each gets the token the stack would give it. */
export type TestRole = 'replica' | 'balancer' | 'activity';

/** Where a replica or balancer finds Consul, and the token it gets for its role (as CONSUL_HTTP_TOKEN). */
export interface ConsulEndpoint {
  httpAddr: string;
  /**
   * Creates the role's policy and token if needed (a replica's for its `serviceName`; the balancer's reads
   * every service); undefined: start without a token.
   */
  roleToken(role: TestRole, serviceName?: string): Promise<string | undefined>;
}

/** An address where no Consul is: processes started against it get no token. */
export const noConsulAt = (httpAddr: string): ConsulEndpoint => ({ httpAddr, roleToken: () => Promise.resolve(undefined) });

export interface ConsulAgent extends ConsulEndpoint {
  /** Base URL of the agent's HTTP API, for CONSUL_HTTP_ADDR. */
  httpAddr: string;
  httpPort: number;
  /** The agent's node name. */
  nodeName: string;
  /** The initial management token from the agent's config (what the stack keeps as a Pulumi secret). */
  managementToken: string;
  roleToken(role: TestRole, serviceName?: string): Promise<string>;
  /** Sets the agent's default token (`PUT /v1/agent/token/default`): what its DNS interface answers with. */
  setDefaultToken(token: string): Promise<void>;
  /** Loopback port of the agent's DNS interface, when started with `{ dns: true }`. */
  dnsPort?: number;
  /** GET a path of the HTTP API with the management token and parse its JSON. */
  get<T = unknown>(path: string): Promise<T>;
  /** Names (ServiceID) of the instances of `service` that pass their checks. */
  passing(service: string): Promise<string[]>;
  /** Registers an instance through the agent API with the management token (as any holder of a write token could). */
  register(instance: AgentRegistration): Promise<void>;
  deregister(id: string): Promise<void>;
  /** Stops the agent (a dev agent forgets everything). */
  stop(): Promise<void>;
  /** Starts the agent again on the same ports, empty, as after an agent restart. */
  start(): Promise<void>;
  output(): string;
}

/** A registration of `/v1/agent/service/register`: an instance that points at a backend, with a TTL check. */
export interface AgentRegistration {
  ID: string;
  Name: string;
  Tags: string[];
  Address: string;
  Port: number;
  Check: { TTL: string; Status: 'passing' | 'critical' };
}

export interface ConsulOptions {
  /**
   * Open the DNS interface too (off by default: nothing else asks it). It answers only passing instances
   * (`only_passing`, as a DNS-based balancer needs) with TTL 0 and no agent cache (the 1.8 defaults, set
   * here so that the answer stays fresh whatever the defaults become).
   */
  dns?: boolean;
  /**
   * A CA the agent trusts for its HTTPS health checks (`ca_file` with `enable_agent_tls_for_checks`, as the
   * VMs' agents run): then Consul 1.8 verifies a checked replica's certificate for the agent's node name.
   */
  checkCaFile?: string;
  /** The agent's node name; by default one of its own, from its HTTP port. */
  nodeName?: string;
}

/**
 * Starts a real `consul agent -dev` on free loopback ports with ACLs on as the stack configures them
 * (default deny, the management token and the agent's token in its config, the agent's policy applied),
 * and waits until it has a leader. Role tokens are made on demand, through the same code as the stack's.
 */
export async function startConsul({ dns = false, checkCaFile, nodeName: givenNodeName }: ConsulOptions = {}): Promise<ConsulAgent> {
  const [httpPort, serfLan, serfWan, server, dnsPort] = await freePorts(dns ? 5 : 4);
  const httpAddr = `http://127.0.0.1:${httpPort}`;
  const managementToken = crypto.randomUUID();
  const nodeName = givenNodeName ?? `test-consul-${httpPort}`;
  const agent_ = agentRole(nodeName);
  // The 1.8 agent on this machine; the key of the management token follows the version.
  const aclHcl = agentAclHcl({ management: managementToken, agent: roleToken(managementToken, agent_.role) }, { major: 1, minor: 8 });
  // Every role asked for, and those applied to the running agent: a restarted dev agent has forgotten
  // them (a real server keeps them in its data), so start() applies them again.
  const roles = new Map<string, AclRole>([[agent_.role, agent_]]);
  let applied = new Map<string, Promise<void>>();
  let proc: Managed | undefined;
  let workDir: string | undefined;
  let log = '';

  const apply = (role: AclRole): Promise<void> => {
    roles.set(role.role, role);
    let done = applied.get(role.role);
    if (!done) {
      done = applyAclPlan(httpAddr, managementToken, aclPlan(managementToken, [role]), { readyTimeoutMs: 15_000 });
      applied.set(role.role, done);
      done.catch(() => applied.delete(role.role));
    }
    return done;
  };

  const get = async <T>(path: string): Promise<T> => {
    const res = await fetch(httpAddr + path, { headers: { 'X-Consul-Token': managementToken }, signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`consul ${path}: HTTP ${res.status}`);
    return (await res.json()) as T;
  };

  const put = async (path: string, body?: string): Promise<void> => {
    const res = await fetch(httpAddr + path, {
      method: 'PUT',
      headers: { 'X-Consul-Token': managementToken },
      body,
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) throw new Error(`consul ${path}: HTTP ${res.status} ${await res.text()}`);
  };

  const agent: ConsulAgent = {
    httpAddr,
    httpPort,
    nodeName,
    managementToken,
    async roleToken(role, serviceName) {
      if (role === 'replica' && serviceName === undefined) throw new Error("roleToken('replica') needs the replica's service name");
      const r = role === 'replica' ? replicaRole(serviceName!) : role === 'activity' ? activityRole(serviceName) : balancerRole();
      // The token is known before Consul holds it (derived, as in the stack); a stopped agent gets it at start().
      if (proc) await apply(r);
      else roles.set(r.role, r);
      return roleToken(managementToken, r.role);
    },
    async setDefaultToken(token) {
      const res = await fetch(`${httpAddr}/v1/agent/token/default`, {
        method: 'PUT',
        headers: { 'X-Consul-Token': managementToken },
        body: JSON.stringify({ Token: token }),
        signal: AbortSignal.timeout(5000),
      });
      if (!res.ok) throw new Error(`consul /v1/agent/token/default: HTTP ${res.status}: ${await res.text()}`);
    },
    ...(dns ? { dnsPort } : {}),
    get,
    async passing(service) {
      const entries = await get<Array<{ Service: { ID: string } }>>(`/v1/health/service/${service}?passing`);
      return entries.map((e) => e.Service.ID).sort();
    },
    async register(instance) {
      await put('/v1/agent/service/register', JSON.stringify(instance));
    },
    async deregister(id) {
      await put(`/v1/agent/service/deregister/${encodeURIComponent(id)}`);
    },
    async start() {
      // A dev agent keeps no data dir, but with token persistence on (the stack's ACL settings) it writes
      // acl-tokens.json into its working directory: one of its own, removed at stop, so nothing lands in the
      // repo and a restarted agent starts empty.
      workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-consul-'));
      proc = startProcess(
        'consul',
        [
          'agent',
          '-dev',
          '-node',
          nodeName,
          '-hcl',
          aclHcl,
          '-client',
          '127.0.0.1',
          '-bind',
          '127.0.0.1',
          '-http-port',
          String(httpPort),
          '-dns-port',
          dns ? String(dnsPort) : '-1',
          ...(dns ? ['-hcl', 'dns_config { only_passing = true, use_cache = false, service_ttl = { "*" = "0s" } }'] : []),
          ...(checkCaFile ? ['-hcl', `ca_file = "${checkCaFile}" enable_agent_tls_for_checks = true`] : []),
          '-grpc-port',
          '-1',
          '-serf-lan-port',
          String(serfLan),
          '-serf-wan-port',
          String(serfWan),
          '-server-port',
          String(server),
          // The stack's own limits (infra/consul-agent.ts), so tests and the bench meet the Consul users get.
          ...consulLimitArgs(),
        ],
        {},
        { cwd: workDir },
      );
      await waitFor('consul to elect a leader', async () => (await get<string>('/v1/status/leader')) !== '', 15_000, 100);
      applied = new Map();
      await Promise.all([...roles.values()].map(apply));
    },
    async stop() {
      if (!proc) return;
      log += proc.output();
      await proc.stop(5000);
      proc = undefined;
      if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
      workDir = undefined;
    },
    output: () => log + (proc?.output() ?? ''),
  };
  await agent.start();
  return agent;
}
