import fs from 'node:fs';
import path from 'node:path';
import type { PeerColumn, PeerComparison } from './peer-results';
import { PEER_NAMES } from './peers/peer';
import type { AloneResults, BenchResults, TlsCostFigures } from './results';
import type { Target } from './stats';
import type { Versions } from './versions';

const fmt = (value: number, unit = '', decimals?: number): string =>
  Number.isFinite(value) ? `${decimals === undefined ? String(value) : value.toFixed(decimals)}${unit}` : 'n/a';

/** The results as a Markdown table (readable in a terminal, and a section of bench/RESULTS.md). */
export function formatTable(r: BenchResults): string {
  const met = (figure: string) => {
    const target = r.targets.find((t) => t.figure === figure);
    return target ? [target.target, target.met ? 'met' : 'MISSED'] : ['', ''];
  };
  const rows: string[][] = [
    ['Throughput, 1 replica direct', fmt(r.requestsPerSec.direct, ' req/s'), '', ''],
    ['Throughput, 1 replica via balancer', fmt(r.requestsPerSec.balancer, ' req/s'), '', ''],
    ['Ratio balancer/direct, 1 replica', fmt(r.throughputRatio, '', 2), ...met('throughput ratio balancer/direct, 1 replica')],
    ['CPU per request of the processes under test, direct/balancer', fmt(r.cpuCostRatio, '', 2), '', ''],
    [
      'Throughput, 2 replicas via balancer',
      `${fmt(r.requestsPerSec.balancerTwoReplicas, ' req/s')} (ratio ${fmt(r.throughputRatioTwoReplicas, '', 2)})`,
      '',
      '',
    ],
    ['nginx CPU per proxied request', fmt(r.nginxCpuUsPerRequest, ' µs'), ...met('nginx CPU per proxied request')],
    [
      'Replica CPU per request, direct / via balancer',
      `${fmt(r.replicaCpuUsPerRequest.direct, ' µs')} / ${fmt(r.replicaCpuUsPerRequest.balancer, ' µs')}`,
      '',
      '',
    ],
    ['Watcher CPU, idle / under load', `${fmt(r.watcherCpuPercent.idle, ' %')} / ${fmt(r.watcherCpuPercent.load, ' %')} of a core`, '', ''],
    [
      `p50, ${r.settings.connections} conns, direct / via balancer`,
      `${fmt(r.p50Ms.direct, ' ms')} / ${fmt(r.p50Ms.balancer, ' ms')}`,
      ...met('p50 added by the balancer'),
    ],
    [
      `p99, ${r.settings.connections} conns, direct / via balancer`,
      `${fmt(r.p99Ms.direct, ' ms')} / ${fmt(r.p99Ms.balancer, ' ms')}`,
      ...met('p99 through the balancer'),
    ],
    [
      'Single request p50, direct / via balancer',
      `${fmt(r.singleRequestMs.direct.p50, ' ms')} / ${fmt(r.singleRequestMs.balancer.p50, ' ms')}`,
      '',
      '',
    ],
    [
      'Single request p99, direct / via balancer',
      `${fmt(r.singleRequestMs.direct.p99, ' ms')} / ${fmt(r.singleRequestMs.balancer.p99, ' ms')}`,
      '',
      '',
    ],
    [`Discovery add p50 (${r.discoveryAddMs.tries.length} tries)`, fmt(r.discoveryAddMs.p50, ' ms'), ...met('discovery add p50')],
    ['Discovery add max', fmt(r.discoveryAddMs.max, ' ms'), ...met('discovery add max')],
    [
      '  of which: passing in Consul / in upstreams (p50); passing → first proxied (p50)',
      `${fmt(r.discoveryAddMs.passingP50, ' ms')} / ${fmt(r.discoveryAddMs.inUpstreamsP50, ' ms')}; ${fmt(r.discoveryAddMs.passingToServedP50, ' ms')}`,
      '',
      '',
    ],
    [`Failover p50 (${r.failoverMs.tries.length} SIGKILLs)`, fmt(r.failoverMs.p50, ' ms'), ...met('failover p50')],
    ['Failover max', `${fmt(r.failoverMs.max, ' ms')} (left Consul p50 ${fmt(r.failoverMs.leftConsulP50, ' ms')})`, '', ''],
    [
      'Requests failed during failover',
      `${r.failedRequests.failover} of ${r.failedRequests.sentDuringFailover}`,
      ...met('requests failed during failover'),
    ],
    [`Scale-down p50 (${r.scaleDownMs.tries.length} SIGTERMs)`, fmt(r.scaleDownMs.p50, ' ms'), '', ''],
    [
      'Requests failed during scale-down',
      `${r.failedRequests.scaleDown} of ${r.failedRequests.sentDuringScaleDown}`,
      ...met('requests failed during scale-down'),
    ],
    [
      'RSS, idle replica (after load)',
      `${fmt(r.rssMB.replica, ' MB')} (${fmt(r.rssMB.replicaAfterLoad, ' MB')})`,
      ...met('RSS of an idle replica'),
    ],
    ['RSS, watcher', fmt(r.rssMB.watcher, ' MB'), ...met('RSS of the watcher')],
    ['RSS, nginx master + workers (PSS)', `${fmt(r.rssMB.nginx, ' MB')} (${fmt(r.rssMB.nginxPss, ' MB')})`, '', ''],
    [
      `Write → event on the SSE stream p50 / p99 (${r.eventLatencyMs.writes} writes at ${r.events.targetPerSec}/s, ${r.events.writers} hello replicas)`,
      `${fmt(r.eventLatencyMs.p50, ' ms')} / ${fmt(r.eventLatencyMs.p99, ' ms')}`,
      ...met('write to SSE event p50'),
    ],
    [
      `Publishes per write (nats-server's counters), ${r.events.writers} hello replicas`,
      fmt(r.events.publishesPerWrite, '', 3),
      ...met(`publishes per write, ${r.events.writers} hello replicas`),
    ],
    ...r.writeRates.steps.map((s) => [
      `Writes per second at ${s.users} users, before / after a list request`,
      `${fmt(s.beforeListPerSec, '/s')} / ${fmt(s.afterListPerSec, '/s')}`,
      '',
      '',
    ]),
    [
      `Write rate ratio, ${r.writeRates.steps.at(-1)?.users} / ${r.writeRates.steps[0]?.users} users, after (before) a list request`,
      `${fmt(r.writeRates.ratio, '', 2)} (${fmt(r.writeRates.ratioBeforeList, '', 2)})`,
      ...met(`writes per second at ${r.writeRates.steps.at(-1)?.users} users over ${r.writeRates.steps[0]?.users}, after a list request`),
    ],
    [
      `nginx CPU per proxied request, ${routeTables(r)}`,
      `${fmt(r.routeCost.nginxCpuUsPerRequest.one, ' µs')} / ${fmt(r.routeCost.nginxCpuUsPerRequest.several, ' µs')} (ratio ${fmt(r.routeCost.ratio, '', 2)})`,
      '',
      '',
    ],
    [
      `Throughput via the gateway, ${routeTables(r)}`,
      `${fmt(r.routeCost.requestsPerSec.one, ' req/s')} / ${fmt(r.routeCost.requestsPerSec.several, ' req/s')}`,
      '',
      '',
    ],
    [
      'HTTPS / HTTP at the edge, kept-alive: throughput; nginx CPU per request',
      `${fmt(r.tlsCost.keptAlive.requestsPerSec.https, ' req/s')} / ${fmt(r.tlsCost.keptAlive.requestsPerSec.http, ' req/s')} (ratio ${fmt(r.tlsCost.keptAlive.throughputRatio, '', 2)}); ${fmt(r.tlsCost.keptAlive.nginxCpuUsPerRequest.https, ' µs')} / ${fmt(r.tlsCost.keptAlive.nginxCpuUsPerRequest.http, ' µs')} (ratio ${fmt(r.tlsCost.keptAlive.nginxCpuRatio, '', 2)})`,
      '',
      '',
    ],
    [
      'HTTPS / HTTP at the edge, a new connection per request: throughput; nginx CPU per request',
      `${fmt(r.tlsCost.newConnections.requestsPerSec.https, ' req/s')} / ${fmt(r.tlsCost.newConnections.requestsPerSec.http, ' req/s')} (ratio ${fmt(r.tlsCost.newConnections.throughputRatio, '', 2)}); ${fmt(r.tlsCost.newConnections.nginxCpuUsPerRequest.https, ' µs')} / ${fmt(r.tlsCost.newConnections.nginxCpuUsPerRequest.http, ' µs')} (ratio ${fmt(r.tlsCost.newConnections.nginxCpuRatio, '', 2)})`,
      '',
      '',
    ],
  ];
  const header = ['Figure', 'Measured', 'Target', 'Result'];
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** "1 / 10 routed services (2 / 20 routes)": the two gateway configurations of the routes phase. */
const routeTables = (r: BenchResults): string => {
  const { services, routes } = r.routeCost;
  return `${services.one} / ${services.several} routed services (${routes.one} / ${routes.several} routes)`;
};

export function formatContext(r: BenchResults): string {
  return [
    formatRunContext(r),
    `load: ${r.settings.connections} connections closed loop, ${r.settings.durationSec} s per run, medians over ${r.settings.repeats} repeats`,
    `other work on the test core during the load runs: median ${fmt(r.foreignCpuPercent.median, ' %')}, max ${fmt(r.foreignCpuPercent.max, ' %')} of its time`,
  ].join('\n');
}

/** The versions of what the bench runs and measures with. */
const versionsText = (v: Versions) =>
  `node ${v.node}, nginx ${v.nginx}, haproxy ${v.haproxy}, consul ${v.consul}, autocannon ${v.autocannon}, hono ${v.hono}, @hono/node-server ${v.honoNodeServer}`;

/** When and where the run was made, and with what: every run's first lines, `--only` runs' included. */
export function formatRunContext(r: AloneResults | BenchResults): string {
  const v = r.versions;
  return [
    `mode ${r.mode}${'only' in r ? `, only ${r.only.join(', ')}` : ''}, ${r.elapsedSec} s, ${r.cores} cores (${v.cpu}), started ${r.startedAt}`,
    `pinning: ${r.pinning.description}`,
    `observed affinity: ${Object.entries(r.pinning.observed)
      .map(([k, cpus]) => `${k} ${cpus}`)
      .join(', ')}`,
    `versions: ${versionsText(v)}, kernel ${v.kernel}`,
  ].join('\n');
}

export function writeResults(file: string, results: AloneResults | BenchResults): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  // NaN (a figure that could not be measured) becomes null in JSON, which the smoke test rejects.
  fs.writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
}

