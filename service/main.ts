import os from 'node:os';
import type { Server } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import { version } from '../package.json';
import { createApp } from './app';
import { ConfigError, parseConfig, type ServiceConfig } from './config';
import { createConsulClient } from './consul-client';
import { ConsulUsersStore } from './consul-users-store';
import { drainServer } from './drain';
import { createLogger } from './logger';
import { consulAgentApi, keepRegistered, serviceDefinition, type Registration } from './registration';

// Requests still running this long after a shutdown signal are cut off.
const DRAIN_TIMEOUT_MS = 10_000;
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
  const logger = createLogger(config.serviceId);
  const consul = createConsulClient(config.consul);
  let draining = false;
  let registration: Registration | undefined;

  const app = createApp({
    serviceName: config.serviceName,
    serviceId: config.serviceId,
    hostname: os.hostname(),
    version,
    users: new ConsulUsersStore(consul, `${config.serviceName}/users`),
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
    if (draining) {
      logger.warn('second signal; exiting now', { signal });
      process.exit(1);
    }
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
