// A replica's life once its app is built, the same for every service of the stack (hello, activity):
// listen (on the first free port of PORT: replica/listen.ts), register that port with Consul, and on SIGTERM
// or SIGINT leave Consul, drain and exit 0.
import type { Server } from 'node:http';
import type Consul from 'consul';
import { ConfigError } from '../lib/config-error';
import type { Logger } from '../lib/logger';
import { version } from '../package.json';
import { portRangeText } from '../lib/port-range';
import type { ServiceConfig } from './config';
import { DRAIN_TIMEOUT_MS, drainServer, LEAVE_DELAY_MS, onStopSignals } from './drain';
import { listenOnFirstFree } from './listen';
import { consulAgentApi, keepRegistered, serviceDefinition, type Registration } from './registration';

/** Parses a service's environment; a bad value ends the process with status 2 and one line naming it. */
export function loadConfigOrExit<T>(label: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${label}: invalid configuration: ${error.message}\n`);
    process.exit(2);
  }
}

export interface ReplicaLifecycle {
  server: Server;
  config: ServiceConfig;
  consul: Consul;
  logger: Logger;
  /** More fields for the `listening` log line. */
  listening?: Record<string, unknown>;
  /** Called first on a stop signal: from then on /health answers 503 and responses close their connections. */
  onDraining(): void;
  /** After Consul and the balancer let go of this replica, before the server drains (e.g. end open streams). */
  beforeDrain?(): void;
  /** After the last request: stop the background work (the outbox relay, the event consumer). */
  afterDrain(): Promise<void>;
}

export function runReplica(o: ReplicaLifecycle): void {
  const { server, config, consul, logger } = o;
  let registration: Registration | undefined;

  listenOnFirstFree(server, config.host, config.ports).then(
    (port) => {
      server.on('error', (error) => {
        logger.error('server error', { error, host: config.host, port });
        process.exit(1);
      });
      logger.info('listening', { host: config.host, port, version, consul: config.consul.url, ...o.listening });
      // Consul advertises the port this replica bound: the balancer and the readiness probe learn it there.
      registration = keepRegistered(consulAgentApi(consul), serviceDefinition({ ...config, port }), logger);
    },
    (error: unknown) => {
      logger.error('cannot listen', { error, host: config.host, ports: portRangeText(config.ports) });
      process.exit(1);
    },
  );

  onStopSignals(logger, async (signal) => {
    o.onDraining();
    logger.info('draining', { signal });
    await registration?.stop();
    // The balancer needs a Consul answer and a reload to stop sending here (drain.ts says why it waits).
    await new Promise((r) => setTimeout(r, LEAVE_DELAY_MS));
    o.beforeDrain?.();
    const clean = await drainServer(server, DRAIN_TIMEOUT_MS);
    if (!clean) logger.warn('requests still in flight at the drain deadline were cut off', { timeoutMs: DRAIN_TIMEOUT_MS });
    await o.afterDrain();
    consul.destroy();
    logger.info('stopped');
    process.exit(0);
  });

  process.on('unhandledRejection', (reason) => logger.error('unhandled rejection', { error: reason }));
  process.on('uncaughtException', (error) => {
    logger.error('uncaught exception; exiting', { error, stack: error.stack });
    process.exit(1);
  });
}