/** The gateway at 1, 100 and 1,000 routed services, one row per size, and issue 23's targets. */
export function formatScaleTable(r: Pick<BenchResults, 'scale' | 'targets'>): string {
  const header = [
    'Routed services',
    'Added → first proxied p50 / max',
    'Removed → 404 p50 / max',
    'nginx reload p50 / max',
    'nginx CPU per request (vs 1)',
    'Watcher RSS',
  ];
  const rows = r.scale.map((s) => [
    String(s.services),
    `${fmt(s.addMs.p50, ' ms')} / ${fmt(s.addMs.max, ' ms')}`,
    `${fmt(s.removeMs.p50, ' ms')} / ${fmt(s.removeMs.max, ' ms')}`,
    `${fmt(s.reloadMs.p50, ' ms')} / ${fmt(s.reloadMs.max, ' ms')}`,
    `${fmt(s.nginxCpuUsPerRequest, ' µs')} (${fmt(s.cpuVsFirst, '×', 2)})`,
    fmt(s.watcherRssMB, ' MB'),
  ]);
  const tries = r.scale[0]?.tries.length ?? 0;
  return titledTable(
    `The gateway at scale: ${tries} service(s) added and removed at each size; registrations point at three in-process backends`,
    header,
    rows,
    r.targets.filter((t) => /routed service/.test(t.figure)),
  );
}

