// `npm run bench [-- --smoke] [-- --only PHASE,...]`: the balancer against direct access, discovery, failover
// and memory, with real Consul, nginx and service replicas on loopback. See bench/README.md.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sendRequests } from '../harness/load';
import { startLoadGenerator, type LoadGenerator } from './load-generator';
import type { SingleRequestsReport } from './load-protocol';
import { parseOptions, type BenchOptions } from './options';
import { oursPeer } from './peers/ours';
import type { Peer } from './peers/peer';
import { measureDiscovery } from './phases/discovery';
import { EVENT_WRITERS, measureEvents, startBenchBroker } from './phases/events';
import { measureWriteRates } from './phases/writes';
import { comparePeers } from './phases/peers';
import { measureRemoval } from './phases/removal';
import { measureRouteCost } from './phases/routes';
import { measureScale } from './phases/scale';
import { measureThroughput } from './phases/throughput';
import { measureTlsCost } from './phases/tls';
import { affinityOf, pinProcess, planCpus, type CpuPlan } from './pinning';
import { pssMB, readStat, rssMB } from './proc-stats';
import {
  formatContext,
  formatPeerTable,
  formatResultsMarkdown,
  formatRunContext,
  formatScaleTable,
  formatTable,
  formatTlsTable,
  writeResults,
} from './report';
import { summarize, summarizeAlone, type AloneMeasurements, type RawMeasurements } from './results';
import { startSystemUnderTest, type BenchReplica, type SystemUnderTest } from './system-under-test';
import { collectVersions } from './versions';

