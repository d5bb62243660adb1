import test from 'ava';
import { parseOptions } from '../../bench/options';
import type { PeerColumn } from '../../bench/peer-results';
import { formatResultsMarkdown } from '../../bench/report';
import type { BenchResults, TlsCostFigures } from '../../bench/results';

// bench/RESULTS.md is the bench's own output: a results object in, the run's date, machine and versions, and every
// table with its targets out. The per-try and per-repeat details stay in results.json, so they are empty here.

const { outFile: _outFile, mode: _mode, ...settings } = parseOptions([]);

const peer = (requestsPerSec: number): PeerColumn => ({
  description: '',
  requestsPerSec: { direct: 40000, peer: requestsPerSec },
  throughputRatio: requestsPerSec / 40000,
  proxyCpuUsPerRequest: 21.5,
  cpuPerRequestVsDirect: 2,
  addedP50Ms: 0.2,
  addedP99Ms: 0.4,
  discoveryAddMs: { p50: 150, max: 250 },
  failoverMs: { p50: 700, max: 1100 },
  scaleDownMs: { p50: 180, max: 200 },
  failedRequests: { failover: 0, sentDuringFailover: 9000, scaleDown: 0, sentDuringScaleDown: 4000 },
  retriedRequests: { failover: 3, scaleDown: 0 },
  loadRunFailures: { non2xx: 0, errors: 0 },
  rssMB: 70,
  foreignCpuPercent: { median: 0.1, max: 1 },
  affinity: '1',
  tries: { discovery: [], failover: [], scaleDown: [] },
});

const tls: TlsCostFigures = {
  requestsPerSec: { http: 19000, https: 17000 },
  nginxCpuUsPerRequest: { http: 22, https: 26 },
  replicaCpuUsPerRequest: { http: 24, https: 24 },
  throughputRatio: 0.89,
  nginxCpuRatio: 1.18,
};

const results: BenchResults = {
  mode: 'full',
  startedAt: '2026-12-07T03:21:44.000Z',
  elapsedSec: 640.2,
  cores: 2,
  pinning: { description: 'taskset: load on CPU 0, under test on CPU 1', loadCpu: 0, testCpu: 1, observed: {} },
  versions: {
    node: 'v20.20.2',
    nginx: '1.22.1',
    haproxy: '2.6.12',
    consul: '1.8.7',
    autocannon: '8.0.0',
    hono: '4.0.0',
    honoNodeServer: '1.0.0',
    kernel: '6.1.0-test',
    cpu: 'Test CPU @ 2.0GHz',
    memory: '7.8 GiB',
  },
  settings,
  throughputRatio: 0.48,
  throughputRatioTwoReplicas: 0.35,
  cpuCostRatio: 0.49,
  requestsPerSec: { direct: 40000, balancer: 19200, balancerTwoReplicas: 14000 },
  foreignCpuPercent: { median: 0.2, max: 1.5 },
  repeats: [],
  nginxCpuUsPerRequest: 22.8,
  replicaCpuUsPerRequest: { direct: 23.5, balancer: 25.9 },
  watcherCpuPercent: { idle: 0, load: 0 },
  p50Ms: { direct: 0.16, balancer: 0.37 },
  p99Ms: { direct: 0.6, balancer: 1.01 },
  singleRequestMs: { direct: { p50: 0.21, p99: 2.1 }, balancer: { p50: 0.28, p99: 2.5 } },
  discoveryAddMs: { p50: 201, max: 291, passingP50: 123, inUpstreamsP50: 198, passingToServedP50: 80, tries: [] },
  failoverMs: { p50: 740, max: 1120, leftConsulP50: 577, tries: [] },
  scaleDownMs: { p50: 179, max: 210, tries: [] },
  failedRequests: { failover: 0, scaleDown: 0, sentDuringFailover: 18720, sentDuringScaleDown: 7264 },
  rssMB: { replica: 62.1, watcher: 59.2, nginx: 11.5, replicaAfterLoad: 93.4, nginxPss: 6.4 },
  eventLatencyMs: { p50: 4.9, p99: 51.5, writes: 2000 },
  events: { writers: 3, targetPerSec: 200, answeredPerSec: 200, failed: 0, failures: {}, publishesPerWrite: 1 },
  writeRates: {
    steps: [
      { users: 1000, seedSec: 0.1, beforeListPerSec: 900, afterListPerSec: 880, failed: 0 },
      { users: 100_000, seedSec: 5, beforeListPerSec: 850, afterListPerSec: 840, failed: 0 },
    ],
    ratio: 0.95,
    ratioBeforeList: 0.94,
  },
  routeCost: {
    paths: [],
    services: { one: 1, several: 10 },
    routes: { one: 2, several: 20 },
    nginxCpuUsPerRequest: { one: 22, several: 22.4 },
    ratio: 1.02,
    requestsPerSec: { one: 19000, several: 18800 },
    rounds: [],
  },
  scale: [1, 1000].map((services) => ({
    services,
    addMs: { p50: 300, max: 400 },
    removeMs: { p50: 250, max: 350 },
    reloadMs: { p50: 40, max: 60 },
    nginxCpuUsPerRequest: 22,
    cpuVsFirst: 1,
    requestsPerSec: 19000,
    non2xx: 0,
    watcherRssMB: 60,
    tries: [],
  })),
  tlsCost: { certificate: 'ECDSA P-256', keptAlive: tls, newConnections: tls, failures: 0, rounds: [] },
  targets: [
    { figure: 'throughput ratio balancer/direct, 1 replica', target: '>= 0.5', met: false },
    { figure: 'discovery add p50', target: '< 1000 ms', met: true },
    { figure: 'routed service added, 1000 services', target: '< 2000 ms', met: true },
  ],
  comparison: {
    startedAt: '2026-12-07T03:21:44.000Z',
    machine: { cpuModel: 'Test CPU @ 2.0GHz', cores: 2, kernel: '6.1.0-test' },
    settings: { connections: 8, durationSec: 3, repeats: 3, discoveryTries: 5, failoverTries: 5, scaleDownTries: 3 },
    peers: { ours: peer(19200), 'haproxy-dns': peer(21200), 'nginx-static': peer(22800), 'nginx-static-log': peer(22000) },
    targets: [{ figure: 'ours: CPU per request within 10 % of static nginx with the JSON log', target: '<= 1.10', met: true }],
  },
};