/** HTTPS against HTTP at the edge, both ways of connecting. */
export function formatTlsTable(r: Pick<BenchResults, 'tlsCost' | 'settings'>): string {
  const t = r.tlsCost;
  const rows = (way: string, f: TlsCostFigures) => [
    [`Throughput, ${way}`, fmt(f.requestsPerSec.http, ' req/s'), fmt(f.requestsPerSec.https, ' req/s'), fmt(f.throughputRatio, '', 2)],
    [
      `nginx CPU per request, ${way}`,
      fmt(f.nginxCpuUsPerRequest.http, ' µs'),
      fmt(f.nginxCpuUsPerRequest.https, ' µs'),
      fmt(f.nginxCpuRatio, '', 2),
    ],
  ];
  return titledTable(
    `HTTPS at the edge (${t.certificate}): medians over ${t.rounds.length} round(s) of ${r.settings.durationSec} s kept-alive runs ` +
      `and ${r.settings.tlsNewConnectionRequests} new connections per edge; ratios HTTPS / HTTP, medians of the per-round ratios; ` +
      `${t.failures} failed request(s)`,
    ['Figure', 'HTTP', 'HTTPS', 'HTTPS / HTTP'],
    [...rows(`kept-alive (${r.settings.connections} connections)`, t.keptAlive), ...rows('a new connection per request', t.newConnections)],
    [],
  );
}

/** A title, a Markdown table and a line per target under it. */
function titledTable(title: string, header: string[], rows: string[][], targets: readonly Target[]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    title,
    '',
    line(header),
    line(header.map(() => '---')),
    ...rows.map(line),
    '',
    ...targets.map((t) => `- ${t.figure}: target ${t.target}, ${t.met ? 'met' : 'MISSED'}`),
  ].join('\n');
}

