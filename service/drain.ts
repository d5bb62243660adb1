import type { Server } from 'node:http';

/**
 * Stops accepting connections and waits for the requests in flight, at most `timeoutMs`.
 * Idle keep-alive connections are closed as they turn idle, so they cannot hold the exit.
 * Resolves true when every connection ended by itself, false when the rest had to be cut.
 */
export function drainServer(server: Server, timeoutMs: number, sweepMs = 100): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (clean: boolean) => {
      if (settled) return;
      settled = true;
      clearInterval(sweep);
      clearTimeout(deadline);
      resolve(clean);
    };
    const sweep = setInterval(() => server.closeIdleConnections(), sweepMs);
    const deadline = setTimeout(() => {
      server.closeAllConnections();
      finish(false);
    }, timeoutMs);
    server.close(() => finish(true));
    server.closeIdleConnections();
  });
}
