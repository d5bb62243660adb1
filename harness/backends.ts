// Many routed services without many processes: a few real HTTP backends on loopback, and registrations
// through Consul's agent API that point at them (each with a TTL check of its own, passing). For the
// gateway's scale test and the bench's scale phase.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AgentRegistration, ConsulAgent } from './consul';

export interface Backends {
  ports: number[];
  close(): Promise<void>;
}

/** `count` HTTP servers on 127.0.0.1 that answer every request 200 with JSON naming their port and the path. */
export async function startBackends(count: number): Promise<Backends> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<http.Server>((resolve, reject) => {
          const server = http.createServer((req, res) => {
            const body = JSON.stringify({ backend: (server.address() as AddressInfo).port, path: req.url });
            res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
            res.end(body);
          });
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  return {
    ports: servers.map((s) => (s.address() as AddressInfo).port),
    close: async () => {
      for (const s of servers) s.closeAllConnections();
      await Promise.all(servers.map((s) => new Promise<void>((done) => s.close(() => done()))));
    },
  };
}

/** The name of routed service number `i` (`svc-0007`), routed at `/svc-0007`. */
export const routedName = (i: number): string => `svc-${String(i).padStart(4, '0')}`;

/** One passing instance of `name` at `port`, routed at `/<name>`. */
export const routedInstance = (name: string, id: string, port: number): AgentRegistration => ({
  ID: id,
  Name: name,
  Tags: [`urlprefix-/${name}`],
  Address: '127.0.0.1',
  Port: port,
  Check: { TTL: '30m', Status: 'passing' },
});

/** Calls `step(i)` for i in `from`..`to - 1`, `parallel` at a time. */
async function eachInParallel(from: number, to: number, parallel: number, step: (i: number) => Promise<void>): Promise<void> {
  let next = from;
  const worker = async () => {
    for (let i = next++; i < to; i = next++) await step(i);
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

/** Registers routed services `from`..`to - 1`, one instance each (id `<name>-1`), spread over `ports`. */
export function registerRoutedServices(
  consul: ConsulAgent,
  from: number,
  to: number,
  ports: readonly number[],
  parallel = 8,
): Promise<void> {
  return eachInParallel(from, to, parallel, (i) =>
    consul.register(routedInstance(routedName(i), `${routedName(i)}-1`, ports[i % ports.length])),
  );
}

/** Deregisters what registerRoutedServices registered. */
export function deregisterRoutedServices(consul: ConsulAgent, from: number, to: number, parallel = 8): Promise<void> {
  return eachInParallel(from, to, parallel, (i) => consul.deregister(`${routedName(i)}-1`));
}

/**
 * The established TCP connections from process `pid` to `port` (as `local port`), from /proc: the socket
 * fds of the process and the kernel's tables.
 */
export function connectionsTo(pid: number, port: number): number[] {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m) inodes.add(m[1]);
    } catch {
      // the fd closed while we listed them
    }
  }
  // /proc/net/tcp is read in chunks and a busy table can list a socket twice: count each inode once.
  const local = new Map<string, number>();
  for (const table of ['tcp', 'tcp6']) {
    const path = `/proc/${pid}/net/${table}`;
    if (!fs.existsSync(path)) continue;
    const text = fs.readFileSync(path, 'utf8');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      const remotePort = parseInt(fields[2].split(':')[1], 16);
      // State 01 is ESTABLISHED; field 9 is the socket's inode.
      if (fields[3] === '01' && remotePort === port && inodes.has(fields[9])) local.set(fields[9], parseInt(fields[1].split(':')[1], 16));
    }
  }
  return [...local.values()];
}