const range = (f: { p50: number | null; max: number | null }) => (f.p50 === null ? 'n/a' : `${f.p50} / ${f.max} ms`);

/** The side-by-side table, one column per peer. */
export function formatPeerTable(c: PeerComparison): string {
  const names = PEER_NAMES.filter((n) => c.peers[n]);
  const cols = names.map((n) => c.peers[n]);
  const row = (figure: string, cell: (p: PeerColumn) => string) => [figure, ...cols.map(cell)];
  const rows = [
    row('Throughput, req/s (ratio to direct)', (p) => `${fmt(p.requestsPerSec.peer)} (${fmt(p.throughputRatio, '', 2)})`),
    row('Direct, same repeats, req/s', (p) => fmt(p.requestsPerSec.direct)),
    row('Balancer CPU per proxied request', (p) => fmt(p.proxyCpuUsPerRequest, ' µs')),
    row('CPU per request vs direct (all under test)', (p) => fmt(p.cpuPerRequestVsDirect, '×')),
    row('Added latency p50 / p99', (p) => `${fmt(p.addedP50Ms, ' ms')} / ${fmt(p.addedP99Ms, ' ms')}`),
    row(`Discovery add p50 / max (${c.settings.discoveryTries} tries)`, (p) =>
      p.discoveryAddMs.p50 === null ? 'n/a (manual)' : range(p.discoveryAddMs),
    ),
    row(`Failover p50 / max (${c.settings.failoverTries} SIGKILLs)`, (p) =>
      p.failoverMs.p50 === null ? 'n/a (passive)' : range(p.failoverMs),
    ),
    row('Requests failed during failover', (p) => `${p.failedRequests.failover} of ${p.failedRequests.sentDuringFailover}`),
    row('  answered after a retry (nginx)', (p) => (p.retriedRequests.failover === null ? 'n/a' : String(p.retriedRequests.failover))),
    row(`Scale-down p50 / max (${c.settings.scaleDownTries} SIGTERMs)`, (p) =>
      p.scaleDownMs.p50 === null ? 'n/a (passive)' : range(p.scaleDownMs),
    ),
    row('Requests failed during scale-down', (p) => `${p.failedRequests.scaleDown} of ${p.failedRequests.sentDuringScaleDown}`),
    row('  answered after a retry (nginx)', (p) => (p.retriedRequests.scaleDown === null ? 'n/a' : String(p.retriedRequests.scaleDown))),
    row("RSS, all the balancer's processes", (p) => fmt(p.rssMB, ' MB')),
    row('Load runs: non-2xx / connection errors', (p) => `${p.loadRunFailures.non2xx} / ${p.loadRunFailures.errors}`),
    row(
      'Other work on the test core (median / max)',
      (p) => `${fmt(p.foreignCpuPercent.median, ' %')} / ${fmt(p.foreignCpuPercent.max, ' %')}`,
    ),
  ];
  return titledTable(
    `Peers side by side, ${c.startedAt}, ${c.machine.cores} cores (${c.machine.cpuModel}), kernel ${c.machine.kernel}; ` +
      `${c.settings.connections} connections, ${c.settings.durationSec} s runs, medians over ${c.settings.repeats} paired repeats`,
    ['Figure', ...names],
    rows,
    c.targets,
  );
}

/**
 * bench/RESULTS.md, the committed record of the last full run: when, on what machine and with what versions,
 * and every figure with its target. Only a full run writes it; `--smoke` and `--only` runs leave it as it is.
 */
export function formatResultsMarkdown(r: BenchResults): string {
  const v = r.versions;
  return [
    '# Benchmark results',
    '',
    'Written by `npm run bench` at the end of a full run; not edited by hand. What each figure measures and why: [README.md](README.md).',
    '',
    `- Run: started ${r.startedAt}, ${r.elapsedSec} s`,
    `- Machine: ${r.cores} cores (${v.cpu}), ${v.memory} of memory, kernel ${v.kernel}`,
    `- Versions: ${versionsText(v)}`,
    `- Pinning: ${r.pinning.description}`,
    `- Other work on the test core during the load runs: median ${fmt(r.foreignCpuPercent.median, ' %')}, max ${fmt(r.foreignCpuPercent.max, ' %')} of its time`,
    '',
    '## The balancer against direct access',
    '',
    formatTable(r),
    '',
    '## Peers side by side',
    '',
    formatPeerTable(r.comparison),
    '',
    '## The gateway at scale',
    '',
    formatScaleTable(r),
    '',
    '## HTTPS at the edge',
    '',
    formatTlsTable(r),
    '',
  ].join('\n');
}
