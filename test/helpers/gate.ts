import net from 'node:net';
import { freePort } from '../../harness/ports';

export interface Gate {
  /** `http://127.0.0.1:<port>`: give this to a client instead of the target's own address. */
  url: string;
  port: number;
  /** Refuses new connections (nothing listens on the port) and cuts the relayed ones. */
  close(): Promise<void>;
  /** Listens again on the same port. */
  open(): Promise<void>;
}

/**
 * A TCP relay on a loopback port to `127.0.0.1:targetPort` that a test can shut and open again: it
 * decides *when* some clients reach a real server (for instance replicas reaching a restarted Consul
 * only after the balancer has seen it empty), so a race the product must survive happens every run.
 */
export async function startGate(targetPort: number): Promise<Gate> {
  const port = await freePort();
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const gate: Gate = {
    url: `http://127.0.0.1:${port}`,
    port,
    async open() {
      if (server) return;
      const listening = net.createServer((client) => {
        const upstream = net.connect(targetPort, '127.0.0.1');
        track(client);
        track(upstream);
        client.pipe(upstream);
        upstream.pipe(client);
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
      });
      await new Promise<void>((resolve, reject) => {
        listening.once('error', reject);
        listening.listen(port, '127.0.0.1', () => resolve());
      });
      server = listening;
    },
    async close() {
      const closing = server;
      server = undefined;
      if (!closing) return;
      const closed = new Promise<void>((resolve) => closing.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
  await gate.open();
  return gate;
}
