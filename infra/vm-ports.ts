// The ports the stack uses on a VM besides the three configurable ones (balancerPort, consulUiPort,
// collectorPort): the replicas' and Consul's. One place, so the validation, the containers and the README
// name the same numbers.

/** A replica publishes its port on its VM's private address: REPLICA_PORT_BASE + its number. */
export const REPLICA_PORT_BASE = 21000;

/** The port replica `index` (1-based) listens on and publishes on its VM's private address. */
export function replicaPort(index: number): number {
  return REPLICA_PORT_BASE + index;
}

/** Consul's agent-to-agent ports on the private address (server RPC; LAN gossip, tcp and udp). */
export const CONSUL_SERVER_RPC_PORT = 8300;
export const CONSUL_SERF_LAN_PORT = 8301;
/** Bound by servers on the private address; only needed between datacenters, which this stack has not. */
export const CONSUL_SERF_WAN_PORT = 8302;

export const CONSUL_CLUSTER_PORTS = [CONSUL_SERVER_RPC_PORT, CONSUL_SERF_LAN_PORT, CONSUL_SERF_WAN_PORT];
