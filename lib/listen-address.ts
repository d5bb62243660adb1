// A server bound to a wildcard address listens on every interface; a probe of it (a health check, a
// request the balancer sends through its own listener) goes to loopback, which every host has.

export function isWildcardAddress(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

/** The address to probe a server listening on `listenAddress`: loopback for a wildcard, else itself. */
export function probeAddress(listenAddress: string): string {
  if (listenAddress === '0.0.0.0') return '127.0.0.1';
  if (listenAddress === '::') return '::1';
  return listenAddress;
}
