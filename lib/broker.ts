// The events' broker (NATS with JetStream), found through Consul: the program registers it as a service
// (nats-server cannot register itself), and the hello relay and the activity service ask Consul for its
// passing instances, so no broker address is configured anywhere.
import { connect, RetentionPolicy, StorageType, type NatsConnection } from 'nats';
import { readFileSync } from 'node:fs';
import { envValue, readSecretFile, rejectConfig } from './config-error';
import type { ConsulAddress } from './consul-address';
import { hostPort } from './endpoints';
import type { Logger } from './logger';
import { isServiceName, SERVICE_NAME_ALLOWED } from './service-name';
import { BROKER_SERVICE_NAME } from './service-name';
import { USER_EVENTS_STREAM, USER_EVENTS_SUBJECTS } from './user-events';

/** NATS_SERVICE: the broker's Consul service name (the service-name rule of every part). */
export function parseNatsService(env: NodeJS.ProcessEnv): string {
  const name = envValue(env, 'NATS_SERVICE') ?? BROKER_SERVICE_NAME;
  return isServiceName(name) ? name : rejectConfig('NATS_SERVICE', name, SERVICE_NAME_ALLOWED);
}

/**
 * NATS_CA_FILE: the CA the broker's certificate is checked with, for TLS to the broker (the stack sets it on
 * VMs); undefined: plain NATS. Read once, at start, so a missing file stops the process naming the variable.
 */
export function parseNatsCa(
  env: NodeJS.ProcessEnv,
  readFile: (file: string) => string = (file) => readFileSync(file, 'utf8'),
): string | undefined {
  const file = envValue(env, 'NATS_CA_FILE');
  if (file === undefined) return undefined;
  const pem = readSecretFile('NATS_CA_FILE', file, 'a PEM CA certificate', readFile);
  return pem.includes('-----BEGIN CERTIFICATE-----') ? pem : rejectConfig('NATS_CA_FILE', file, 'a PEM file holding the CA certificate');
}

interface HealthEntry {
  Node?: { Address?: string };
  Service?: { Address?: string; Port?: number };
}

/**
 * How many brokers hold USER_EVENTS, the stack's count of broker VMs (USER_EVENTS_REPLICAS): one, or three
 * forming one JetStream cluster, where the stream keeps a copy on each and an ack means a quorum (2) has it.
 */
export const USER_EVENTS_REPLICAS = { default: 1, allowed: [1, 3] } as const;

/** USER_EVENTS_REPLICAS: the stream's replica count, 1 (default) or 3. */
export function parseUserEventsReplicas(env: NodeJS.ProcessEnv): number {
  const raw = envValue(env, 'USER_EVENTS_REPLICAS');
  if (raw === undefined) return USER_EVENTS_REPLICAS.default;
  return USER_EVENTS_REPLICAS.allowed.map(String).includes(raw)
    ? Number(raw)
    : rejectConfig('USER_EVENTS_REPLICAS', raw, '1 (one broker) or 3 (three brokers in one JetStream cluster)');
}

/** How a replica reaches the events' broker and keeps the events' stream. */
export interface BrokerClientSettings {
  /** NATS_SERVICE: the broker's name in Consul. */
  natsService: string;
  /** NATS_CA_FILE's CA (PEM): TLS to the broker, verified with it; undefined: plain NATS. */
  natsCa?: string;
  /** USER_EVENTS_REPLICAS: the copies of the stream it creates, or raises an existing stream to. */
  streamReplicas?: number;
}

/** NATS_SERVICE, NATS_CA_FILE and USER_EVENTS_REPLICAS, read at start; throws ConfigError naming the first bad one. */
export function parseBrokerClient(env: NodeJS.ProcessEnv): BrokerClientSettings & { streamReplicas: number } {
  return { natsService: parseNatsService(env), natsCa: parseNatsCa(env), streamReplicas: parseUserEventsReplicas(env) };
}

/** `nats://address:port` of each entry; a service registered without an address is at its node's. */
export function brokerServers(entries: readonly HealthEntry[]): string[] {
  const servers: string[] = [];
  for (const entry of entries) {
    const address = entry.Service?.Address || entry.Node?.Address;
    const port = entry.Service?.Port;
    if (address && port) servers.push(`nats://${hostPort(address, port)}`);
  }
  return servers;
}

/** The broker's passing instances in Consul; throws, naming the service, when there is none. */
export async function findBroker(consul: ConsulAddress, token: string | undefined, natsService: string): Promise<string[]> {
  const url = `${consul.url}/v1/health/service/${encodeURIComponent(natsService)}?passing`;
  const res = await fetch(url, { headers: token === undefined ? {} : { 'X-Consul-Token': token }, signal: AbortSignal.timeout(3000) });
  if (!res.ok) throw new Error(`Consul answered ${res.status} for the broker's instances (${natsService})`);
  const servers = brokerServers((await res.json()) as HealthEntry[]);
  if (servers.length === 0) throw new Error(`no passing instance of ${natsService} in Consul`);
  return servers;
}

