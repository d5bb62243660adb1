import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';

// The benchmark's short mode, run as a user runs it, so that it cannot rot: every figure is produced,
// with the right keys and shape. The targets themselves are the full benchmark's business, not CI's.

const ROOT = path.resolve(__dirname, '..');

interface Run {
  code: number | string;
  stdout: string;
  stderr: string;
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** Dotted paths of the figures results.json must hold as finite numbers (NaN is written as null). */
const NUMERIC_FIGURES = [
  'cores',
  'throughputRatio',
  'nginxCpuUsPerRequest',
  'p50Ms.direct',
  'p50Ms.balancer',
  'p99Ms.direct',
  'p99Ms.balancer',
  'discoveryAddMs.p50',
  'discoveryAddMs.max',
  'discoveryAddMs.passingToServedP50',
  'failoverMs.p50',
  'failoverMs.max',
  'failedRequests.failover',
  'failedRequests.scaleDown',
  'rssMB.replica',
  'rssMB.watcher',
  'rssMB.nginx',
  'throughputRatioTwoReplicas',
  'cpuCostRatio',
  'requestsPerSec.direct',
  'requestsPerSec.balancer',
  'requestsPerSec.balancerTwoReplicas',
  'watcherCpuPercent.idle',
  'watcherCpuPercent.load',
  'singleRequestMs.direct.p50',
  'singleRequestMs.balancer.p50',
  'eventLatencyMs.p50',
  'eventLatencyMs.p99',
  'events.publishesPerWrite',
  'events.answeredPerSec',
  'writeRates.ratio',
  'writeRates.ratioBeforeList',
  'routeCost.nginxCpuUsPerRequest.one',
  'routeCost.nginxCpuUsPerRequest.several',
  'routeCost.ratio',
  'routeCost.requestsPerSec.one',
  'routeCost.requestsPerSec.several',
  'tlsCost.keptAlive.requestsPerSec.http',
  'tlsCost.keptAlive.requestsPerSec.https',
  'tlsCost.keptAlive.nginxCpuUsPerRequest.http',
  'tlsCost.keptAlive.nginxCpuUsPerRequest.https',
  'tlsCost.keptAlive.throughputRatio',
  'tlsCost.keptAlive.nginxCpuRatio',
  'tlsCost.newConnections.requestsPerSec.http',
  'tlsCost.newConnections.requestsPerSec.https',
  'tlsCost.newConnections.nginxCpuUsPerRequest.http',
  'tlsCost.newConnections.nginxCpuUsPerRequest.https',
  'tlsCost.newConnections.throughputRatio',
  'tlsCost.newConnections.nginxCpuRatio',
];

const at = (object: unknown, dotted: string): unknown =>
  dotted
    .split('.')
    .reduce<unknown>((value, key) => (value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined), object);

test('npm run bench -- --smoke produces every figure with its keys and shape', async (t) => {
  t.timeout(220_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-smoke-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const outFile = path.join(dir, 'results.json');

  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--smoke', '--out', outFile], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The bench cleans up its own processes on SIGTERM; SIGKILL only if it does not end in time.
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    }
  });
  const deadline = setTimeout(() => child.kill('SIGTERM'), 185_000);
  const run = await new Promise<Run>((resolve) => {
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code, signal) => resolve({ code: code ?? signal ?? 'unknown', stdout, stderr }));
  });
  clearTimeout(deadline);

  t.is(run.code, 0, `bench --smoke failed:\n${run.stderr.slice(-4000)}`);
  const results = JSON.parse(fs.readFileSync(outFile, 'utf8')) as Record<string, unknown>;

  t.is(results.mode, 'smoke');
  for (const figure of NUMERIC_FIGURES) {
    t.true(isFiniteNumber(at(results, figure)), `${figure} should be a finite number, got ${JSON.stringify(at(results, figure))}`);
  }
  for (const figure of [
    'throughputRatio',
    'nginxCpuUsPerRequest',
    'p50Ms.direct',
    'p50Ms.balancer',
    'discoveryAddMs.p50',
    'failoverMs.p50',
    'rssMB.replica',
    'rssMB.watcher',
    'rssMB.nginx',
  ]) {
    t.true((at(results, figure) as number) > 0, `${figure} should be positive`);
  }
  for (const figure of ['failedRequests.failover', 'failedRequests.scaleDown']) {
    t.true(Number.isInteger(at(results, figure)) && (at(results, figure) as number) >= 0, `${figure} should be a count`);
  }
  t.true((at(results, 'p99Ms.balancer') as number) >= (at(results, 'p50Ms.balancer') as number));
  t.true((at(results, 'discoveryAddMs.max') as number) >= (at(results, 'discoveryAddMs.p50') as number));
  t.true((at(results, 'failoverMs.max') as number) >= (at(results, 'failoverMs.p50') as number));
  t.true((at(results, 'eventLatencyMs.p50') as number) > 0, 'eventLatencyMs.p50 should be positive');
  t.true((at(results, 'eventLatencyMs.p99') as number) >= (at(results, 'eventLatencyMs.p50') as number));
  t.is(at(results, 'eventLatencyMs.writes'), 200, 'every write the smoke mode is sized for');
  t.is(at(results, 'events.failed'), 0, 'every write of the events phase answered 201');
  t.true((at(results, 'events.publishesPerWrite') as number) >= 1, 'every write published at least once');
  const writeSteps = at(results, 'writeRates.steps') as Array<Record<string, number>>;
  t.deepEqual(
    writeSteps.map((s) => s.users),
    [100, 1000],
  );
  for (const step of writeSteps) {
    t.true(step.beforeListPerSec > 0 && step.afterListPerSec > 0, `write rates at ${step.users} users`);
    t.is(step.failed, 0, `every write at ${step.users} users answered 2xx`);
  }
  t.true(Number.isInteger(results.cores) && (results.cores as number) >= 1);

  // The gateway with one routed service against several: both configurations measured, served without errors.
  t.deepEqual(at(results, 'routeCost.services'), { one: 1, several: 3 }, 'hello alone, then hello and 2 others');
  t.true((at(results, 'routeCost.routes.several') as number) > (at(results, 'routeCost.routes.one') as number), 'more routes');
  for (const figure of ['routeCost.nginxCpuUsPerRequest.one', 'routeCost.nginxCpuUsPerRequest.several', 'routeCost.requestsPerSec.one']) {
    t.true((at(results, figure) as number) > 0, `${figure} should be positive`);
  }
  const routeRounds = at(results, 'routeCost.rounds') as Array<{ non2xx: number[]; errors: number[] }>;
  t.is(routeRounds.length, 1, 'every round the smoke mode is sized for');
  t.deepEqual(routeRounds[0].non2xx, [0, 0], 'the gateway answered every request of the routes phase with a 2xx');

  // HTTPS against HTTP at the edge: both edges measured both ways, every request served (the HTTPS ones verified).
  t.is(at(results, 'tlsCost.failures'), 0, 'every request of the TLS phase was answered with a 2xx');
  t.is((at(results, 'tlsCost.rounds') as unknown[]).length, 1, 'every round the smoke mode is sized for');
  t.true((at(results, 'tlsCost.newConnections.nginxCpuRatio') as number) > 1, 'a handshake per request costs nginx more than plain HTTP');

  // The gateway at scale: every size measured, each change routed and removed, the table printed.
  const scale = results.scale as Array<Record<string, unknown>>;
  t.deepEqual(
    scale.map((step) => step.services),
    [1, 3],
    'hello alone, then with 2 registrations',
  );
  for (const [i, step] of scale.entries()) {
    for (const figure of ['addMs.p50', 'addMs.max', 'removeMs.p50', 'reloadMs.p50', 'nginxCpuUsPerRequest', 'watcherRssMB']) {
      t.true(
        isFiniteNumber(at(step, figure)) && (at(step, figure) as number) > 0,
        `scale[${i}].${figure}, got ${JSON.stringify(at(step, figure))}`,
      );
    }
    t.is(step.non2xx, 0, `scale[${i}]: the load run on hello's routes was served`);
  }
  t.regex(run.stdout, /\| Routed services \| Added → first proxied p50 \/ max \|/);

  const versions = results.versions as Record<string, unknown>;
  for (const name of ['node', 'nginx', 'consul', 'autocannon']) {
    t.regex(String(versions?.[name]), /^v?\d+\.\d+/, `versions.${name}`);
  }
  const pinning = results.pinning as { description?: unknown; observed?: Record<string, string> };
  t.is(typeof pinning?.description, 'string');
  t.truthy(pinning.observed?.loadGenerator && pinning.observed?.nginxWorkers, 'observed affinity of the load generator and nginx workers');

  // Every request/ try the smoke mode is sized for was actually made.
  t.is((at(results, 'discoveryAddMs.tries') as unknown[]).length, 2);
  t.is((at(results, 'failoverMs.tries') as unknown[]).length, 2);
  t.true((at(results, 'failedRequests.sentDuringFailover') as number) > 0);
  t.true((at(results, 'failedRequests.sentDuringScaleDown') as number) > 0);

  // The peers side by side: one column each, every figure there (or, for a static list, n/a with its reason).
  const comparison = results.comparison as Record<string, unknown>;
  t.truthy(comparison, 'comparison');
  t.regex(String(at(comparison, 'startedAt')), /^\d{4}-\d\d-\d\dT/);
  t.true((at(comparison, 'machine.cores') as number) >= 1);
  for (const key of ['machine.cpuModel', 'machine.kernel']) t.true(String(at(comparison, key)).length > 0, key);
  t.regex(String(versions?.haproxy), /^2\.6\./, 'versions.haproxy (Debian bookworm ships 2.6)');
  const peers = comparison.peers as Record<string, Record<string, unknown>>;
  t.deepEqual(Object.keys(peers), ['ours', 'haproxy-dns', 'nginx-static', 'nginx-static-log']);
  for (const [name, peer] of Object.entries(peers)) {
    for (const figure of [
      'requestsPerSec.direct',
      'requestsPerSec.peer',
      'throughputRatio',
      'proxyCpuUsPerRequest',
      'cpuPerRequestVsDirect',
      'rssMB',
    ]) {
      t.true(
        isFiniteNumber(at(peer, figure)) && (at(peer, figure) as number) > 0,
        `${name}.${figure} should be positive, got ${JSON.stringify(at(peer, figure))}`,
      );
    }
    for (const figure of ['addedP50Ms', 'addedP99Ms']) t.true(isFiniteNumber(at(peer, figure)), `${name}.${figure}`);
    // A peer answering errors would look fast; its load runs must have been served.
    t.is(at(peer, 'loadRunFailures.non2xx'), 0, `${name} answered errors in its load runs`);
    t.true(Number.isInteger(at(peer, 'loadRunFailures.errors')), `${name}: connection errors in its load runs should be a count`);
    for (const figure of ['failedRequests.failover', 'failedRequests.scaleDown']) {
      t.true(Number.isInteger(at(peer, figure)) && (at(peer, figure) as number) >= 0, `${name}.${figure} should be a count`);
    }
    t.true((at(peer, 'failedRequests.sentDuringFailover') as number) > 0, `${name}: requests sent during failover`);
    t.true((at(peer, 'failedRequests.sentDuringScaleDown') as number) > 0, `${name}: requests sent during scale-down`);
    t.is((at(peer, 'tries.failover') as unknown[]).length, 1, `${name}: failover tries`);
    // nginx names the upstreams it tried (X-Upstream-Addr), so its retries are counted; HAProxy names none.
    const retried = at(peer, 'retriedRequests.failover');
    if (name === 'haproxy-dns') t.is(retried, null, `${name}: retried requests`);
    else
      t.true(
        Number.isInteger(retried) && (retried as number) >= 0,
        `${name}: retried requests should be a count, got ${JSON.stringify(retried)}`,
      );
    const discovers = name === 'ours' || name === 'haproxy-dns';
    for (const figure of ['discoveryAddMs', 'failoverMs', 'scaleDownMs']) {
      if (discovers) {
        t.true(isFiniteNumber(at(peer, `${figure}.p50`)) && (at(peer, `${figure}.p50`) as number) > 0, `${name}.${figure}.p50`);
        t.true((at(peer, `${figure}.max`) as number) >= (at(peer, `${figure}.p50`) as number), `${name}.${figure}.max`);
      } else {
        t.is(at(peer, `${figure}.p50`), null, `${name}.${figure}: a static list has none`);
        t.regex(String(at(peer, `${figure}.note`)), /^n\/a \((manual|passive)\)/, `${name}.${figure}.note`);
      }
    }
  }
  t.true((comparison.targets as unknown[]).length > 0, 'comparison targets');

  // The readable tables go to stdout alongside the JSON.
  t.regex(run.stdout, /\| Figure \| ours \| haproxy-dns \| nginx-static \| nginx-static-log \|/);
  t.regex(run.stdout, /\| Discovery add p50 \/ max \(1 tries\) \| \d+ \/ \d+ ms \| \d+ \/ \d+ ms \| n\/a \(manual\) \| n\/a \(manual\) \|/);
  t.regex(run.stdout, /\| Ratio balancer\/direct, 1 replica \| [\d.]+ \|/);
  t.regex(
    run.stdout,
    /\| Write → event on the SSE stream p50 \/ p99 \(200 writes at 200\/s, 3 hello replicas\) \| [\d.]+ ms \/ [\d.]+ ms \| < 50 ms \| (met|MISSED) \|/,
  );
  t.regex(run.stdout, /\| Publishes per write \(nats-server's counters\), 3 hello replicas \| [\d.]+ \| <= 1\.05 \| (met|MISSED) \|/);
  t.regex(run.stdout, /\| Writes per second at 1000 users, before \/ after a list request \| \d+\/s \/ \d+\/s \|/);
  t.regex(
    run.stdout,
    /\| Write rate ratio, 1000 \/ 100 users, after \(before\) a list request \| [\d.]+ \([\d.]+\) \| >= 0\.8 \| (met|MISSED) \|/,
  );
  t.regex(
    run.stdout,
    /\| nginx CPU per proxied request, 1 \/ 3 routed services \(2 \/ 6 routes\) \| [\d.]+ µs \/ [\d.]+ µs \(ratio [\d.]+\) \|/,
  );
  t.regex(
    run.stdout,
    /\| HTTPS \/ HTTP at the edge, kept-alive: throughput; nginx CPU per request \| \d+ req\/s \/ \d+ req\/s \(ratio [\d.]+\); [\d.]+ µs \/ [\d.]+ µs \(ratio [\d.]+\) \|/,
  );
  t.regex(run.stdout, /pinning: /);
});

// Serial, so it runs before the bench's smoke and never beside it: the flood would skew its figures. The
// attack's default edge is HTTPS (the plain edge's floods are balancer-flood.test.ts's).
test.serial('npm run attack -- --smoke: on the HTTPS edge no real request fails, and Consul answers its leader afterwards', async (t) => {
  t.timeout(120_000);
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/attack.ts', '--smoke'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });
  const run = await new Promise<Run>((resolve) => {
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code, signal) => resolve({ code: code ?? signal ?? 'unknown', stdout, stderr }));
  });
  t.is(run.code, 0, `attack --smoke failed:\n${run.stdout.slice(-3000)}\n${run.stderr.slice(-2000)}`);
  t.regex(run.stdout, /HTTPS edge \(the real client verifies its certificate\)/);
  for (const phase of ['slow-header flood', 'TLS handshake flood', '2000-connection burst', 'KV-heavy list'])
    t.regex(run.stdout, new RegExp(`\\| ${phase}`));
  t.regex(run.stdout, /\| all phases \| \| 0 of [1-9]\d* \(target 0\)/);
  t.regex(run.stdout, /\/v1\/status\/leader answered in [\d.]+ ms after the load/);
});
