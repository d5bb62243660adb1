// The ports the stack uses on a VM besides the configurable ones (balancerPort, balancerAdminPort,
// consulUiPort, collectorPort): the replicas', the broker's and Consul's. One place, so the validation, the
// containers and the README name the same numbers.
import { portRangeText as rangeText } from '../lib/port-range';

/** The most replicas of one service (hello or activity). */
export const MAX_REPLICAS = 20;

/**
 * On a VM a replica runs in the VM's network and listens on the first free port of its service's range
 * (replica/listen.ts), on the VM's private address. Twice MAX_REPLICAS ports: during a rolling deploy every
 * old replica and its successor listen at once, even with all of them on one VM.
 */
export const PORTS_PER_SERVICE = 2 * MAX_REPLICAS;

const portsFrom = (first: number) => Array.from({ length: PORTS_PER_SERVICE }, (_, i) => first + i);
/** The hello replicas' ports on a VM. */
export const REPLICA_PORTS = portsFrom(21001);
/** The activity replicas' ports on a VM. */
export const ACTIVITY_PORTS = portsFrom(22001);

/**
 * NATS: clients, the monitoring endpoint whose /healthz Consul's check asks, and, with three brokers, the
 * routes between them (the cluster port): published on each broker VM's private address.
 */
export const NATS_CLIENT_PORT = 4222;
export const NATS_MONITOR_PORT = 8222;
export const NATS_CLUSTER_PORT = 6222;
export const BROKER_PORTS = [NATS_CLIENT_PORT, NATS_MONITOR_PORT, NATS_CLUSTER_PORT];

/** `21001-21040` for a list of consecutive ports: the form of a replica's PORT range (lib/port-range.ts). */
export function portRangeText(ports: readonly number[]): string {
  return rangeText({ first: ports[0], last: ports[ports.length - 1] });
}

/** Consul's agent-to-agent ports on the private address (server RPC; LAN gossip, tcp and udp). */
export const CONSUL_SERVER_RPC_PORT = 8300;
export const CONSUL_SERF_LAN_PORT = 8301;
/** Bound by servers on the private address; only needed between datacenters, which this stack has not. */
export const CONSUL_SERF_WAN_PORT = 8302;

export const CONSUL_CLUSTER_PORTS = [CONSUL_SERVER_RPC_PORT, CONSUL_SERF_LAN_PORT, CONSUL_SERF_WAN_PORT];
