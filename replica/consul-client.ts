import http from 'node:http';
import https from 'node:https';
import Consul from 'consul';
import type { ConsulAddress } from '../lib/consul-address';

/**
 * A client for the Consul agent's HTTP API. Every call is bounded: a Consul that hangs must
 * turn into a quick 503, not a request that waits forever.
 */
/**
 * At most this many connections from one replica to Consul at a time; further calls queue. Consul refuses a
 * client's connections beyond its `http_max_conns_per_client` (lib/consul-limits.ts), so a burst of requests
 * to one replica waits here instead of failing there.
 */
export const CONSUL_MAX_SOCKETS = 32;

export function createConsulClient(address: ConsulAddress, token: string | undefined, timeoutMs = 3000): Consul {
  // `timeout` is honoured by the client's HTTP layer (papi) but missing from its typings; passed in a
  // variable rather than a literal, it is not an excess property to the compiler. The client sends a
  // default `token` with every request as X-Consul-Token.
  const Agent = address.secure ? https.Agent : http.Agent;
  const agent = new Agent({ keepAlive: true, maxSockets: CONSUL_MAX_SOCKETS });
  const options = {
    host: address.host,
    port: address.port,
    secure: address.secure,
    timeout: timeoutMs,
    agent,
    ...(token !== undefined ? { defaults: { token } } : {}),
  };
  return new Consul(options);
}
