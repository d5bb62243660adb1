import type { DiscoveryTry } from './phases/discovery';
import type { PeerMeasurement, PeerRepeat } from './phases/peers';
import type { RemovalTry } from './phases/removal';
import type { PeerName } from './peers/peer';
import { max, median, round, type Target } from './stats';

/** One peer's column of the side-by-side table. Medians over the paired repeats unless said otherwise. */
export interface PeerColumn {
  description: string;
  requestsPerSec: { direct: number; peer: number };
  /** peer/direct requests per second, median of the per-repeat ratios. */
  throughputRatio: number;
  /** CPU of the balancer's own processes per proxied request, in µs. */
  proxyCpuUsPerRequest: number;
  /** CPU of every process under test per request, through the peer over direct (>= 1: what the proxy costs). */
  cpuPerRequestVsDirect: number;
  /** Latency the peer adds under the closed loop: median of per-repeat (peer - direct), in ms. */
  addedP50Ms: number;
  addedP99Ms: number;
  /** Null figures carry a note: a static list has no discovery, and no rotation of its own to watch. */
  discoveryAddMs: { p50: number | null; max: number | null; note?: string };
  failoverMs: { p50: number | null; max: number | null; note?: string };
  scaleDownMs: { p50: number | null; max: number | null; note?: string };
  failedRequests: { failover: number; sentDuringFailover: number; scaleDown: number; sentDuringScaleDown: number };
  /** Requests nginx retried on another upstream during the tries (see RemovalTry.retried); null for HAProxy. */
  retriedRequests: { failover: number | null; scaleDown: number | null };
  /**
   * Its load runs (through the peer): non-2xx answers (anything but 0 means the peer is not set up to
   * serve, and its figures mean nothing) and connection errors the load generator saw.
   */
  loadRunFailures: { non2xx: number; errors: number };
  /** RSS of all the balancer's processes (ours: watcher + nginx master + workers), in MB. */
  rssMB: number;
  /** % of the test core taken by other work during this peer's load runs (median, max). */
  foreignCpuPercent: { median: number; max: number };
  /** CPU lists of its processes, read back during the run. */
  affinity: string;
  /** Every try, for judging the spread and reading failures. */
  tries: { discovery: DiscoveryTry[] | null; failover: RemovalTry[]; scaleDown: RemovalTry[] };
}

export interface PeerComparison {
  startedAt: string;
  machine: { cpuModel: string; cores: number; kernel: string };
  settings: {
    connections: number;
    durationSec: number;
    repeats: number;
    discoveryTries: number;
    failoverTries: number;
    scaleDownTries: number;
  };
  /** One column per peer. */
  peers: Record<PeerName, PeerColumn>;
  targets: Target[];
}

const roundRemoval = (t: RemovalTry): RemovalTry => ({ ...t, leftConsulMs: round(t.leftConsulMs, 0), removedMs: round(t.removedMs, 0) });
const retriedOf = (tries: RemovalTry[]) =>
  tries.every((t) => t.retried !== null) ? tries.reduce((s, t) => s + (t.retried ?? 0), 0) : null;
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
const of = (repeats: PeerRepeat[], pick: (r: PeerRepeat) => number) => median(repeats.map(pick));

const STATIC_DISCOVERY = 'n/a (manual): a static list learns of a replica only by a hand edit and a reload';
const STATIC_REMOVAL =
  'n/a (passive): nginx never takes it out; each request that reaches it is retried elsewhere, and it is tried again every fail_timeout (2 s)';

function removalFigure(tries: RemovalTry[], discovers: boolean) {
  if (!discovers) return { p50: null, max: null, note: STATIC_REMOVAL };
  const removed = tries.map((t) => t.removedMs);
  return { p50: round(median(removed), 0), max: round(max(removed), 0) };
}

