import { freePorts } from './ports';
import { startProcess, waitFor, type Managed } from './processes';

export interface ConsulAgent {
  /** Base URL of the agent's HTTP API, for CONSUL_HTTP_ADDR. */
  httpAddr: string;
  httpPort: number;
  /** Loopback port of the agent's DNS interface, when started with `{ dns: true }`. */
  dnsPort?: number;
  /** GET a path of the HTTP API and parse its JSON. */
  get<T = unknown>(path: string): Promise<T>;
  /** Names (ServiceID) of the instances of `service` that pass their checks. */
  passing(service: string): Promise<string[]>;
  /** Stops the agent (a dev agent forgets everything). */
  stop(): Promise<void>;
  /** Starts the agent again on the same ports, empty, as after an agent restart. */
  start(): Promise<void>;
  output(): string;
}

export interface ConsulOptions {
  /**
   * Open the DNS interface too (off by default: nothing else asks it). It answers only passing instances
   * (`only_passing`, as a DNS-based balancer needs) with TTL 0 and no agent cache (the 1.8 defaults, set
   * here so that the answer stays fresh whatever the defaults become).
   */
  dns?: boolean;
}

/** Starts a real `consul agent -dev` on free loopback ports and waits until it has a leader. */
export async function startConsul({ dns = false }: ConsulOptions = {}): Promise<ConsulAgent> {
  const [httpPort, serfLan, serfWan, server, dnsPort] = await freePorts(dns ? 5 : 4);
  const httpAddr = `http://127.0.0.1:${httpPort}`;
  let proc: Managed | undefined;
  let log = '';

  const get = async <T>(path: string): Promise<T> => {
    const res = await fetch(httpAddr + path, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`consul ${path}: HTTP ${res.status}`);
    return (await res.json()) as T;
  };

  const agent: ConsulAgent = {
    httpAddr,
    httpPort,
    ...(dns ? { dnsPort } : {}),
    get,
    async passing(service) {
      const entries = await get<Array<{ Service: { ID: string } }>>(`/v1/health/service/${service}?passing`);
      return entries.map((e) => e.Service.ID).sort();
    },
    async start() {
      proc = startProcess('consul', [
        'agent',
        '-dev',
        '-client',
        '127.0.0.1',
        '-bind',
        '127.0.0.1',
        '-http-port',
        String(httpPort),
        '-dns-port',
        dns ? String(dnsPort) : '-1',
        ...(dns ? ['-hcl', 'dns_config { only_passing = true, use_cache = false, service_ttl = { "*" = "0s" } }'] : []),
        '-grpc-port',
        '-1',
        '-serf-lan-port',
        String(serfLan),
        '-serf-wan-port',
        String(serfWan),
        '-server-port',
        String(server),
      ]);
      await waitFor('consul to elect a leader', async () => (await get<string>('/v1/status/leader')) !== '', 15_000, 100);
    },
    async stop() {
      if (!proc) return;
      log += proc.output();
      await proc.stop(5000);
      proc = undefined;
    },
    output: () => log + (proc?.output() ?? ''),
  };
  await agent.start();
  return agent;
}
