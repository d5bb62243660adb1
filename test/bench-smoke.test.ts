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
];

const at = (object: unknown, dotted: string): unknown =>
  dotted
    .split('.')
    .reduce<unknown>((value, key) => (value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined), object);

test('npm run bench -- --smoke produces every figure with its keys and shape', async (t) => {
  t.timeout(180_000);
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
  const deadline = setTimeout(() => child.kill('SIGTERM'), 150_000);
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
  t.true(Number.isInteger(results.cores) && (results.cores as number) >= 1);

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

  // The readable table goes to stdout alongside the JSON.
  t.regex(run.stdout, /\| Ratio balancer\/direct, 1 replica \| [\d.]+ \|/);
  t.regex(run.stdout, /pinning: /);
});

// Serial, so it runs before the bench's smoke and never beside it: the flood would skew its figures.
test.serial('npm run attack -- --smoke: no real request fails, and Consul answers its leader afterwards', async (t) => {
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
  for (const phase of ['slow-header flood', '2000-connection burst', 'KV-heavy list']) t.regex(run.stdout, new RegExp(`\\| ${phase}`));
  t.regex(run.stdout, /\| all phases \| \| 0 of [1-9]\d* \(target 0\)/);
  t.regex(run.stdout, /\/v1\/status\/leader answered in [\d.]+ ms after the load/);
});
