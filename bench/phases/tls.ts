import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BALANCER_BUNDLE, upstreamsOf, type BalancerStatusJson } from '../../harness/balancer';
import { sendAll } from '../../harness/load';
import { freePorts } from '../../harness/ports';
import { startProcess, waitFor, type Managed } from '../../harness/processes';
import { CA_FILE_VARIABLE, makeTestCertificates } from '../../harness/tls';
import { pinnedCommand } from '../pinning';
import { cpuBusyUs, readStat } from '../proc-stats';
import { findNginx, nginxWorkersCpuUs, SERVICE_NAME, upstreamOf } from '../system-under-test';
import type { RouteContext } from './routes';

export type Edge = 'http' | 'https';

/** One run through one edge: the load's figures and the CPU it cost. */
export interface EdgeRun {
  requests: number;
  requestsPerSec: number;
  /** nginx workers' CPU (utime + stime) per request, µs: where TLS is paid. */
  nginxCpuUsPerRequest: number;
  /** The replica's CPU per request, µs: the same work behind either edge. */
  replicaCpuUsPerRequest: number;
  failures: number;
  /** Share of the test core busy with anything but that edge's nginx and the replica (other work, Consul, the idle watchers). */
  otherCpuPercent: number;
}

export interface TlsRound {
  /** Kept-alive connections (the load generator's closed loop): TLS costs its record encryption, handshakes are rare. */
  keptAlive: Record<Edge, EdgeRun>;
  /** A new connection for every request (harness/load.ts): every HTTPS request pays a full handshake, verified by the client. */
  newConnections: Record<Edge, EdgeRun>;
}

/** What the phase runs on: the same as the routes phase's (hello's one replica serving every request). */
export type TlsContext = RouteContext;

/**
 * The cost of HTTPS at the edge: the run's own balancer (plain HTTP) against a second balancer of the same
 * build with TLS_CERT_FILE/TLS_KEY_FILE (an ECDSA P-256 certificate for 127.0.0.1 from a CA made here by
 * openssl), both on the test core, following the same Consul and proxying to the same replica. Each round
 * has one run of each edge, in alternating order, with kept-alive connections and then with a new
 * connection per request. autocannon does not verify certificates; the new-connection runs do, with the CA.
 */
export async function measureTlsCost(ctx: TlsContext): Promise<TlsRound[]> {
  const { sut, load, first, options, testCpu } = ctx;
  const certs = await makeTestCertificates();
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-bench-tls-'));
  const [port, adminPort] = await freePorts(2);
  const [command, args] = pinnedCommand(testCpu, process.execPath, [BALANCER_BUNDLE]);
  const balancer: Managed = startProcess(command, args, {
    CONSUL_HTTP_ADDR: sut.consul.httpAddr,
    CONSUL_HTTP_TOKEN: await sut.consul.roleToken('balancer'),
    // As the run's own balancer (system-under-test.ts): capacity from one address, not the limit.
    RATE_LIMIT_PER_CLIENT: '0',
    LISTEN_ADDRESS: '127.0.0.1',
    LISTEN_PORT: String(port),
    ADMIN_ADDRESS: '127.0.0.1',
    ADMIN_PORT: String(adminPort),
    WORK_DIR: workDir,
    TLS_CERT_FILE: certs.certFile,
    TLS_KEY_FILE: certs.keyFile,
  });
  const previousCa = process.env[CA_FILE_VARIABLE];
  process.env[CA_FILE_VARIABLE] = certs.caFile;
  try {
    const status = async () => {
      const res = await fetch(`http://127.0.0.1:${adminPort}/_balancer/status`, { signal: AbortSignal.timeout(2000) });
      return (await res.json()) as BalancerStatusJson;
    };
    await waitFor(
      'the HTTPS balancer to route the replica',
      async () => upstreamsOf(await status(), SERVICE_NAME).includes(upstreamOf(first)),
      20_000,
      50,
    );
    const urls: Record<Edge, string> = { http: `${sut.balancerUrl}/`, https: `https://127.0.0.1:${port}/` };
    const nginxOf: Record<Edge, () => ReturnType<typeof findNginx>> = {
      http: () => sut.nginx(),
      https: () => findNginx(balancer.child.pid!),
    };

    /** Runs `send` through `edge`, with the CPU its nginx and the replica spent. */
    const measured = async (edge: Edge, send: () => Promise<{ requests: number; failures: number }>): Promise<EdgeRun> => {
      const nginx = nginxOf[edge]();
      const sample = () => ({
        at: performance.now(),
        nginx: nginxWorkersCpuUs(nginx),
        replica: readStat(first.child.pid!)?.cpuUs ?? Number.NaN,
        core: testCpu === undefined ? Number.NaN : cpuBusyUs(testCpu),
      });
      const before = sample();
      const { requests, failures } = await send();
      const after = sample();
      const wallUs = (after.at - before.at) * 1000;
      const n = Math.max(requests, 1);
      const nginxUs = after.nginx - before.nginx;
      const replicaUs = after.replica - before.replica;
      return {
        requests,
        requestsPerSec: requests / (wallUs / 1e6),
        nginxCpuUsPerRequest: nginxUs / n,
        replicaCpuUsPerRequest: replicaUs / n,
        failures,
        otherCpuPercent: Math.max(0, ((after.core - before.core - nginxUs - replicaUs) / wallUs) * 100),
      };
    };
    const keptAlive = (edge: Edge) =>
      measured(edge, async () => {
        const r = await load.autocannon({ url: urls[edge], connections: options.connections, durationSec: options.durationSec });
        return { requests: r.requests, failures: r.non2xx + r.errors + r.timeouts };
      });
    const newConnections = (edge: Edge) =>
      measured(edge, async () => {
        const results = await sendAll(urls[edge], options.tlsNewConnectionRequests, options.connections);
        return { requests: results.length, failures: results.filter((r) => !r.ok).length };
      });

    for (const edge of ['http', 'https'] as const) {
      await load.autocannon({ url: urls[edge], connections: options.connections, durationSec: options.warmupSec });
    }
    const rounds: TlsRound[] = [];
    for (let i = 0; i < options.tlsRounds; i++) {
      const order: Edge[] = i % 2 === 0 ? ['http', 'https'] : ['https', 'http'];
      const round: TlsRound = { keptAlive: {} as Record<Edge, EdgeRun>, newConnections: {} as Record<Edge, EdgeRun> };
      for (const edge of order) round.keptAlive[edge] = await keptAlive(edge);
      for (const edge of order) round.newConnections[edge] = await newConnections(edge);
      ctx.log(
        `tls round ${i + 1}: kept-alive ${Math.round(round.keptAlive.http.requestsPerSec)} / ${Math.round(round.keptAlive.https.requestsPerSec)} req/s (http / https)`,
      );
      rounds.push(round);
    }
    return rounds;
  } finally {
    if (previousCa === undefined) delete process.env[CA_FILE_VARIABLE];
    else process.env[CA_FILE_VARIABLE] = previousCa;
    await balancer.stop(5000);
    fs.rmSync(workDir, { recursive: true, force: true });
    await certs.remove();
  }
}