const log = (message: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

/** Watcher CPU over a quiet window, as a percentage of one core. */
async function idleCpuPercent(pid: number, seconds: number): Promise<number> {
  const before = readStat(pid)?.cpuUs ?? Number.NaN;
  const started = performance.now();
  await sleep(seconds * 1000);
  const after = readStat(pid)?.cpuUs ?? Number.NaN;
  return ((after - before) / 1000 / (performance.now() - started)) * 100;
}

/** Single timed requests, alternating between the two paths in chunks so both see the same noise. */
async function singleRequests(load: LoadGenerator, direct: string, balancer: string, total: number) {
  const chunks = 5;
  const reports = { direct: [] as SingleRequestsReport[], balancer: [] as SingleRequestsReport[] };
  for (let i = 0; i < chunks; i++) {
    reports.direct.push(await load.singleRequests(direct, Math.ceil(total / chunks)));
    reports.balancer.push(await load.singleRequests(balancer, Math.ceil(total / chunks)));
  }
  return reports;
}

function nginxMemory(sut: SystemUnderTest) {
  const { master, workers } = sut.nginx();
  const pids = master ? [master, ...workers] : [];
  return {
    rss: pids.length ? pids.reduce((s, pid) => s + rssMB(pid), 0) : Number.NaN,
    pss: pids.length ? pids.reduce((s, pid) => s + pssMB(pid), 0) : Number.NaN,
  };
}

/** The CPUs the run's processes actually have, read back (`first` is hello's first replica). */
function observedAffinity(sut: SystemUnderTest, load: LoadGenerator, first: BenchReplica): Record<string, string> {
  const nginx = sut.nginx();
  return {
    benchmark: affinityOf(process.pid),
    loadGenerator: affinityOf(load.pid),
    consul: affinityOf(sut.consulPid),
    replica: affinityOf(first.child.pid!),
    watcher: affinityOf(sut.balancer.child.pid!),
    nginxMaster: nginx.master ? affinityOf(nginx.master) : 'not found',
    nginxWorkers: nginx.workers.map(affinityOf).join(' ') || 'not found',
  };
}

/** `--only`: the phases named, in their order, on one hello replica. */
async function runAlone(
  options: BenchOptions,
  plan: CpuPlan,
  sut: SystemUnderTest,
  load: LoadGenerator,
): Promise<Omit<AloneMeasurements, 'elapsedSec' | 'startedAt' | 'versions' | 'options' | 'cores'>> {
  const first = await sut.startReplica('bench-1');
  await sut.waitUpstream(first, true);
  const ctx = { sut, load, first, options, testCpu: plan.testCpu, log };
  const measured: Partial<Pick<RawMeasurements, 'scale' | 'tls'>> = {};
  for (const phase of options.only) {
    log(`${phase}, alone`);
    if (phase === 'scale') measured.scale = await measureScale(ctx, options.scaleSizes, options.scaleTries);
    else measured.tls = await measureTlsCost(ctx);
  }
  const pinning = { description: plan.description, loadCpu: plan.loadCpu ?? null, testCpu: plan.testCpu ?? null };
  return { ...measured, pinning: { ...pinning, observed: observedAffinity(sut, load, first) } };
}

async function runBench(
  options: BenchOptions,
  plan: CpuPlan,
  sut: SystemUnderTest,
  load: LoadGenerator,
  track: (peer: Peer) => void,
): Promise<Omit<RawMeasurements, 'elapsedSec' | 'startedAt' | 'versions' | 'options' | 'cores'>> {
  const first = await sut.startReplica('bench-1');
  await sut.waitUpstream(first, true);
  await sendRequests(`${first.url}/`, 100);
  await sendRequests(`${sut.balancerUrl}/`, 100);
  await sleep(1000);
  const replicaIdle = rssMB(first.child.pid!);
  log(`idle replica RSS ${replicaIdle.toFixed(1)} MB; sampling the idle watcher for ${options.idleSampleSec} s`);
  const watcherIdleCpuPercent = await idleCpuPercent(sut.balancer.child.pid!, options.idleSampleSec);

  const observed = observedAffinity(sut, load, first);

  log(`throughput and latency: ${options.repeats} repeats of ${options.durationSec} s per path, ${options.connections} connections`);
  let second: BenchReplica | undefined;
  const throughput = await measureThroughput(
    sut,
    load,
    first,
    async () => {
      second = await sut.startReplica('bench-2');
      await sut.waitUpstream(second, true);
      return second;
    },
    options,
    plan.testCpu,
  );

  log(`single timed requests: ${options.singleRequests} per path`);
  const single = await singleRequests(load, `${first.url}/`, `${sut.balancerUrl}/`, options.singleRequests);
  const replicaAfterLoad = rssMB(first.child.pid!);
  if (second) {
    await second.stop(5000);
    await sut.waitUpstream(second, false);
  }

  log(`discovery add: ${options.discoveryTries} tries`);
  const ours = oursPeer(sut);
  const discovery = await measureDiscovery(sut, ours, options.discoveryTries);
  log(`failover (SIGKILL) under the steady loop: ${options.failoverTries} tries`);
  const failover = await measureRemoval(sut, ours, 'SIGKILL', options.failoverTries);
  log(`scale-down (SIGTERM) under the steady loop: ${options.scaleDownTries} tries`);
  const scaleDown = await measureRemoval(sut, ours, 'SIGTERM', options.scaleDownTries);

  const nginxMem = nginxMemory(sut);
  const watcherRss = rssMB(sut.balancer.child.pid!);
  log('peers side by side: ours, HAProxy with Consul DNS, static nginx without and with the JSON access log');
  const peers = await comparePeers({ sut, load, first, options, testCpu: plan.testCpu, track, log });
  log(`gateway CPU per request, 1 against ${options.routedServices} routed services: ${options.routeRounds} rounds`);
  const routes = await measureRouteCost({ sut, load, first, options, testCpu: plan.testCpu, log });
  log(`the gateway at ${options.scaleSizes.join(', ')} routed services: ${options.scaleTries} added and removed at each`);
  const scale = await measureScale({ sut, load, first, options, testCpu: plan.testCpu, log }, options.scaleSizes, options.scaleTries);
  log(`HTTPS against HTTP at the edge: ${options.tlsRounds} rounds`);
  const tls = await measureTlsCost({ sut, load, first, options, testCpu: plan.testCpu, log });
  const broker = await startBenchBroker(sut.consul, plan.testCpu);
  let events, writes;
  try {
    log(
      `write → event on the SSE stream: ${options.eventWrites} writes at ${options.eventWritesPerSec}/s through ${EVENT_WRITERS} replicas`,
    );
    events = await measureEvents(sut.consul, broker, plan.testCpu, options.eventWritesPerSec, options.eventWrites);
    log(`writes per second at ${options.writeSizes.join(' and ')} users`);
    writes = await measureWriteRates(sut.consul, plan.testCpu, options.writeSizes, options.writeSec);
  } finally {
    await broker.close();
  }
  return {
    pinning: { description: plan.description, loadCpu: plan.loadCpu ?? null, testCpu: plan.testCpu ?? null, observed },
    throughput,
    watcherIdleCpuPercent,
    single,
    discovery,
    failover,
    scaleDown,
    memory: { replicaIdle, replicaAfterLoad, watcher: watcherRss, nginx: nginxMem.rss, nginxPss: nginxMem.pss },
    peers,
    routes,
    scale,
    tls,
    events,
    writes,
  };
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const startedAt = new Date();
  const started = performance.now();
  const plan = planCpus();
  // The benchmark's own polling and request loops belong to the load side.
  pinProcess(process.pid, plan.loadCpu);
  log(`${options.mode} run; ${plan.description}`);

  const sut = await startSystemUnderTest(plan.testCpu);
  let load: LoadGenerator | undefined;
  const peers = new Set<Peer>();
  const cleanUp = async () => {
    await load?.stop();
    // Stopping a stopped peer is a no-op; a peer still running after a failure or Ctrl-C stops here.
    await Promise.all([...peers].map((p) => p.stop()));
    await sut.stop();
  };
  const onSignal = () => void cleanUp().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const overtime = setTimeout(
    () => {
      log(`stopped: the run went past its bound of ${options.timeLimitSec} s`);
      void cleanUp().finally(() => process.exit(1));
    },
    options.timeLimitSec * 1000 - (performance.now() - started),
  );
  overtime.unref();

  let measured, measuredAlone;
  try {
    load = await startLoadGenerator(plan.loadCpu);
    if (options.only.length) measuredAlone = await runAlone(options, plan, sut, load);
    else measured = await runBench(options, plan, sut, load, (peer) => peers.add(peer));
  } catch (error) {
    log(`balancer output (last lines):\n${sut.balancer.output().slice(-2000)}`);
    throw error;
  } finally {
    await cleanUp();
  }

  const context = {
    options,
    startedAt,
    elapsedSec: (performance.now() - started) / 1000,
    cores: plan.cores,
    versions: collectVersions(),
  };
  let tables: string[] = [];
  if (measured) {
    const results = summarize({ ...measured, ...context });
    writeResults(options.outFile, results);
    if (options.mode === 'full') {
      const markdownFile = path.join(path.dirname(options.outFile), 'RESULTS.md');
      fs.writeFileSync(markdownFile, formatResultsMarkdown(results));
      log(`figures written to ${markdownFile}`);
    }
    tables = [
      formatContext(results),
      formatTable(results),
      formatPeerTable(results.comparison),
      formatScaleTable(results),
      formatTlsTable(results),
    ];
  } else if (measuredAlone) {
    const results = summarizeAlone({ ...measuredAlone, ...context });
    writeResults(options.outFile, results);
    const { scale, tlsCost } = results;
    tables = [formatRunContext(results)];
    if (scale) tables.push(formatScaleTable({ ...results, scale }));
    if (tlsCost) tables.push(formatTlsTable({ ...results, tlsCost }));
  }
  process.stdout.write(`\n${tables.join('\n\n')}\n\nresults written to ${options.outFile}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
