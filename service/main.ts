import os from 'node:os';
import { createLogger } from '../lib/logger';
import { version } from '../package.json';
import { createApp } from './app';
import { parseConfig } from '../replica/config';
import { createConsulClient } from '../replica/consul-client';
import { ConsulUsersStore } from './consul-users-store';
import { outboxKeyPrefix, usersKeyPrefix } from '../lib/consul-acl';
import { parseBrokerClient } from '../lib/broker';
import { startOutboxRelay } from './outbox-relay';
import { parseOutboxMaxEntries } from './outbox';
import { loadConfigOrExit, runReplica } from '../replica/lifecycle';
import { replicaServer } from '../replica/listen';

function main(): void {
  const config = loadConfigOrExit('service', () => ({
    ...parseConfig(process.env, { hostname: os.hostname(), interfaces: os.networkInterfaces() }),
    ...parseBrokerClient(process.env),
    outboxMaxEntries: parseOutboxMaxEntries(process.env),
  }));
  const logger = createLogger({ instance: config.serviceId });
  const consul = createConsulClient(config.consul, config.consulToken);
  let draining = false;

  // Every committed user change leaves its event in the outbox (same transaction); this publishes them
  // and bounds the outbox.
  const relay = startOutboxRelay({
    consul: config.consul,
    consulToken: config.consulToken,
    consulClient: consul,
    outboxPrefix: outboxKeyPrefix(config.serviceName),
    natsService: config.natsService,
    natsCa: config.natsCa,
    streamReplicas: config.streamReplicas,
    name: config.serviceId,
    logger,
    maxEntries: config.outboxMaxEntries,
  });

  const app = createApp({
    serviceName: config.serviceName,
    serviceId: config.serviceId,
    hostname: os.hostname(),
    version,
    users: new ConsulUsersStore(consul, usersKeyPrefix(config.serviceName), outboxKeyPrefix(config.serviceName), relay),
    logger,
    isDraining: () => draining,
    outboxStatus: () => relay.status(),
  });
  const server = replicaServer(app.fetch, config.tls);

  runReplica({
    server,
    config,
    consul,
    logger,
    onDraining: () => (draining = true),
    // After the last request: its event is in the outbox, and any this relay leaves another replica's publishes.
    afterDrain: () => relay.stop(),
  });
}

main();
