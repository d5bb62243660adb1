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
import { outboxKeyPrefix, usersKeyPrefix } from '../lib/consul-acl';
import { parseNatsService } from '../lib/broker';
import { DRAIN_TIMEOUT_MS, drainServer, LEAVE_DELAY_MS, onStopSignals } from './drain';
import { startOutboxRelay } from './outbox-relay';
import { consulAgentApi, keepRegistered, serviceDefinition, type Registration } from './registration';

function loadConfig(): ServiceConfig & { natsService: string } {
  try {
    return {
      ...parseConfig(process.env, { hostname: os.hostname(), interfaces: os.networkInterfaces() }),
      natsService: parseNatsService(process.env),
    };
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
  let registration: Registration | undefined;

  const app = createApp({
    serviceName: config.serviceName,
    serviceId: config.serviceId,
    hostname: os.hostname(),
    version,
    users: new ConsulUsersStore(consul, usersKeyPrefix(config.serviceName), outboxKeyPrefix(config.serviceName)),
    logger,
    isDraining: () => draining,
  });
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;

  // Every committed user change left its event in the outbox (same transaction); this publishes them.
  const relay = startOutboxRelay({
    consul: config.consul,
    consulToken: config.consulToken,
    consulClient: consul,
    outboxPrefix: outboxKeyPrefix(config.serviceName),
    natsService: config.natsService,
    name: config.serviceId,
    logger,
  });

  server.on('error', (error) => {
    logger.error('server error', { error, host: config.host, port: config.port });
    process.exit(1);
  });

  server.listen(config.port, config.host, () => {
    logger.info('listening', { host: config.host, port: config.port, version, consul: config.consul.url });
    registration = keepRegistered(consulAgentApi(consul), serviceDefinition(config), logger);
  });

  onStopSignals(logger, async (signal) => {
    draining = true;
    logger.info('draining', { signal });
    await registration?.stop();
    // Responses meanwhile carry `Connection: close` (app.ts), so nginx's pooled connections end one by one.
    await new Promise((r) => setTimeout(r, LEAVE_DELAY_MS));
    const clean = await drainServer(server, DRAIN_TIMEOUT_MS);
    if (!clean) logger.warn('requests still in flight at the drain deadline were cut off', { timeoutMs: DRAIN_TIMEOUT_MS });
    // After the last request: its event is in the outbox, and any this relay leaves another replica's publishes.
    await relay.stop();
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

main();
