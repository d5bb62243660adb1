import fs from 'node:fs';
import net from 'node:net';

/**
 * Where test ports come from: below the kernel's ephemeral range (ip_local_port_range, 32768-60999 by default),
 * from which every outgoing connection on the machine takes its local port. A port the kernel hands out for
 * listen(0) lies in that range, and a stack that publishes it half a minute later (after its image builds)
 * found it taken by some client's connection ("bind: address already in use", seen in CI). Above the
 * replicas' VM port ranges (21001-22040).
 */
const LOWEST = 23000;

function ephemeralStart(): number {
  try {
    const first = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(first) && first > 0 ? first : 32768;
  } catch {
    return 32768;
  }
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A kernel-picked port (listen(0)): in the ephemeral range. */
function kernelPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The highest port freePort picks: read once, it does not change under a run. */
const HIGHEST = Math.min(ephemeralStart() - 1, 65535);

/** A TCP port on 127.0.0.1 that was free a moment ago, below the ephemeral range when the machine leaves room. */
export async function freePort(): Promise<number> {
  if (HIGHEST - LOWEST < 1000) return kernelPort();
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (HIGHEST - LOWEST + 1));
    if (await bindable(port)) return port;
  }
  return kernelPort();
}

export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}
