import type { AlonePhase, BenchMode, BenchOptions } from './options';
import { summarizePeers, type PeerComparison } from './peer-results';
import type { PeerMeasurement } from './phases/peers';
import type { DiscoveryTry } from './phases/discovery';
import type { RemovalTry } from './phases/removal';
import { ROUTE_PATHS, type RouteRound, type RouteRun } from './phases/routes';
import type { EdgeRun, TlsRound } from './phases/tls';
import type { ScaleStep } from './phases/scale';
import { EVENT_WRITERS, type EventRun } from './phases/events';
import type { WriteStep } from './phases/writes';
import { medianOf, type PairedRepeat, type PathRun, type ThroughputResult } from './phases/throughput';
import type { SingleRequestsReport } from './load-protocol';
import { max, median, percentile, round, type Target } from './stats';
import type { Versions } from './versions';

export interface Pinning {
  description: string;
  loadCpu: number | null;
  testCpu: number | null;
  /** CPU lists the processes actually had, read back with taskset during the run. */
  observed: Record<string, string>;
}

/** Shape of bench/results.json. Units are in the key names or below; medians unless said otherwise. */
export interface BenchResults {
  mode: BenchMode;
  startedAt: string;
  elapsedSec: number;
  cores: number;
  pinning: Pinning;
  versions: Versions;
  settings: Omit<BenchOptions, 'outFile' | 'mode'>;
  /** balancer/direct requests per second at one replica (median of per-repeat ratios). */
  throughputRatio: number;
  throughputRatioTwoReplicas: number;
  /**
   * CPU the processes under test spend per request, direct over balanced (median of repeats): what the
   * throughput ratio tends to on a core nothing else uses. Other work on a shared core flatters the
   * throughput ratio (the scheduler shares by task, and the balanced path has more tasks); this does not.
   */
  cpuCostRatio: number;
  requestsPerSec: { direct: number; balancer: number; balancerTwoReplicas: number };
  /** % of the test core's time taken by other work during the load runs (median, max): how noisy the run was. */
  foreignCpuPercent: { median: number; max: number };
  /** Every paired run, for judging the spread behind the medians. */
  repeats: {
    replicas: number;
    directRps: number;
    balancerRps: number;
    ratio: number;
    /** [direct, balancer] */
    p50Ms: [number, number];
    p99Ms: [number, number];
    /** Mean latency against connections/throughput (Little's law): equal when the timing is sound. */
    meanMs: [number, number];
    connectionsOverRpsMs: [number, number];
    nginxCpuUsPerRequest: number;
    /** CPU per request in µs, [direct, balancer], of the replica(s), and the watcher's on the balanced path. */
    replicaCpuUsPerRequest: [number, number];
    watcherCpuUsPerRequest: number;
    /** CPU of the processes under test, and busy time of the whole test core, per request, [direct, balancer]. */
    underTestCpuUsPerRequest: [number, number];
    coreUsPerRequest: [number, number];
    /** [direct, balancer]: % of the test core taken by other work during the run (see PathRun). */
    foreignCpuPercent: [number, number];
  }[];
  nginxCpuUsPerRequest: number;
  replicaCpuUsPerRequest: { direct: number; balancer: number };
  /** Watcher CPU as a percentage of one core. */
  watcherCpuPercent: { idle: number; load: number };
  /** Closed loop of `settings.connections` connections. */
  p50Ms: { direct: number; balancer: number };
  p99Ms: { direct: number; balancer: number };
  /** Sequential single requests on one kept-alive connection: the cross-check of p50Ms/p99Ms. */
  singleRequestMs: { direct: { p50: number; p99: number }; balancer: { p50: number; p99: number } };
  /** From the replica's spawn; passingToServedP50 is from Consul listing it as passing (polled every 20 ms) to its first request. */
  discoveryAddMs: {
    p50: number;
    max: number;
    passingP50: number;
    inUpstreamsP50: number;
    passingToServedP50: number;
    tries: DiscoveryTry[];
  };
  failoverMs: { p50: number; max: number; leftConsulP50: number; tries: RemovalTry[] };
  scaleDownMs: { p50: number; max: number; tries: RemovalTry[] };
  failedRequests: { failover: number; scaleDown: number; sentDuringFailover: number; sentDuringScaleDown: number };
  rssMB: { replica: number; watcher: number; nginx: number; replicaAfterLoad: number; nginxPss: number };
  /** From a user's POST to its event on the activity service's SSE stream (bench/phases/events.ts). */
  eventLatencyMs: { p50: number; p99: number; writes: number };
  /**
   * The events phase's writes: `writers` hello replicas, sent at `targetPerSec` (open loop), answered at
   * `answeredPerSec`; `publishesPerWrite` is what nats-server received from the writers' relays over the
   * measured writes (its /connz in_msgs) per write.
   */
  events: {
    writers: number;
    targetPerSec: number;
    answeredPerSec: number;
    failed: number;
    failures: Record<string, number>;
    publishesPerWrite: number;
  };
  /**
   * Writes per second at each number of users stored (bench/phases/writes.ts), before and right after a list
   * request; `ratio` is the largest size's over the smallest's, after the list request.
   */
  writeRates: { steps: WriteStep[]; ratio: number; ratioBeforeList: number };
  /**
   * The gateway with one routed service against several (bench/phases/routes.ts), same requests from the
   * same replica: nginx workers' CPU per proxied request and throughput, medians over the rounds;
   * `ratio` is several/one, the median of the per-round ratios.
   */
  routeCost: {
    paths: string[];
    services: { one: number; several: number };
    routes: { one: number; several: number };
    nginxCpuUsPerRequest: { one: number; several: number };
    ratio: number;
    requestsPerSec: { one: number; several: number };
    /** Every round: [one, several]. */
    rounds: {
      nginxCpuUsPerRequest: [number, number];
      requestsPerSec: [number, number];
      non2xx: [number, number];
      errors: [number, number];
      foreignCpuPercent: [number, number];
    }[];
  };
  /**
   * The gateway at 1, 100 and 1,000 routed services (bench/phases/scale.ts), one entry per size: a service
   * added (registration with a passing check → first request proxied to it) and removed (deregistration →
   * the gateway's 404), the reload behind each change, nginx CPU per proxied request on hello's routes and
   * its ratio to the first size's, the watcher's RSS.
   */
  scale: {
    services: number;
    addMs: { p50: number; max: number };
    removeMs: { p50: number; max: number };
    reloadMs: { p50: number; max: number };
    nginxCpuUsPerRequest: number;
    cpuVsFirst: number;
    requestsPerSec: number;
    non2xx: number;
    watcherRssMB: number;
    tries: { addMs: number; removeMs: number; addReloadMs: number; removeReloadMs: number }[];
  }[];
  /**
   * HTTPS against HTTP at the edge (bench/phases/tls.ts), two balancers of the same build side by side on the
   * test core and the same replica: medians over the rounds, and ratios HTTPS/HTTP (the median of the
   * per-round ratios), with kept-alive connections and with a new connection (a full handshake) per request.
   */
  tlsCost: {
    certificate: string;
    keptAlive: TlsCostFigures;
    newConnections: TlsCostFigures;
    /** Failed requests (non-2xx, errors, timeouts) over every run of the phase, both edges. */
    failures: number;
    rounds: {
      keptAlive: TlsRoundFigures;
      newConnections: TlsRoundFigures;
    }[];
  };
  targets: Target[];
  /** The side-by-side table: ours, HAProxy with Consul DNS and static nginx, in this same run. */
  comparison: PeerComparison;
}

