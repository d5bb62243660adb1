import os from 'node:os';
import type { Server } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import { ConfigError } from '../lib/config-error';
import { createLogger } from '../lib/logger';
import { version } from '../package.json';
import { createApp } from './app';
import { parseConfig, type ServiceConfig } from './config';
import { createConsulClient } from './consul-client';
import { ConsulUsersStore } from './consul-users-store';
import { usersKeyPrefix } from '../lib/consul-acl';
import { drainServer } from './drain';
import { consulAgentApi, keepRegistered, serviceDefinition, type Registration } from './registration';

// Requests still running this long after a shutdown signal are cut off.
const DRAIN_TIMEOUT_MS = 10_000;
// The same signal again this soon is the same stop delivered twice, not a user insisting: a terminal's
// Ctrl-C reaches the whole process group, and `npm run` passes it on to the replica once more.
const REPEAT_SIGNAL_MS = 500;

// How long a replica keeps serving after it left Consul, before it stops accepting and closes idle
// keep-alive connections: the balancer needs a Consul answer and a reload (about 0.3 s here) to stop
// sending. Closing a pooled connection earlier can meet a request nginx has just sent on it, and
// nginx does not retry a POST it has sent (seen: 1-2 POSTs answered 502 per SIGTERM under load).
const LEAVE_DELAY_MS = 2000;

function loadConfig(): ServiceConfig {
  try {
    return parseConfig(process.env, { hostname: os.hostname(), interfaces: os.networkInterfaces() });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`service: invalid configuration: ${error.message}\n`);
    process.exit(2);
  }
}

function main(): void {
  const config = loadConfig();
  const logger = createLogger({ instance: config.serviceId });
  const consul = createConsulClient(config.consul, config.consulToken);
  let draining = false;
  let firstSignal: { signal: NodeJS.Signals; at: number } | undefined;
  let registration: Registration | undefined;

  const app = createApp({
    serviceName: config.serviceName,
    serviceId: config.serviceId,
    hostname: os.hostname(),
    version,
    users: new ConsulUsersStore(consul, usersKeyPrefix(config.serviceName)),
    logger,
    isDraining: () => draining,
  });
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;

  server.on('error', (error) => {
    logger.error('server error', { error, host: config.host, port: config.port });
    process.exit(1);
  });

  server.listen(config.port, config.host, () => {
    logger.info('listening', { host: config.host, port: config.port, version, consul: config.consul.url });
    registration = keepRegistered(consulAgentApi(consul), serviceDefinition(config), logger);
  });

  const shutdown = async (signal: NodeJS.Signals) => {
    if (firstSignal) {
      if (signal === firstSignal.signal && Date.now() - firstSignal.at < REPEAT_SIGNAL_MS) return;
      logger.warn('second signal; exiting now', { signal });
      process.exit(1);
    }
    firstSignal = { signal, at: Date.now() };
    draining = true;
    logger.info('draining', { signal });
    await registration?.stop();
    // Responses meanwhile carry `Connection: close` (app.ts), so nginx's pooled connections end one by one.
    await new Promise((r) => setTimeout(r, LEAVE_DELAY_MS));
    const clean = await drainServer(server, DRAIN_TIMEOUT_MS);
    if (!clean) logger.warn('requests still in flight at the drain deadline were cut off', { timeoutMs: DRAIN_TIMEOUT_MS });
    consul.destroy();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', (signal) => void shutdown(signal));
  process.on('SIGINT', (signal) => void shutdown(signal));

  process.on('unhandledRejection', (reason) => logger.error('unhandled rejection', { error: reason }));
  process.on('uncaughtException', (error) => {
    logger.error('uncaught exception; exiting', { error, stack: error.stack });
    process.exit(1);
  });
}

main();
