// A server bound to a wildcard address listens on every interface; a probe of it (a health check, the
// balancer's reload check) goes to loopback, which every host has. balancer/Dockerfile's HEALTHCHECK
// writes the same rule again in its one-line script, since it cannot import this file.

export function isWildcardAddress(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

/** The address to probe a server listening on `listenAddress`: loopback for a wildcard, else itself. */
export function probeAddress(listenAddress: string): string {
  if (listenAddress === '0.0.0.0') return '127.0.0.1';
  if (listenAddress === '::') return '::1';
  return listenAddress;
}
