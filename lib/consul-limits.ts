// Consul's own request limits, the same for the stack's server (infra/consul-agent.ts) and the tests' agents
// (harness/consul.ts). Both keys are in the `limits` block of Consul 1.8 and of current releases.

/**
 * Concurrent HTTP connections Consul accepts from one client address; the next is closed at once. Consul's
 * default is 200. A replica opens at most CONSUL_MAX_SOCKETS (replica/consul-client.ts) and the balancer
 * one or two, so 100 leaves room for two replicas on one address (all processes on loopback, as in the
 * tests and the bench) and stops one client from holding the agent's whole capacity.
 */
export const CONSUL_HTTP_MAX_CONNS_PER_CLIENT = 100;

/**
 * Largest KV value Consul stores (default 512 KiB). A user is a few hundred bytes and the service refuses
 * bodies over 64 KiB, so nothing legitimate comes near it; a writer with KV access cannot fill memory with
 * a few big values.
 */
export const CONSUL_KV_MAX_VALUE_SIZE = 64 * 1024;

/** The agent arguments that set them (`-hcl` blocks merge, so each limit is its own argument). */
export function consulLimitArgs(): string[] {
  return [
    `-hcl=limits { http_max_conns_per_client = ${CONSUL_HTTP_MAX_CONNS_PER_CLIENT} }`,
    `-hcl=limits { kv_max_value_size = ${CONSUL_KV_MAX_VALUE_SIZE} }`,
  ];
}