/** One round's runs of one way of connecting, `[http, https]`. */
export interface TlsRoundFigures {
  requestsPerSec: [number, number];
  nginxCpuUsPerRequest: [number, number];
  otherCpuPercent: [number, number];
  /** Failed requests (non-2xx, errors, timeouts). */
  failures: [number, number];
}

/** One way of connecting, HTTP against HTTPS: `[http, https]` pairs are medians over the rounds. */
export interface TlsCostFigures {
  requestsPerSec: { http: number; https: number };
  nginxCpuUsPerRequest: { http: number; https: number };
  replicaCpuUsPerRequest: { http: number; https: number };
  /** HTTPS over HTTP: throughput (below 1 = HTTPS serves fewer) and nginx CPU per request (above 1 = HTTPS costs more). */
  throughputRatio: number;
  nginxCpuRatio: number;
}

/** Shape of the results file of an `--only` run: the run's context and the figures of the phases it ran. */
export type AloneResults = Pick<BenchResults, RunContextKey | 'targets'> &
  Partial<Pick<BenchResults, 'scale' | 'tlsCost'>> & { only: AlonePhase[] };

type RunContextKey = 'mode' | 'startedAt' | 'elapsedSec' | 'cores' | 'pinning' | 'versions' | 'settings';

/** What an `--only` run measured: the phases it did not run are absent. */
export type AloneMeasurements = Pick<RawMeasurements, 'options' | 'startedAt' | 'elapsedSec' | 'cores' | 'pinning' | 'versions'> &
  Partial<Pick<RawMeasurements, 'scale' | 'tls'>>;

