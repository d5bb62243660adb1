// Turning an address and a port into the host part of a URL, an nginx address or a syslog address.
import net from 'node:net';

/** `127.0.0.1:8080`, or `[::1]:8080` for IPv6. */
export function hostPort(address: string, port: number): string {
  return net.isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}

export function httpUrl(address: string, port: number): string {
  return `http://${hostPort(address, port)}`;
}