function column(m: PeerMeasurement): PeerColumn {
  const added = m.discovery?.map((t) => t.firstServedMs) ?? [];
  const foreign = m.repeats.flatMap((r) => [r.direct.foreignCpuPercent, r.peer.foreignCpuPercent]);
  return {
    description: m.description,
    requestsPerSec: {
      direct: round(
        of(m.repeats, (r) => r.direct.requestsPerSec),
        0,
      ),
      peer: round(
        of(m.repeats, (r) => r.peer.requestsPerSec),
        0,
      ),
    },
    throughputRatio: round(
      of(m.repeats, (r) => r.peer.requestsPerSec / r.direct.requestsPerSec),
      3,
    ),
    proxyCpuUsPerRequest: round(
      of(m.repeats, (r) => r.peer.proxyCpuUsPerRequest),
      1,
    ),
    cpuPerRequestVsDirect: round(
      of(m.repeats, (r) => r.peer.underTestCpuUsPerRequest / r.direct.underTestCpuUsPerRequest),
      2,
    ),
    addedP50Ms: round(
      of(m.repeats, (r) => r.peer.p50Ms - r.direct.p50Ms),
      3,
    ),
    addedP99Ms: round(
      of(m.repeats, (r) => r.peer.p99Ms - r.direct.p99Ms),
      3,
    ),
    discoveryAddMs: m.discovery
      ? { p50: round(median(added), 0), max: round(max(added), 0) }
      : { p50: null, max: null, note: STATIC_DISCOVERY },
    failoverMs: removalFigure(m.failover, m.discovers),
    scaleDownMs: removalFigure(m.scaleDown, m.discovers),
    failedRequests: {
      failover: sum(m.failover.map((t) => t.failed)),
      sentDuringFailover: sum(m.failover.map((t) => t.requests)),
      scaleDown: sum(m.scaleDown.map((t) => t.failed)),
      sentDuringScaleDown: sum(m.scaleDown.map((t) => t.requests)),
    },
    retriedRequests: { failover: retriedOf(m.failover), scaleDown: retriedOf(m.scaleDown) },
    loadRunFailures: { non2xx: sum(m.repeats.map((r) => r.peer.non2xx)), errors: sum(m.repeats.map((r) => r.peer.errors)) },
    rssMB: round(m.rssMB, 1),
    foreignCpuPercent: { median: round(median(foreign), 1), max: round(max(foreign), 1) },
    affinity: m.affinity,
    tries: {
      discovery:
        m.discovery?.map((t) => ({
          ...t,
          passingMs: round(t.passingMs, 0),
          inUpstreamsMs: round(t.inUpstreamsMs, 0),
          firstServedMs: round(t.firstServedMs, 0),
        })) ?? null,
      failover: m.failover.map(roundRemoval),
      scaleDown: m.scaleDown.map(roundRemoval),
    },
  };
}

/** A figure below another one, false when either is missing. */
const below = (a: number | null, b: number | null) => a !== null && b !== null && a < b;

/** Our targets against the peers measured in the same run (the "Our targets"). */
function evaluatePeerTargets(p: Record<PeerName, PeerColumn>): Target[] {
  const ours = p.ours;
  const haproxy = p['haproxy-dns'];
  const others = (['haproxy-dns', 'nginx-static', 'nginx-static-log'] as const).filter(
    (n) => p[n].failedRequests.failover + p[n].failedRequests.scaleDown > 0,
  );
  const cpuVs = (name: PeerName) => round(ours.proxyCpuUsPerRequest / p[name].proxyCpuUsPerRequest, 2);
  const within = (ratio: number) => Number.isFinite(ratio) && ratio <= 1.2;
  return [
    {
      figure: 'discovery add p50 below HAProxy-DNS',
      target: `< ${haproxy.discoveryAddMs.p50} ms`,
      met: below(ours.discoveryAddMs.p50, haproxy.discoveryAddMs.p50),
    },
    {
      figure: 'discovery add max below HAProxy-DNS',
      target: `< ${haproxy.discoveryAddMs.max} ms`,
      met: below(ours.discoveryAddMs.max, haproxy.discoveryAddMs.max),
    },
    {
      figure: 'failover p50 below HAProxy-DNS',
      target: `< ${haproxy.failoverMs.p50} ms`,
      met: below(ours.failoverMs.p50, haproxy.failoverMs.p50),
    },
    {
      figure: 'failover max below HAProxy-DNS',
      target: `< ${haproxy.failoverMs.max} ms`,
      met: below(ours.failoverMs.max, haproxy.failoverMs.max),
    },
    {
      figure: `0 failed requests on failover and scale-down (peers failing some: ${others.join(', ') || 'none'})`,
      target: '0',
      met: ours.failedRequests.failover === 0 && ours.failedRequests.scaleDown === 0,
    },
    // The target: the watcher, the JSON access log and the reload machinery together, so against
    // nginx without a log; against the log variant it shows what is left once the log's cost is set aside.
    {
      figure: `proxy CPU per request, ours / nginx-static (log off): ${cpuVs('nginx-static')}`,
      target: '<= 1.2',
      met: within(cpuVs('nginx-static')),
    },
    {
      figure: `proxy CPU per request, ours / nginx-static-log (same JSON log): ${cpuVs('nginx-static-log')}`,
      target: '<= 1.2',
      met: within(cpuVs('nginx-static-log')),
    },
  ];
}

export function summarizePeers(
  measured: PeerMeasurement[],
  context: Pick<PeerComparison, 'startedAt' | 'machine' | 'settings'>,
): PeerComparison {
  const peers = Object.fromEntries(measured.map((m) => [m.name, column(m)])) as Record<PeerName, PeerColumn>;
  return { ...context, peers, targets: evaluatePeerTargets(peers) };
}
