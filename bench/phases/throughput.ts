import type { Replica } from '../../harness/service';
import type { LoadGenerator } from '../load-generator';
import type { AutocannonReport } from '../load-protocol';
import type { BenchOptions } from '../options';
import { cpuBusyUs, readStat } from '../proc-stats';
import { median } from '../stats';
import { nginxWorkersCpuUs, type SystemUnderTest } from '../system-under-test';

export interface PathRun {
  connections: number;
  load: AutocannonReport;
  /** CPU spent per request served in this run, in µs. */
  replicaCpuUsPerRequest: number;
  nginxCpuUsPerRequest: number;
  /** Watcher CPU over the run, as a percentage of one core, and per request. */
  watcherCpuPercent: number;
  watcherCpuUsPerRequest: number;
  /** CPU of all processes under test (replicas, watcher, nginx, Consul) per request. */
  underTestCpuUsPerRequest: number;
  /** Busy time of the whole test core per request: the processes under test, the kernel's own work and any other work. */
  coreUsPerRequest: number;
  /**
   * Share of the test core (in % of its time) busy with anything but the processes under test: other
   * work on this shared machine. High values mean a noisy repeat, which flatters the ratio (the scheduler
   * shares a core per task, and the balanced path has more tasks than the direct one).
   */
  foreignCpuPercent: number;
}

export interface PairedRepeat {
  direct: PathRun;
  balancer: PathRun;
  /** balancer/direct requests per second, within this repeat. */
  ratio: number;
}

export interface ThroughputResult {
  oneReplica: PairedRepeat[];
  twoReplicas: PairedRepeat[];
}

/** CPU counters of the processes under test and of their core, sampled before and after a run. */
function cpuSnapshot(sut: SystemUnderTest, replicas: Replica[], testCpu: number | undefined) {
  const nginx = sut.nginx();
  const replicasUs = replicas.reduce((sum, r) => sum + (readStat(r.child.pid!)?.cpuUs ?? Number.NaN), 0);
  const watcherUs = readStat(sut.balancer.child.pid!)?.cpuUs ?? Number.NaN;
  const workersUs = nginxWorkersCpuUs(nginx);
  const nginxUs = workersUs + (nginx.master ? (readStat(nginx.master)?.cpuUs ?? 0) : 0);
  const consulUs = readStat(sut.consulPid)?.cpuUs ?? 0;
  return {
    at: performance.now(),
    replicas: replicasUs,
    nginx: workersUs,
    watcher: watcherUs,
    undertest: replicasUs + watcherUs + nginxUs + consulUs,
    core: testCpu === undefined ? Number.NaN : cpuBusyUs(testCpu),
  };
}

/** One closed-loop run on `url` (cycling through `paths` on its host when given), with the CPU it cost. */
export async function measure(
  sut: SystemUnderTest,
  load: LoadGenerator,
  url: string,
  replicas: Replica[],
  options: BenchOptions,
  testCpu: number | undefined,
  paths?: string[],
): Promise<PathRun> {
  const before = cpuSnapshot(sut, replicas, testCpu);
  const report = await load.autocannon({ url, connections: options.connections, durationSec: options.durationSec, paths });
  const after = cpuSnapshot(sut, replicas, testCpu);
  const requests = Math.max(report.requests, 1);
  const wallUs = (after.at - before.at) * 1000;
  return {
    connections: options.connections,
    load: report,
    replicaCpuUsPerRequest: (after.replicas - before.replicas) / requests,
    nginxCpuUsPerRequest: (after.nginx - before.nginx) / requests,
    watcherCpuPercent: ((after.watcher - before.watcher) / wallUs) * 100,
    watcherCpuUsPerRequest: (after.watcher - before.watcher) / requests,
    underTestCpuUsPerRequest: (after.undertest - before.undertest) / requests,
    coreUsPerRequest: (after.core - before.core) / requests,
    foreignCpuPercent: Math.max(0, ((after.core - before.core - (after.undertest - before.undertest)) / wallUs) * 100),
  };
}

/**
 * Closed-loop runs at fixed connections and duration, each balancer run paired with a direct run on the
 * same replica right next to it (in alternating order), so that each ratio is taken within one repeat on
 * this noisy machine.
 */
export async function measureThroughput(
  sut: SystemUnderTest,
  load: LoadGenerator,
  first: Replica,
  addSecond: () => Promise<Replica>,
  options: BenchOptions,
  testCpu: number | undefined,
): Promise<ThroughputResult> {
  const direct = `${first.url}/`;
  const viaBalancer = `${sut.balancerUrl}/`;
  const warm = { connections: options.connections, durationSec: options.warmupSec };
  await load.autocannon({ url: direct, ...warm });
  await load.autocannon({ url: viaBalancer, ...warm });

  const pairs = async (replicas: Replica[]): Promise<PairedRepeat[]> => {
    const repeats: PairedRepeat[] = [];
    for (let i = 0; i < options.repeats; i++) {
      const directFirst = i % 2 === 0;
      const d0 = directFirst ? await measure(sut, load, direct, [first], options, testCpu) : undefined;
      const b = await measure(sut, load, viaBalancer, replicas, options, testCpu);
      const d = d0 ?? (await measure(sut, load, direct, [first], options, testCpu));
      repeats.push({ direct: d, balancer: b, ratio: b.load.requestsPerSec / d.load.requestsPerSec });
    }
    return repeats;
  };

  const oneReplica = await pairs([first]);
  const second = await addSecond();
  // A replica just started runs cold (V8 has not optimised its handlers yet): warm it like the first.
  await load.autocannon({ url: `${second.url}/`, ...warm });
  await load.autocannon({ url: viaBalancer, ...warm });
  const twoReplicas = await pairs([first, second]);
  return { oneReplica, twoReplicas };
}

/** Median of one figure over the repeats. */
export const medianOf = (repeats: PairedRepeat[], pick: (r: PairedRepeat) => number): number => median(repeats.map(pick));
