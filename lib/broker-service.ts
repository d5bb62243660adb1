// The broker's registration in Consul: nats-server cannot register itself, so the Pulumi program does it
// (infra/register-broker.ts, run by the step infra/broker.ts declares) on the agent of the broker's host,
// with an HTTP check on the server's monitoring /healthz. Services find it as `nats` (NATS_SERVICE) among
// the passing instances. One definition, so the program and a test harness register it alike; the same for
// the flags of a member of the brokers' cluster.
import { retryUntil } from './backoff';
import { BROKER_SERVICE_NAME } from './service-name';
import { hostPort } from './endpoints';

/** The agent service definition (PUT /v1/agent/service/register) of a broker reached at `address`. */
export interface BrokerServiceDefinition {
  ID: string;
  Name: string;
  Address: string;
  Port: number;
  Check: { Name: string; HTTP: string; Interval: string; Timeout: string };
}

export interface BrokerEndpoint {
  /** What clients and Consul's check reach it at: a container name on one host, a VM's private address. */
  address: string;
  clientPort: number;
  monitorPort: number;
}

export function brokerServiceDefinition({ address, clientPort, monitorPort }: BrokerEndpoint): BrokerServiceDefinition {
  return {
    // One broker per agent (three brokers are on three VMs, each on its own agent): a fixed ID makes
    // registering again a replacement, never a second instance.
    ID: BROKER_SERVICE_NAME,
    Name: BROKER_SERVICE_NAME,
    Address: address,
    Port: clientPort,
    // No tags: the broker asks the gateway for no route. No DeregisterCriticalServiceAfter: a broker that
    // is down stays registered as critical (not passing), and passes again when it is back.
    Check: {
      Name: `${BROKER_SERVICE_NAME} /healthz`,
      HTTP: `http://${hostPort(address, monitorPort)}/healthz`,
      Interval: '2s',
      Timeout: '2s',
    },
  };
}

export interface RegisterOptions {
  /** How long to keep retrying while the agent does not answer or does not accept the token yet. */
  readyTimeoutMs?: number;
  log?: (line: string) => void;
}

/**
 * Registers (or registers again: same ID, so it replaces) the broker on the agent at `httpAddr` with
 * `token`, which the agent keeps with the service and syncs it to the catalog with. Retries until the
 * agent answers 200: right after the ACL init step the agent may not answer yet, or (on a client agent)
 * not know the new token yet.
 */
export async function registerBroker(
  httpAddr: string,
  token: string,
  definition: BrokerServiceDefinition,
  options: RegisterOptions = {},
): Promise<void> {
  await retryUntil(
    async () => {
      const res = await fetch(`${httpAddr}/v1/agent/service/register`, {
        method: 'PUT',
        headers: { 'X-Consul-Token': token, 'content-type': 'application/json' },
        body: JSON.stringify(definition),
        signal: AbortSignal.timeout(5000),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`HTTP ${res.status} ${text.trim().slice(0, 200)}`);
    },
    options.readyTimeoutMs ?? 60_000,
    `registering ${definition.Name} on the Consul agent at ${httpAddr} failed`,
  );
  options.log?.(`service ${definition.Name} registered at ${definition.Address}:${definition.Port}, checked at ${definition.Check.HTTP}`);
}

/**
 * nats-server 2.9's flags for a member of the brokers' JetStream cluster (`host:port` each): routes to the
 * other members, and no peers' addresses handed to clients (no_advertise): those find every broker in Consul.
 */
export function clusterFlags(o: { name: string; listen: string; advertise: string; routes: string[] }): string[] {
  return [
    `--cluster_name=${o.name}`,
    `--cluster=nats://${o.listen}`,
    `--cluster_advertise=${o.advertise}`,
    `--routes=${o.routes.map((route) => `nats://${route}`).join(',')}`,
    '--no_advertise',
  ];
}