test('RESULTS.md carries the run, the machine and the versions', (t) => {
  const md = formatResultsMarkdown(results);
  t.true(md.startsWith('# Benchmark results\n'));
  t.regex(md, /^- Run: started 2026-12-07T03:21:44\.000Z, 640\.2 s$/m);
  t.regex(md, /^- Machine: 2 cores \(Test CPU @ 2\.0GHz\), 7\.8 GiB of memory, kernel 6\.1\.0-test$/m);
  t.regex(md, /^- Versions: node v20\.20\.2, nginx 1\.22\.1, haproxy 2\.6\.12, consul 1\.8\.7, /m);
  t.regex(md, /^- Other work on the test core during the load runs: median 0\.2 %, max 1\.5 % of its time$/m);
  t.true(md.endsWith('\n'));
});

test('RESULTS.md gives each figure with its target and whether it was met', (t) => {
  const md = formatResultsMarkdown(results);
  t.regex(md, /^\| Ratio balancer\/direct, 1 replica \| 0\.48 \| >= 0\.5 \| MISSED \|$/m);
  t.regex(md, /^\| Discovery add p50 \(0 tries\) \| 201 ms \| < 1000 ms \| met \|$/m);
  t.regex(md, /^- routed service added, 1000 services: target < 2000 ms, met$/m);
  t.regex(md, /^- ours: CPU per request within 10 % of static nginx with the JSON log: target <= 1\.10, met$/m);
});

test('RESULTS.md has one section per table, the peers side by side in columns', (t) => {
  const md = formatResultsMarkdown(results);
  const headings = [...md.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
  t.deepEqual(headings, ['The balancer against direct access', 'Peers side by side', 'The gateway at scale', 'HTTPS at the edge']);
  t.regex(md, /^\| Figure \| ours \| haproxy-dns \| nginx-static \| nginx-static-log \|$/m);
  t.regex(
    md,
    /^\| Throughput, req\/s \(ratio to direct\) \| 19200 \(0\.48\) \| 21200 \(0\.53\) \| 22800 \(0\.57\) \| 22000 \(0\.55\) \|$/m,
  );
  t.regex(md, /^\| 1000 \| 300 ms \/ 400 ms \|/m);
  t.regex(md, /^\| Throughput, kept-alive \(8 connections\) \| 19000 req\/s \| 17000 req\/s \| 0\.89 \|$/m);
});