/**
 * A connection to one of `servers` (every passing broker, tried in random order until one answers), which
 * does not reconnect by itself: when its broker goes away the connection closes and its owner asks Consul
 * again, so it reaches another passing broker, or one that moved (a new container, another host). A broker
 * whose host died answers nothing: two unanswered pings 2 s apart close the connection (within about 6 s).
 * With `ca` the connection is TLS.
 */
export async function connectBroker(servers: string[], name: string, ca?: string): Promise<NatsConnection> {
  try {
    return await connect({
      servers,
      name,
      reconnect: false,
      timeout: 2000,
      maxPingOut: 2,
      pingInterval: 2000,
      ignoreClusterUpdates: true,
      // TLS, the broker's certificate verified with this CA (NATS_CA_FILE's) for the address in `servers`.
      ...(ca ? { tls: { ca } } : {}),
    });
  } catch (error) {
    throw new Error(`cannot connect to the broker at ${servers.join(', ')}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}

/**
 * A connection to a passing broker (found through Consul) with the events' stream ensured; a connection whose
 * stream cannot be ensured is closed. A raise of the stream's copies that the cluster refuses is logged: the
 * stream serves as it is, and the next connection tries again.
 */
export async function openBroker(
  consul: ConsulAddress,
  token: string | undefined,
  settings: BrokerClientSettings,
  name: string,
  logger: Logger,
): Promise<NatsConnection> {
  const nc = await connectBroker(await findBroker(consul, token, settings.natsService), name, settings.natsCa);
  try {
    const refused = await ensureUserEventsStream(nc, settings.streamReplicas);
    if (refused !== undefined)
      logger.warn('the broker refused to raise the events stream to its copies; it serves with fewer', {
        wanted: settings.streamReplicas,
        reason: refused,
      });
  } catch (error) {
    await nc.close();
    throw error;
  }
  return nc;
}

/**
 * The stream keeps events for consumers that were away (a stopped activity replica catches up from it);
 * it is not an archive, hence the bounds. 2 minutes of publish ids are remembered to drop duplicates (a
 * relay that published an entry whose delete it did not see).
 */
export const USER_EVENTS_LIMITS = { maxMsgs: 100_000, maxAgeMs: 7 * 24 * 3600_000, duplicateWindowMs: 120_000 };

/**
 * How long the broker keeps an activity replica's durable consumer nobody consumes from, in seconds
 * (ACTIVITY_DURABLE_INACTIVE_SECONDS, the stack's activityDurableInactiveSeconds): an hour by default, so a
 * replica restarted or moved resumes where it left off; at most the stream's age limit, since a durable kept
 * longer would have nothing left to resume.
 */
export const DURABLE_INACTIVE_SECONDS = { default: 3600, max: USER_EVENTS_LIMITS.maxAgeMs / 1000 };

const nanos = (ms: number) => ms * 1_000_000;

/**
 * Creates the stream if it is missing, with `replicas` copies; the same config again is a no-op, so
 * concurrent callers agree. A stream with fewer copies (made by a client of an older setting) is raised to
 * `replicas` in place (a stream update of num_replicas: the new copies catch up from the leader, no event is
 * lost); never lowered, so a client started with an older setting cannot undo it. A raise the cluster
 * refuses (a broker down) leaves the stream as it is, serving, until a later connection tries again: the
 * refusal is returned, for the caller to log.
 */
export async function ensureUserEventsStream(
  nc: NatsConnection,
  replicas: number = USER_EVENTS_REPLICAS.default,
): Promise<string | undefined> {
  const jsm = await nc.jetstreamManager();
  try {
    const { config } = await jsm.streams.info(USER_EVENTS_STREAM);
    if ((config.num_replicas || 1) >= replicas) return undefined;
    return await jsm.streams.update(USER_EVENTS_STREAM, { ...config, num_replicas: replicas }).then(
      () => undefined,
      (error: unknown) => String(error),
    );
  } catch (error) {
    if (!/stream not found/i.test(String(error))) throw error;
  }
  const config = {
    num_replicas: replicas,
    name: USER_EVENTS_STREAM,
    subjects: [USER_EVENTS_SUBJECTS],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    max_msgs: USER_EVENTS_LIMITS.maxMsgs,
    max_age: nanos(USER_EVENTS_LIMITS.maxAgeMs),
    duplicate_window: nanos(USER_EVENTS_LIMITS.duplicateWindowMs),
  };
  try {
    await jsm.streams.add(config);
  } catch (error) {
    // Another process created it between our look and our add: theirs is the same stream.
    if (!/already in use/i.test(String(error))) throw error;
  }
  return undefined;
}
