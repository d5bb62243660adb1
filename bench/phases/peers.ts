import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '../../harness/processes';
import type { Replica } from '../../harness/service';
import type { LoadGenerator } from '../load-generator';
import type { BenchOptions } from '../options';
import { startHaproxyPeer } from '../peers/haproxy';
import { oursPeer } from '../peers/ours';
import { PEER_NAMES, rssOf, type Peer, type PeerName } from '../peers/peer';
import { startStaticNginxPeer } from '../peers/static-nginx';
import { affinityOf } from '../pinning';
import { cpuBusyUs, readStat } from '../proc-stats';
import { SERVICE_NAME, type SystemUnderTest } from '../system-under-test';
import { measureDiscovery, type DiscoveryTry } from './discovery';
import { measureRemoval, type RemovalTry } from './removal';

/** One load run on one path (direct or through a peer). */
export interface PeerSample {
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU of the balancer's own processes per request, in µs (0 on the direct path). */
  proxyCpuUsPerRequest: number;
  /** CPU of every process under test (replica, Consul, the balancer's processes) per request, in µs. */
  underTestCpuUsPerRequest: number;
  /** % of the test core taken by other work meanwhile (see PathRun in throughput.ts). */
  foreignCpuPercent: number;
  /** Non-2xx answers: a peer answering errors is not measured, however fast it answers them. */
  non2xx: number;
  /** Connection errors and timeouts the load generator saw. */
  errors: number;
}

export interface PeerRepeat {
  direct: PeerSample;
  peer: PeerSample;
}

export interface PeerMeasurement {
  name: PeerName;
  description: string;
  discovers: boolean;
  repeats: PeerRepeat[];
  /** Null for a static list: a new replica takes traffic only after a hand edit and a reload. */
  discovery: DiscoveryTry[] | null;
  failover: RemovalTry[];
  scaleDown: RemovalTry[];
  /** RSS of all the balancer's processes after its load runs, in MB. */
  rssMB: number;
  /** CPU lists of the balancer's processes, read back with taskset: the same core as ours. */
  affinity: string;
}

export interface PeerContext {
  sut: SystemUnderTest;
  load: LoadGenerator;
  /** The replica every throughput run is served by, directly or through the peer. */
  first: Replica;
  options: BenchOptions;
  testCpu: number | undefined;
  /** Called with each peer as it starts, so that an interrupted run can stop it. */
  track(peer: Peer): void;
  log(message: string): void;
}

async function sample(ctx: PeerContext, url: string, peer: Peer | undefined): Promise<PeerSample> {
  const snapshot = () => {
    const replica = readStat(ctx.first.child.pid!)?.cpuUs ?? Number.NaN;
    const consul = readStat(ctx.sut.consulPid)?.cpuUs ?? 0;
    const proxy = peer ? peer.cpuUs() : 0;
    return {
      at: performance.now(),
      proxy,
      underTest: replica + consul + proxy,
      core: ctx.testCpu === undefined ? Number.NaN : cpuBusyUs(ctx.testCpu),
    };
  };
  const before = snapshot();
  const report = await ctx.load.autocannon({ url, connections: ctx.options.connections, durationSec: ctx.options.peerDurationSec });
  const after = snapshot();
  const requests = Math.max(report.requests, 1);
  const underTestUs = after.underTest - before.underTest;
  return {
    requestsPerSec: report.requestsPerSec,
    p50Ms: report.p50Ms,
    p99Ms: report.p99Ms,
    proxyCpuUsPerRequest: (after.proxy - before.proxy) / requests,
    underTestCpuUsPerRequest: underTestUs / requests,
    foreignCpuPercent: Math.max(0, ((after.core - before.core - underTestUs) / ((after.at - before.at) * 1000)) * 100),
    non2xx: report.non2xx,
    errors: report.errors,
  };
}

/**
 * The load runs of every peer, interleaved: each round goes through the peers (in an order that rotates
 * from round to round) and pairs each peer's run with a direct run on the same replica right next to it
 * (alternating which goes first). Noise on this shared machine then falls on every peer alike, not on
 * whichever peer happened to run during a busy minute.
 */