export interface RawMeasurements {
  options: BenchOptions;
  startedAt: Date;
  elapsedSec: number;
  cores: number;
  pinning: Pinning;
  versions: Versions;
  throughput: ThroughputResult;
  watcherIdleCpuPercent: number;
  single: { direct: SingleRequestsReport[]; balancer: SingleRequestsReport[] };
  discovery: DiscoveryTry[];
  failover: RemovalTry[];
  scaleDown: RemovalTry[];
  memory: { replicaIdle: number; replicaAfterLoad: number; watcher: number; nginx: number; nginxPss: number };
  peers: PeerMeasurement[];
  routes: RouteRound[];
  scale: ScaleStep[];
  tls: TlsRound[];
  events: EventRun;
  writes: WriteStep[];
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

export function summarize(raw: RawMeasurements): BenchResults {
  const { oneReplica, twoReplicas } = raw.throughput;
  const p50 = {
    direct: round(
      medianOf(oneReplica, (r) => r.direct.load.p50Ms),
      3,
    ),
    balancer: round(
      medianOf(oneReplica, (r) => r.balancer.load.p50Ms),
      3,
    ),
  };
  const p99 = {
    direct: round(
      medianOf(oneReplica, (r) => r.direct.load.p99Ms),
      3,
    ),
    balancer: round(
      medianOf(oneReplica, (r) => r.balancer.load.p99Ms),
      3,
    ),
  };
  const single = (reports: SingleRequestsReport[]) => ({
    p50: round(median(reports.map((r) => r.p50Ms)), 3),
    p99: round(median(reports.map((r) => r.p99Ms)), 3),
  });
  const allRuns = [...oneReplica, ...twoReplicas].flatMap((r) => [r.direct, r.balancer]);
  const added = raw.discovery.map((t) => t.firstServedMs);
  const failedOver = raw.failover.map((t) => t.removedMs);
  const scaledDown = raw.scaleDown.map((t) => t.removedMs);

  const results: Omit<BenchResults, 'targets' | 'comparison'> = {
    ...runContext(raw),
    throughputRatio: round(
      medianOf(oneReplica, (r) => r.ratio),
      3,
    ),
    throughputRatioTwoReplicas: round(
      medianOf(twoReplicas, (r) => r.ratio),
      3,
    ),
    cpuCostRatio: round(
      medianOf(oneReplica, (r) => r.direct.underTestCpuUsPerRequest / r.balancer.underTestCpuUsPerRequest),
      3,
    ),
    requestsPerSec: {
      direct: round(
        medianOf(oneReplica, (r) => r.direct.load.requestsPerSec),
        0,
      ),
      balancer: round(
        medianOf(oneReplica, (r) => r.balancer.load.requestsPerSec),
        0,
      ),
      balancerTwoReplicas: round(
        medianOf(twoReplicas, (r) => r.balancer.load.requestsPerSec),
        0,
      ),
    },
    foreignCpuPercent: {
      median: round(median(allRuns.map((p) => p.foreignCpuPercent)), 1),
      max: round(max(allRuns.map((p) => p.foreignCpuPercent)), 1),
    },
    repeats: [...oneReplica.map((r) => describeRepeat(1, r)), ...twoReplicas.map((r) => describeRepeat(2, r))],
    nginxCpuUsPerRequest: round(
      medianOf(oneReplica, (r) => r.balancer.nginxCpuUsPerRequest),
      1,
    ),
    replicaCpuUsPerRequest: {
      direct: round(
        medianOf(oneReplica, (r) => r.direct.replicaCpuUsPerRequest),
        1,
      ),
      balancer: round(
        medianOf(oneReplica, (r) => r.balancer.replicaCpuUsPerRequest),
        1,
      ),
    },
    watcherCpuPercent: {
      idle: round(raw.watcherIdleCpuPercent, 2),
      load: round(
        medianOf(oneReplica, (r) => r.balancer.watcherCpuPercent),
        2,
      ),
    },
    p50Ms: p50,
    p99Ms: p99,
    singleRequestMs: { direct: single(raw.single.direct), balancer: single(raw.single.balancer) },
    discoveryAddMs: {
      p50: round(median(added), 0),
      max: round(max(added), 0),
      passingP50: round(median(raw.discovery.map((t) => t.passingMs)), 0),
      inUpstreamsP50: round(median(raw.discovery.map((t) => t.inUpstreamsMs)), 0),
      passingToServedP50: round(median(raw.discovery.map((t) => t.firstServedMs - t.passingMs)), 0),
      tries: raw.discovery.map((t) => ({
        ...t,
        passingMs: round(t.passingMs, 0),
        inUpstreamsMs: round(t.inUpstreamsMs, 0),
        firstServedMs: round(t.firstServedMs, 0),
      })),
    },
    failoverMs: {
      p50: round(median(failedOver), 0),
      max: round(max(failedOver), 0),
      leftConsulP50: round(median(raw.failover.map((t) => t.leftConsulMs)), 0),
      tries: raw.failover.map(roundRemoval),
    },
    scaleDownMs: { p50: round(median(scaledDown), 0), max: round(max(scaledDown), 0), tries: raw.scaleDown.map(roundRemoval) },
    failedRequests: {
      failover: sum(raw.failover.map((t) => t.failed)),
      scaleDown: sum(raw.scaleDown.map((t) => t.failed)),
      sentDuringFailover: sum(raw.failover.map((t) => t.requests)),
      sentDuringScaleDown: sum(raw.scaleDown.map((t) => t.requests)),
    },
    rssMB: {
      replica: round(raw.memory.replicaIdle, 1),
      watcher: round(raw.memory.watcher, 1),
      nginx: round(raw.memory.nginx, 1),
      replicaAfterLoad: round(raw.memory.replicaAfterLoad, 1),
      nginxPss: round(raw.memory.nginxPss, 1),
    },
    eventLatencyMs: {
      p50: round(median(raw.events.latencyMs), 1),
      p99: round(percentile(raw.events.latencyMs, 99), 1),
      writes: raw.events.latencyMs.length,
    },
    events: {
      writers: EVENT_WRITERS,
      targetPerSec: raw.events.targetPerSec,
      answeredPerSec: round(raw.events.answeredPerSec, 1),
      failed: raw.events.failed,
      failures: raw.events.failures,
      publishesPerWrite: round(raw.events.brokerMessages / raw.events.writes, 3),
    },
    writeRates: summarizeWrites(raw.writes),
    routeCost: summarizeRoutes(raw.routes),
    scale: summarizeScale(raw.scale),
    tlsCost: summarizeTls(raw.tls),
  };
  const comparison = summarizePeers(raw.peers, {
    startedAt: results.startedAt,
    machine: { cpuModel: raw.versions.cpu, cores: raw.cores, kernel: raw.versions.kernel },
    settings: {
      connections: raw.options.connections,
      durationSec: raw.options.peerDurationSec,
      repeats: raw.options.peerRepeats,
      discoveryTries: raw.options.peerDiscoveryTries,
      failoverTries: raw.options.peerFailoverTries,
      scaleDownTries: raw.options.peerScaleDownTries,
    },
  });
  return { ...results, targets: evaluateTargets(results), comparison };
}

export function summarizeAlone(raw: AloneMeasurements): AloneResults {
  const scale = raw.scale && summarizeScale(raw.scale);
  return {
    ...runContext(raw),
    only: raw.options.only,
    ...(scale ? { scale } : {}),
    ...(raw.tls ? { tlsCost: summarizeTls(raw.tls) } : {}),
    targets: scale ? scaleTargets({ scale }) : [],
  };
}

function runContext(raw: AloneMeasurements): Pick<BenchResults, RunContextKey> {
  const { outFile: _outFile, mode, ...settings } = raw.options;
  return {
    mode,
    startedAt: raw.startedAt.toISOString(),
    elapsedSec: round(raw.elapsedSec, 1),
    cores: raw.cores,
    pinning: raw.pinning,
    versions: raw.versions,
    settings,
  };
}

/** One figure of a repeat as [direct, balancer], rounded. */
const pair = (r: PairedRepeat, pick: (run: PathRun) => number, decimals: number): [number, number] => [
  round(pick(r.direct), decimals),
  round(pick(r.balancer), decimals),
];

const describeRepeat = (replicas: number, r: PairedRepeat) => ({
  replicas,
  directRps: round(r.direct.load.requestsPerSec, 0),
  balancerRps: round(r.balancer.load.requestsPerSec, 0),
  ratio: round(r.ratio, 3),
  p50Ms: pair(r, (p) => p.load.p50Ms, 3),
  p99Ms: pair(r, (p) => p.load.p99Ms, 3),
  meanMs: pair(r, (p) => p.load.meanMs, 3),
  connectionsOverRpsMs: pair(r, (p) => (p.connections / p.load.requestsPerSec) * 1000, 3),
  nginxCpuUsPerRequest: round(r.balancer.nginxCpuUsPerRequest, 1),
  replicaCpuUsPerRequest: pair(r, (p) => p.replicaCpuUsPerRequest, 1),
  watcherCpuUsPerRequest: round(r.balancer.watcherCpuUsPerRequest, 1),
  underTestCpuUsPerRequest: pair(r, (p) => p.underTestCpuUsPerRequest, 1),
  coreUsPerRequest: pair(r, (p) => p.coreUsPerRequest, 1),
  foreignCpuPercent: pair(r, (p) => p.foreignCpuPercent, 1),
});

function summarizeTls(rounds: TlsRound[]): BenchResults['tlsCost'] {
  const figures = (kind: keyof TlsRound): TlsCostFigures => {
    const mid = (pick: (run: EdgeRun) => number, decimals: number) => ({
      http: round(median(rounds.map((r) => pick(r[kind].http))), decimals),
      https: round(median(rounds.map((r) => pick(r[kind].https))), decimals),
    });
    const ratio = (pick: (run: EdgeRun) => number) => round(median(rounds.map((r) => pick(r[kind].https) / pick(r[kind].http))), 3);
    return {
      requestsPerSec: mid((run) => run.requestsPerSec, 0),
      nginxCpuUsPerRequest: mid((run) => run.nginxCpuUsPerRequest, 1),
      replicaCpuUsPerRequest: mid((run) => run.replicaCpuUsPerRequest, 1),
      throughputRatio: ratio((run) => run.requestsPerSec),
      nginxCpuRatio: ratio((run) => run.nginxCpuUsPerRequest),
    };
  };
  const both = (r: TlsRound, kind: keyof TlsRound, pick: (run: EdgeRun) => number, decimals: number): [number, number] => [
    round(pick(r[kind].http), decimals),
    round(pick(r[kind].https), decimals),
  ];
  const roundOf = (r: TlsRound, kind: keyof TlsRound): TlsRoundFigures => ({
    requestsPerSec: both(r, kind, (x) => x.requestsPerSec, 0),
    nginxCpuUsPerRequest: both(r, kind, (x) => x.nginxCpuUsPerRequest, 1),
    otherCpuPercent: both(r, kind, (x) => x.otherCpuPercent, 1),
    failures: both(r, kind, (x) => x.failures, 0),
  });
  return {
    certificate: 'ECDSA P-256, signed by a CA made for the run',
    keptAlive: figures('keptAlive'),
    newConnections: figures('newConnections'),
    failures: sum(
      rounds.flatMap((r) => [r.keptAlive.http, r.keptAlive.https, r.newConnections.http, r.newConnections.https].map((x) => x.failures)),
    ),
    rounds: rounds.map((r) => ({ keptAlive: roundOf(r, 'keptAlive'), newConnections: roundOf(r, 'newConnections') })),
  };
}

function summarizeRoutes(rounds: RouteRound[]): BenchResults['routeCost'] {
  const mid = (pick: (run: RouteRun) => number, decimals: number) => ({
    one: round(median(rounds.map((r) => pick(r.one))), decimals),
    several: round(median(rounds.map((r) => pick(r.several))), decimals),
  });
  const both = (r: RouteRound, pick: (run: RouteRun) => number, decimals: number): [number, number] => [
    round(pick(r.one), decimals),
    round(pick(r.several), decimals),
  ];
  return {
    paths: ROUTE_PATHS,
    services: mid((r) => r.services, 0),
    routes: mid((r) => r.routes, 0),
    nginxCpuUsPerRequest: mid((r) => r.run.nginxCpuUsPerRequest, 1),
    ratio: round(median(rounds.map((r) => r.several.run.nginxCpuUsPerRequest / r.one.run.nginxCpuUsPerRequest)), 3),
    requestsPerSec: mid((r) => r.run.load.requestsPerSec, 0),
    rounds: rounds.map((r) => ({
      nginxCpuUsPerRequest: both(r, (x) => x.run.nginxCpuUsPerRequest, 1),
      requestsPerSec: both(r, (x) => x.run.load.requestsPerSec, 0),
      non2xx: both(r, (x) => x.run.load.non2xx, 0),
      errors: both(r, (x) => x.run.load.errors + x.run.load.timeouts, 0),
      foreignCpuPercent: both(r, (x) => x.run.foreignCpuPercent, 1),
    })),
  };
}

function summarizeScale(steps: ScaleStep[]): BenchResults['scale'] {
  const spread = (values: number[]) => ({ p50: round(median(values), 0), max: round(max(values), 0) });
  const firstCpu = steps[0]?.run.nginxCpuUsPerRequest ?? Number.NaN;
  return steps.map((s) => ({
    services: s.services,
    addMs: spread(s.tries.map((t) => t.addMs)),
    removeMs: spread(s.tries.map((t) => t.removeMs)),
    reloadMs: spread(s.tries.flatMap((t) => [t.addReloadMs, t.removeReloadMs])),
    nginxCpuUsPerRequest: round(s.run.nginxCpuUsPerRequest, 1),
    cpuVsFirst: round(s.run.nginxCpuUsPerRequest / firstCpu, 3),
    requestsPerSec: round(s.run.load.requestsPerSec, 0),
    non2xx: s.run.load.non2xx + s.run.load.errors + s.run.load.timeouts,
    watcherRssMB: round(s.watcherRssMB, 1),
    tries: s.tries.map((t) => ({
      addMs: round(t.addMs, 0),
      removeMs: round(t.removeMs, 0),
      addReloadMs: round(t.addReloadMs, 0),
      removeReloadMs: round(t.removeReloadMs, 0),
    })),
  }));
}

function summarizeWrites(steps: WriteStep[]): BenchResults['writeRates'] {
  const first = steps[0];
  const last = steps.at(-1);
  return {
    steps: steps.map((s) => ({
      ...s,
      seedSec: round(s.seedSec, 1),
      beforeListPerSec: round(s.beforeListPerSec, 0),
      afterListPerSec: round(s.afterListPerSec, 0),
    })),
    ratio: first && last ? round(last.afterListPerSec / first.afterListPerSec, 3) : Number.NaN,
    ratioBeforeList: first && last ? round(last.beforeListPerSec / first.beforeListPerSec, 3) : Number.NaN,
  };
}

/** Issue 23's targets, at the largest size measured (1,000 in a full run) and at one service. */
function scaleTargets(r: Pick<BenchResults, 'scale'>): Target[] {
  const largest = r.scale.at(-1);
  const one = r.scale.find((s) => s.services === 1);
  if (!largest || !one) return [];
  const at = `at ${largest.services} routed services`;
  return [
    { figure: `change routed p50 ${at}`, target: '< 1000 ms', met: largest.addMs.p50 < 1000 && largest.removeMs.p50 < 1000 },
    { figure: `change routed max ${at}`, target: '< 2000 ms', met: largest.addMs.max < 2000 && largest.removeMs.max < 2000 },
    { figure: `nginx CPU per request ${at} vs 1`, target: '<= 1.1x', met: largest.cpuVsFirst <= 1.1 },
    { figure: 'watcher RSS at 1 routed service', target: '<= 50 MB', met: one.watcherRssMB <= 50 },
    { figure: `watcher RSS ${at}`, target: '<= 80 MB', met: largest.watcherRssMB <= 80 },
  ];
}

const roundRemoval = (t: RemovalTry): RemovalTry => ({ ...t, leftConsulMs: round(t.leftConsulMs, 0), removedMs: round(t.removedMs, 0) });

/** The project's performance targets, checked against the figures (a missing figure, NaN, never meets a target). */
function evaluateTargets(r: Omit<BenchResults, 'targets' | 'comparison'>): Target[] {
  return [
    { figure: 'throughput ratio balancer/direct, 1 replica', target: '>= 0.5', met: r.throughputRatio >= 0.5 },
    { figure: 'nginx CPU per proxied request', target: '< 30 µs', met: r.nginxCpuUsPerRequest < 30 },
    { figure: 'p50 added by the balancer', target: '<= 1 ms', met: r.p50Ms.balancer - r.p50Ms.direct <= 1 },
    { figure: 'p99 through the balancer', target: '< 10 ms', met: r.p99Ms.balancer < 10 },
    { figure: 'discovery add p50', target: '< 1000 ms', met: r.discoveryAddMs.p50 < 1000 },
    { figure: 'discovery add max', target: '< 2000 ms', met: r.discoveryAddMs.max < 2000 },
    { figure: 'failover p50', target: '< 2000 ms', met: r.failoverMs.p50 < 2000 },
    { figure: 'requests failed during failover', target: '0', met: r.failedRequests.failover === 0 },
    { figure: 'requests failed during scale-down', target: '0', met: r.failedRequests.scaleDown === 0 },
    { figure: 'RSS of an idle replica', target: '< 80 MB', met: r.rssMB.replica < 80 },
    { figure: 'RSS of the watcher', target: '< 80 MB', met: r.rssMB.watcher < 80 },
    { figure: 'write to SSE event p50', target: '< 50 ms', met: r.eventLatencyMs.p50 < 50 },
    { figure: `publishes per write, ${r.events.writers} hello replicas`, target: '<= 1.05', met: r.events.publishesPerWrite <= 1.05 },
    {
      figure: `writes per second at ${r.writeRates.steps.at(-1)?.users} users over ${r.writeRates.steps[0]?.users}, after a list request`,
      target: '>= 0.8',
      met: r.writeRates.ratio >= 0.8,
    },
    ...scaleTargets(r),
  ];
}
