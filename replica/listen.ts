// Listening on the first free port of PORT's range. On a VM the replicas run in the VM's own network, and
// during a rolling deploy an old replica and its successor listen there at once: each takes a port of its
// own from its service's range. bind() either takes a port or fails with EADDRINUSE, so replicas starting
// together never share one: each tries the next until one is its own.
import type { Server as HttpServer } from 'node:http';
import https from 'node:https';
import type { Server } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import type { TlsPair } from '../lib/tls-files';
import { portRangeText, type PortRange } from '../lib/port-range';

/** A replica's server for `fetch` (a Hono app's): HTTPS with `tls`, else HTTP. */
export function replicaServer(fetch: (request: Request) => Response | Promise<Response>, tls: TlsPair | undefined): HttpServer {
  // An https.Server is an http.Server with TLS underneath: the drain and the lifecycle treat both alike.
  return (
    tls
      ? createAdaptorServer({ fetch, createServer: https.createServer, serverOptions: { cert: tls.cert, key: tls.key } })
      : createAdaptorServer({ fetch })
  ) as HttpServer;
}

function listenOn(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (error: Error) => reject(error);
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
}

/** Listens on the first port of `ports` that no other socket holds on `host`; resolves with that port. */
export async function listenOnFirstFree(server: Server, host: string, ports: PortRange): Promise<number> {
  for (let port = ports.first; port <= ports.last; port++) {
    try {
      // A server whose listen() failed may listen() again (Node's net.Server contract).
      await listenOn(server, port, host);
      return port;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    }
  }
  throw new Error(`every port of ${portRangeText(ports)} on ${host} is in use`);
}
