import os from 'node:os';
import { createLogger } from '../lib/logger';
import { createConsulClient } from '../replica/consul-client';
import { loadConfigOrExit, runReplica } from '../replica/lifecycle';
import { replicaServer } from '../replica/listen';
import { createActivityApp, eventMessage } from './app';
import { durableName, parseActivityConfig } from './config';
import { startEventConsumer } from './consumer';
import { ActivityFeed } from './feed';
import { heapReclaimer, SseHub } from './sse';

/** Every stream gets a comment this often, so idle connections and the proxies between stay open. */
const HEARTBEAT_MS = 15_000;
/**
 * Frames one stream client may have waiting (beyond what the socket buffers) before it is disconnected:
 * events are about 150 bytes, so a client that stopped reading holds at most about 150 KB here. A burst
 * (the backlog after a broker outage) reaches a reading client much faster than that fills up.
 */
const CLIENT_QUEUE_LIMIT = 1024;
/** Closed streams after which their heap is given back (about 4 MB of it; a reclaim takes a few ms). */
const RECLAIM_AFTER_CLOSED = 100;

function main(): void {
  const config = loadConfigOrExit('activity', () =>
    parseActivityConfig(process.env, { hostname: os.hostname(), interfaces: os.networkInterfaces() }),
  );
  const logger = createLogger({ instance: config.serviceId });
  const consul = createConsulClient(config.consul, config.consulToken);
  let draining = false;

  const feed = new ActivityFeed(config.keep);
  const hub = new SseHub({
    heartbeatMs: HEARTBEAT_MS,
    queueLimit: CLIENT_QUEUE_LIMIT,
    maxClients: config.maxStreams,
    reclaimAfter: { closed: RECLAIM_AFTER_CLOSED, reclaim: heapReclaimer() },
    logger,
  });
  feed.subscribe((entry) => hub.broadcast(eventMessage(entry)));
  const app = createActivityApp({ serviceId: config.serviceId, feed, hub, logger, isDraining: () => draining });
  const server = replicaServer(app.fetch, config.tls);

  const consumer = startEventConsumer({
    consul: config.consul,
    consulToken: config.consulToken,
    natsService: config.natsService,
    natsCa: config.natsCa,
    streamReplicas: config.streamReplicas,
    durable: durableName(config.serviceId),
    keep: config.keep,
    durableInactiveMs: config.durableInactiveMs,
    feed,
    logger,
  });

  runReplica({
    server,
    config,
    consul,
    logger,
    listening: { keep: config.keep, durableInactiveSeconds: config.durableInactiveMs / 1000, maxStreams: config.maxStreams },
    onDraining: () => (draining = true),
    // Streams never end by themselves: end them, so EventSource clients reconnect through the gateway to another replica.
    beforeDrain: () => hub.stop(),
    afterDrain: () => consumer.stop(),
  });
}

main();
