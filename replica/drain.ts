import type { Server } from 'node:http';
import type { Logger } from '../lib/logger';

// Requests still running this long after a shutdown signal are cut off.
export const DRAIN_TIMEOUT_MS = 10_000;

// How long a replica keeps serving after it left Consul, before it stops accepting and closes idle
// keep-alive connections: the balancer needs a Consul answer and a reload (about 0.3 s here) to stop
// sending. Closing a pooled connection earlier can meet a request nginx has just sent on it, and
// nginx does not retry a POST it has sent (seen: 1-2 POSTs answered 502 per SIGTERM under load).
export const LEAVE_DELAY_MS = 2000;

// The same signal again this soon is the same stop delivered twice, not a user insisting: a terminal's
// Ctrl-C reaches the whole process group, and `npm run` passes it on to the replica once more.
const REPEAT_SIGNAL_MS = 500;

/**
 * Runs `stop` on the first SIGTERM or SIGINT (the service and the activity service drain the same way).
 * A second signal exits at once, except the same signal within REPEAT_SIGNAL_MS of the first.
 */
export function onStopSignals(logger: Logger, stop: (signal: NodeJS.Signals) => Promise<void>): void {
  let first: { signal: NodeJS.Signals; at: number } | undefined;
  const handle = (signal: NodeJS.Signals) => {
    if (first) {
      if (signal === first.signal && Date.now() - first.at < REPEAT_SIGNAL_MS) return;
      logger.warn('second signal; exiting now', { signal });
      process.exit(1);
    }
    first = { signal, at: Date.now() };
    void stop(signal);
  };
  process.on('SIGTERM', handle);
  process.on('SIGINT', handle);
}

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
