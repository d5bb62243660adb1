import { brokerServiceDefinition, clusterFlags, registerBroker } from '../lib/broker-service';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ConsulAgent } from './consul';
import { freePorts } from './ports';
import { startProcess, waitFor, type Managed } from './processes';

export interface NatsServer {
  /** Client port on 127.0.0.1 (`nats://127.0.0.1:<port>`). */
  port: number;
  /** Monitoring port: `/healthz` answers 200 once the server (JetStream included) is ready. */
  monitorPort: number;
  url: string;
  /** The JetStream store directory; kept across stop() and start(), removed by close(). */
  storeDir: string;
  /** Stops the server (SIGTERM), keeping its store: an outage. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and store, and waits for /healthz. */
  start(): Promise<void>;
  isRunning(): boolean;
  /** The server's process id while it runs (the bench pins it to the test core). */
  pid(): number | undefined;
  /** Stops it and removes its store. */
  close(): Promise<void>;
  output(): string;
}

const HEALTH_TIMEOUT_MS = 15_000;

/**
 * Starts a real `nats-server` with JetStream on free loopback ports and a store of its own, and waits
 * until its monitoring `/healthz` answers 200. Its process is killed when the test process exits, like
 * every harness process; close() also removes the store.
 */
export async function startNats(cluster?: NatsClusterMember, extraArgs: string[] = []): Promise<NatsServer> {
  const [port, monitorPort] = await freePorts(2);
  const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-nats-'));
  // A member of a cluster: the flags the program gives a broker VM (lib/broker-service.ts clusterFlags), on loopback ports.
  const clusterArgs = cluster
    ? [
        `--server_name=${cluster.serverName}`,
        ...clusterFlags({
          name: 'cnp-test',
          listen: `127.0.0.1:${cluster.port}`,
          advertise: `127.0.0.1:${cluster.port}`,
          routes: cluster.routes.map((p) => `127.0.0.1:${p}`),
        }),
      ]
    : [];
  let proc: Managed | undefined;
  let log = '';

  const healthy = async () => (await fetch(`http://127.0.0.1:${monitorPort}/healthz`, { signal: AbortSignal.timeout(1000) })).ok;

  const server: NatsServer = {
    port,
    monitorPort,
    url: `nats://127.0.0.1:${port}`,
    storeDir,
    async start() {
      if (proc) return;
      proc = startProcess('nats-server', [
        '-js',
        '-sd',
        storeDir,
        '-a',
        '127.0.0.1',
        '-p',
        String(port),
        '-m',
        String(monitorPort),
        ...clusterArgs,
        ...extraArgs,
      ]);
      const started = proc;
      await waitFor(
        'nats-server /healthz',
        async () => {
          if (started.child.exitCode !== null) throw new Error(`nats-server exited: ${started.output()}`);
          return healthy();
        },
        HEALTH_TIMEOUT_MS,
        50,
      );
    },
    async stop() {
      if (!proc) return;
      const stopping = proc;
      proc = undefined;
      await stopping.stop(5000);
      log += stopping.output();
    },
    isRunning: () => proc !== undefined,
    pid: () => proc?.child.pid,
    async close() {
      await server.stop();
      fs.rmSync(storeDir, { recursive: true, force: true });
    },
    output: () => log + (proc?.output() ?? ''),
  };
  try {
    await server.start();
  } catch (error) {
    await server.close();
    throw error;
  }
  return server;
}

export interface NatsClusterMember {
  serverName: string;
  /** This server's cluster (route) port on 127.0.0.1. */
  port: number;
  /** The other members' cluster ports. */
  routes: number[];
}

/**
 * Three nats-servers forming one JetStream cluster on loopback, as three broker VMs do. Started together:
 * each answers /healthz only once the cluster has a metadata leader, which takes two of them.
 */
export async function startNatsCluster(size = 3, extraArgs: string[] = []): Promise<NatsServer[]> {
  const ports = await freePorts(size);
  const members = ports.map((port, i) => ({ serverName: `nats-${i + 1}`, port, routes: ports.filter((p) => p !== port) }));
  const started = await Promise.allSettled(members.map((member) => startNats(member, extraArgs)));
  const servers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(servers.map((s) => s.close()));
    throw failed.reason;
  }
  return servers;
}

/**
 * Registers the broker in the test Consul with the program's own definition and call (lib/broker-service.ts:
 * nats-server cannot register itself), with the management token where the program uses the broker role's.
 * Call it again after a Consul restart (a dev agent forgets its services).
 */
export async function registerNatsInConsul(consul: ConsulAgent, nats: NatsServer, id?: string): Promise<void> {
  // Several brokers on the one test agent need IDs of their own; the stack has one broker per agent.
  const definition = {
    ...brokerServiceDefinition({ address: '127.0.0.1', clientPort: nats.port, monitorPort: nats.monitorPort }),
    ...(id ? { ID: id } : {}),
  };
  await registerBroker(consul.httpAddr, consul.managementToken, definition, { readyTimeoutMs: 5000 });
}

/** Waits until Consul lists `count` passing instances of the broker (its check runs every 2 s, the first one staggered). */
export async function waitForNatsPassing(consul: ConsulAgent, count: number, name = 'nats', timeoutMs = 30_000): Promise<void> {
  await waitFor(
    `${count} passing ${name} instance(s) in Consul`,
    async () => (await consul.passing(name)).length === count,
    timeoutMs,
    100,
  );
}

/** A stream's copies as its leader reports them in its monitoring /jsz?accounts=true&streams=true. */
export interface StreamCopies {
  leader: string;
  /** The leader and its followers. */
  copies: number;
  /** Those current with the leader (the leader counts). */
  current: number;
  messages: number;
}

interface JszStream {
  name: string;
  state?: { messages?: number };
  cluster?: { leader?: string; replicas?: Array<{ name: string; current: boolean }> };
}

/**
 * The copies of `stream` in one server's /jsz answer, when that server leads it; undefined from another
 * server, or for a stream it does not hold. Every member of the stream's group answers with the leader's
 * name and the other members (itself left out), but only the leader tracks whether each acked its last
 * entry: a follower's list, which names the leader, is stale (measured on 2.9.10: a former leader kept
 * showing its followers as they were when it stepped down).
 */
export function streamCopiesOf(jsz: unknown, stream: string): StreamCopies | undefined {
  const accounts = (jsz as { account_details?: Array<{ stream_detail?: JszStream[] }> }).account_details ?? [];
  const found = accounts.flatMap((a) => a.stream_detail ?? []).find((s) => s.name === stream);
  const leader = found?.cluster?.leader;
  const followers = found?.cluster?.replicas ?? [];
  if (!found || !leader || followers.some((r) => r.name === leader)) return undefined;
  return {
    leader,
    copies: 1 + followers.length,
    current: 1 + followers.filter((r) => r.current).length,
    messages: found.state?.messages ?? 0,
  };
}

/** `stream`'s copies as its leader among `servers` reports them (see streamCopiesOf), or undefined while none leads it. */
export async function streamCopies(servers: readonly NatsServer[], stream: string): Promise<StreamCopies | undefined> {
  for (const server of servers.filter((s) => s.isRunning())) {
    const res = await fetch(`http://127.0.0.1:${server.monitorPort}/jsz?accounts=true&streams=true`, {
      signal: AbortSignal.timeout(2000),
    }).catch(() => undefined);
    const copies = res?.ok ? streamCopiesOf(await res.json(), stream) : undefined;
    if (copies) return copies;
  }
  return undefined;
}