async function loadRounds(ctx: PeerContext, peers: Peer[]): Promise<Map<Peer, PeerRepeat[]>> {
  const { options, load, first } = ctx;
  const direct = `${first.url}/`;
  const repeats = new Map(peers.map((p) => [p, [] as PeerRepeat[]]));
  for (const peer of peers) {
    const { inRotation } = peer;
    if (inRotation) await waitFor(`${first.id} to be in ${peer.name}'s rotation`, () => inRotation(first), 15_000, 50);
    await load.autocannon({ url: `${peer.url}/`, connections: options.connections, durationSec: options.warmupSec });
  }
  for (let round = 0; round < options.peerRepeats; round++) {
    for (let j = 0; j < peers.length; j++) {
      const peer = peers[(round + j) % peers.length];
      const d0 = (round + j) % 2 === 0 ? await sample(ctx, direct, undefined) : undefined;
      const p = await sample(ctx, `${peer.url}/`, peer);
      repeats.get(peer)!.push({ direct: d0 ?? (await sample(ctx, direct, undefined)), peer: p });
    }
  }
  return repeats;
}

/** One peer's discovery (when it discovers), failover and scale-down, under the steady loop. */
async function changeTries(ctx: PeerContext, peer: Peer) {
  const { options, first } = ctx;
  let discovery: DiscoveryTry[] | null = null;
  if (peer.discovers) {
    ctx.log(`  ${peer.name}: discovery add, ${options.peerDiscoveryTries} tries`);
    discovery = await measureDiscovery(ctx.sut, peer, options.peerDiscoveryTries);
  }
  const removal = { setUpstreams: peer.setUpstreams, serving: [first] };
  ctx.log(`  ${peer.name}: failover (SIGKILL), ${options.peerFailoverTries} tries`);
  const failover = await measureRemoval(ctx.sut, peer, 'SIGKILL', options.peerFailoverTries, removal);
  ctx.log(`  ${peer.name}: scale-down (SIGTERM), ${options.peerScaleDownTries} tries`);
  const scaleDown = await measureRemoval(ctx.sut, peer, 'SIGTERM', options.peerScaleDownTries, removal);
  return { discovery, failover, scaleDown };
}

/**
 * The peers side by side on the same Consul, replica, pinning and load: ours (already running), HAProxy
 * with Consul DNS and the two static nginx variants, all on the test core. Their load runs are
 * interleaved (loadRounds); then each peer's discovery, failover and scale-down are measured in turn,
 * the others idle (HAProxy's idle work is one DNS query and one health check per server a second).
 */
export async function comparePeers(ctx: PeerContext): Promise<PeerMeasurement[]> {
  const dnsPort = ctx.sut.consul.dnsPort;
  if (dnsPort === undefined) throw new Error("the comparison needs Consul's DNS interface: start Consul with { dns: true }");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-bench-peers-'));
  const start: Record<PeerName, () => Promise<Peer>> = {
    ours: () => Promise.resolve(oursPeer(ctx.sut)),
    'haproxy-dns': () => startHaproxyPeer(path.join(dir, 'haproxy'), dnsPort, SERVICE_NAME, ctx.testCpu),
    'nginx-static': () => startStaticNginxPeer(path.join(dir, 'nginx-static'), [ctx.first], false, ctx.testCpu),
    'nginx-static-log': () => startStaticNginxPeer(path.join(dir, 'nginx-static-log'), [ctx.first], true, ctx.testCpu),
  };
  const peers: Peer[] = [];
  try {
    for (const name of PEER_NAMES) {
      const peer = await start[name]();
      ctx.track(peer);
      peers.push(peer);
    }
    ctx.log(
      `load runs: ${ctx.options.peerRepeats} rounds over the ${peers.length} peers, each run ${ctx.options.peerDurationSec} s and paired with a direct one`,
    );
    const repeats = await loadRounds(ctx, peers);
    const measured: PeerMeasurement[] = [];
    for (const peer of peers) {
      const rssMB = rssOf(peer.pids());
      const affinity = peer.pids().map(affinityOf).join(' ');
      const tries = await changeTries(ctx, peer);
      measured.push({
        name: peer.name,
        description: peer.description,
        discovers: peer.discovers,
        repeats: repeats.get(peer)!,
        ...tries,
        rssMB,
        affinity,
      });
    }
    return measured;
  } finally {
    await Promise.all(peers.map((p) => p.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
