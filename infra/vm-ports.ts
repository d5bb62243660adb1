// The ports the stack uses on a VM besides the configurable ones (balancerPort, balancerAdminPort,
// consulUiPort, collectorPort): the replicas', the broker's and Consul's. One place, so the validation, the
// containers and the README name the same numbers.

/** The most replicas of one service (hello or activity): each has a port of its own on a VM. */
export const MAX_REPLICAS = 20;

/** A hello replica publishes its port on its VM's private address: REPLICA_PORT_BASE + its number. */
export const REPLICA_PORT_BASE = 21000;
/** An activity replica publishes its port on its VM's private address: ACTIVITY_PORT_BASE + its number. */
export const ACTIVITY_PORT_BASE = 22000;

/** The port replica `index` (1-based) of the service whose ports start after `base` listens on and publishes. */
export function replicaPort(index: number, base: number = REPLICA_PORT_BASE): number {
  return base + index;
}

const portsFrom = (base: number) => Array.from({ length: MAX_REPLICAS }, (_, i) => replicaPort(i + 1, base));
export const REPLICA_PORTS = portsFrom(REPLICA_PORT_BASE);
export const ACTIVITY_PORTS = portsFrom(ACTIVITY_PORT_BASE);

/** NATS: clients, and the monitoring endpoint whose /healthz Consul's check asks (published on the broker VM's private address). */
export const NATS_CLIENT_PORT = 4222;
export const NATS_MONITOR_PORT = 8222;
export const BROKER_PORTS = [NATS_CLIENT_PORT, NATS_MONITOR_PORT];

/** `21001-21020` for a list of consecutive ports. */
export function portRangeText(ports: readonly number[]): string {
  return `${ports[0]}-${ports[ports.length - 1]}`;
}

/** Consul's agent-to-agent ports on the private address (server RPC; LAN gossip, tcp and udp). */
export const CONSUL_SERVER_RPC_PORT = 8300;
export const CONSUL_SERF_LAN_PORT = 8301;
/** Bound by servers on the private address; only needed between datacenters, which this stack has not. */
export const CONSUL_SERF_WAN_PORT = 8302;

export const CONSUL_CLUSTER_PORTS = [CONSUL_SERVER_RPC_PORT, CONSUL_SERF_LAN_PORT, CONSUL_SERF_WAN_PORT];
