import { brokerServiceDefinition, registerBroker } from '../lib/broker-service';
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
export async function startNats(): Promise<NatsServer> {
  const [port, monitorPort] = await freePorts(2);
  const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-nats-'));
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
      proc = startProcess('nats-server', ['-js', '-sd', storeDir, '-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort)]);
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

/**
 * Registers the broker in the test Consul with the program's own definition and call (lib/broker-service.ts:
 * nats-server cannot register itself), with the management token where the program uses the broker role's.
 * Call it again after a Consul restart (a dev agent forgets its services).
 */
export async function registerNatsInConsul(consul: ConsulAgent, nats: NatsServer): Promise<void> {
  const definition = brokerServiceDefinition({ address: '127.0.0.1', clientPort: nats.port, monitorPort: nats.monitorPort });
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
