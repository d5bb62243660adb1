import Consul from 'consul';
import type { ConsulAddress } from '../lib/consul-address';

/**
 * A client for the Consul agent's HTTP API. Every call is bounded: a Consul that hangs must
 * turn into a quick 503, not a request that waits forever.
 */
export function createConsulClient(address: ConsulAddress, token: string | undefined, timeoutMs = 3000): Consul {
  // `timeout` is honoured by the client's HTTP layer (papi) but missing from its typings; passed in a
  // variable rather than a literal, it is not an excess property to the compiler. The client sends a
  // default `token` with every request as X-Consul-Token.
  const options = {
    host: address.host,
    port: address.port,
    secure: address.secure,
    timeout: timeoutMs,
    ...(token !== undefined ? { defaults: { token } } : {}),
  };
  return new Consul(options);
}
