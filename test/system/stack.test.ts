// The system test: the resources the Pulumi program declares, realized in the real Docker engine from the
// offline images, then scaled, crashed, read back from the log collector and torn down. All traffic goes
// through the balancer's port published on 127.0.0.1. Serial: each scenario starts from the one before.
import test, { type ExecutionContext } from 'ava';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { recordStack } from '../helpers/record-stack';
import { describeFailures, requestOnce, sendRequests, startSteadyLoop, type SteadyLoop } from '../helpers/load';
import { freePorts } from '../helpers/ports';
import { waitFor } from '../helpers/processes';
import { docker, inspect, run } from './docker';
import { compareListings, listDocker, type DockerListing } from './docker-listing';
import { BASE_IMAGE, CONSUL_IMAGE, PROJECT_DIR, ensureOfflineImages } from './images';
import { Realizer, type ApplySummary } from './realize';

// A name of this run's own: two runs on one engine (two checkouts, a run and a benchmark) never touch
// each other's containers, networks, volumes or images, and the clean-up removes only what this run made.
const STACK = `systest${randomBytes(3).toString('hex')}`;
const STACK_LABEL = `io.consul-nginx-pulumi.stack=${STACK}`;
const NETWORK = `cnp-${STACK}-net`;
const COLLECTOR = `cnp-${STACK}-collector`;
const replicaName = (n: number) => `cnp-${STACK}-replica-${n}`;
const replicaKey = (n: number) => `docker:index/container:Container::replicas-${n}`;
/** Where the test leaves the evidence command's output for the README. */
const EVIDENCE_FILE = path.join(PROJECT_DIR, 'build/system/evidence.txt');

const realizer = new Realizer({ projectDir: PROJECT_DIR });
let ports: { balancerPort: number; consulUiPort: number; collectorPort: number };
let url = '';
let before: DockerListing;
/** Every volume any of the stack's containers mounted, named or anonymous. */
const stackVolumes = new Set<string>();
const loops: SteadyLoop[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function deploy(t: ExecutionContext, replicas: number): Promise<ApplySummary> {
  const started = Date.now();
  const { resources } = await recordStack({
    stack: STACK,
    config: { replicas, baseImage: BASE_IMAGE, consulImage: CONSUL_IMAGE, ...ports },
  });
  const summary = await realizer.apply(resources);
  for (const c of realizer.containers()) {
    for (const mount of (await inspect('container', c.id))?.Mounts ?? []) if (mount.Type === 'volume') stackVolumes.add(mount.Name);
  }
  t.log(`replicas=${replicas} realized in ${((Date.now() - started) / 1000).toFixed(1)} s: ` +
    `${summary.created.length} created, ${summary.replaced.length} replaced, ${summary.deleted.length} deleted, ${summary.unchanged.length} unchanged`);
  return summary;
}

async function upstreams(): Promise<string[]> {
  const res = await fetch(`${url}/_balancer/status`, { signal: AbortSignal.timeout(2000) });
  return ((await res.json()) as { upstreams: string[] }).upstreams.slice().sort();
}

/** `ip:8080` of a replica on the stack network: how the balancer's status names it. */
async function replicaUpstream(name: string): Promise<string> {
  const ip = (await inspect('container', name))?.NetworkSettings?.Networks?.[NETWORK]?.IPAddress;
  if (!ip) throw new Error(`${name} has no address on ${NETWORK}`);
  return `${ip}:8080`;
}

/** Waits until the balancer's status lists exactly these replicas. */
async function waitForReplicaUpstreams(what: string, numbers: number[], timeoutMs: number, everyMs: number): Promise<void> {
  const expected = JSON.stringify((await Promise.all(numbers.map((n) => replicaUpstream(replicaName(n))))).sort());
  await waitFor(what, async () => JSON.stringify(await upstreams()) === expected, timeoutMs, everyMs);
}

async function containerIds(numbers: number[]): Promise<string[]> {
  return Promise.all(numbers.map(async (n) => (await inspect('container', replicaName(n)))!.Id as string));
}

async function allHealthy(): Promise<boolean> {
  const states = await Promise.all(realizer.containers().map(async (c) => (await inspect('container', c.id))?.State?.Health?.Status));
  return states.length > 0 && states.every((s) => s === 'healthy');
}

/** With `postUrl`, GETs alternate with POSTs, which nginx never retries once sent (see load.ts). */
function startLoop(postUrl = ''): SteadyLoop {
  const loop = startSteadyLoop(`${url}/`, { clients: 4, maxMs: 120_000, postUrl });
  loops.push(loop);
  return loop;
}

async function collectorFile(file: string): Promise<string> {
  return docker(['exec', COLLECTOR, 'cat', `/var/log/stack/${file}`]).catch(() => '');
}

test.before(async () => {
  const [balancerPort, consulUiPort, collectorPort] = await freePorts(3);
  ports = { balancerPort: balancerPort!, consulUiPort: consulUiPort!, collectorPort: collectorPort! };
  url = `http://127.0.0.1:${ports.balancerPort}`;
  before = await listDocker();
});

/** Removes everything carrying this run's stack label, and its images: what a failed apply left behind. */
async function sweepStack(): Promise<void> {
  const containers = (await docker(['ps', '-aq', '--filter', `label=${STACK_LABEL}`])).split('\n').filter(Boolean);
  if (containers.length) await docker(['rm', '-f', '-v', ...containers]);
  for (const kind of ['network', 'volume'] as const) {
    const names = (await docker([kind, 'ls', '-q', '--filter', `label=${STACK_LABEL}`])).split('\n').filter(Boolean);
    if (names.length) await docker([kind, 'rm', ...names]).catch(() => {});
  }
  const images = (await docker(['images', '-q', '--filter', `reference=cnp-*:${STACK}`])).split('\n').filter(Boolean);
  if (images.length) await docker(['image', 'rm', '-f', ...new Set(images)]).catch(() => {});
}

test.after.always(async () => {
  await Promise.all(loops.map((l) => l.stop()));
  await realizer.destroy().catch(() => {});
  await sweepStack();
});

test.serial('offline base images are built, or found current', async (t) => {
  t.timeout(600_000);
  const started = Date.now();
  t.log((await ensureOfflineImages()).trim());
  t.log(`images step took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  t.truthy(await inspect('image', BASE_IMAGE));
  t.truthy(await inspect('image', CONSUL_IMAGE));
});

test.serial('1. replicas 3: every container healthy, 300 requests reach all 3 instances, each >= 20%, none failing', async (t) => {
  t.timeout(240_000);
  const summary = await deploy(t, 3);
  t.deepEqual(summary.replaced, []);
  for (const n of [1, 2, 3]) t.true(summary.created.includes(replicaKey(n)));
  t.is(realizer.containers().length, 6, 'collector, consul, 3 replicas and the balancer');
  await waitFor('every container healthy', allHealthy, 120_000, 500);
  await waitForReplicaUpstreams('the balancer to serve the 3 replicas', [1, 2, 3], 30_000, 200);

  const report = await sendRequests(`${url}/`, 300);
  t.is(report.failures.length, 0, describeFailures(report));
  t.deepEqual(Object.keys(report.byInstance).sort(), [1, 2, 3].map(replicaName));
  for (const [instance, count] of Object.entries(report.byInstance)) t.true(count >= 60, `${instance} answered ${count}/300`);
  t.log('requests per instance:', report.byInstance);

  const evidence = await run('npx', ['tsx', 'scripts/evidence.ts', '--url', url, '--requests', '200'], { cwd: PROJECT_DIR });
  fs.mkdirSync(path.dirname(EVIDENCE_FILE), { recursive: true });
  fs.writeFileSync(EVIDENCE_FILE, `$ npm run evidence -- --url ${url} --requests 200\n${evidence}`);
  t.log(evidence);
  t.regex(evidence, /\(failed\)\s+0\s+0\.0%/);
  for (const n of [1, 2, 3]) t.regex(evidence, new RegExp(`${replicaName(n)}\\s+\\d+\\s+\\d+\\.\\d%\\s+\\d+\\.\\d+\\.\\d+\\.\\d+:8080`));
  t.regex(evidence, /upstream set \(\/_balancer\/status\): 3 upstream\(s\)/);
});

test.serial('2. replicas 3 -> 5 under a steady loop: the 3 keep their ids, the 2 new serve, no request fails', async (t) => {
  t.timeout(180_000);
  const ids = await containerIds([1, 2, 3]);
  const loop = startLoop();
  await sleep(1000);
  const summary = await deploy(t, 5);
  t.deepEqual(summary.created.sort(), [replicaKey(4), replicaKey(5)]);
  t.deepEqual(summary.replaced, []);
  t.deepEqual(summary.deleted, []);
  await waitForReplicaUpstreams('the balancer to serve all 5', [1, 2, 3, 4, 5], 60_000, 100);
  await sleep(2000);
  const report = await loop.stop();
  t.is(report.failures.length, 0, describeFailures(report));
  t.true((report.byInstance[replicaName(4)] ?? 0) > 0, 'replica 4 served');
  t.true((report.byInstance[replicaName(5)] ?? 0) > 0, 'replica 5 served');
  t.deepEqual(await containerIds([1, 2, 3]), ids, 'the existing 3 containers are the same ones');
  t.log(`${report.total} requests during scale-up:`, report.byInstance);
});

test.serial('3. replicas 5 -> 2 under the loop: only 3, 4, 5 go, each stopped with its grace and exiting by itself, no request fails', async (t) => {
  t.timeout(180_000);
  const ids = await containerIds([1, 2]);
  const loop = startLoop(`${url}/api/users`);
  await sleep(1000);
  const summary = await deploy(t, 2);
  t.deepEqual(summary.deleted.sort(), [replicaKey(3), replicaKey(4), replicaKey(5)]);
  t.deepEqual(summary.created, []);
  t.deepEqual(summary.replaced, []);
  for (const removed of summary.removedContainers) {
    t.is(removed.graceSeconds, 15, `${removed.name} stopped with the declared grace`);
    t.is(removed.exitCode, 0, `${removed.name} drained and exited by itself (not killed at the end of the grace)`);
    t.log(`${removed.name}: stopped in ${removed.stopMs} ms, exit code ${removed.exitCode}`);
  }
  t.is(summary.removedContainers.length, 3);
  await waitForReplicaUpstreams('the balancer to serve the 2 left', [1, 2], 30_000, 100);
  await sleep(1000);
  const report = await loop.stop();
  t.is(report.failures.length, 0, describeFailures(report));
  t.true((report.byMethod.POST ?? 0) > 0, `POSTs in the loop: ${JSON.stringify(report.byMethod)}`);
  t.deepEqual(await containerIds([1, 2]), ids);
  for (const n of [3, 4, 5]) t.is(await inspect('container', replicaName(n)), undefined);
  t.log(`${report.total} requests during scale-down:`, report.byInstance);
});

test.serial('4. a replica SIGKILLed from the host: no request fails, it leaves the balancer, restarts and serves again', async (t) => {
  t.timeout(180_000);
  const name = replicaName(1);
  const upstream = await replicaUpstream(name);
  const { State: state, RestartCount: restartsBefore } = (await inspect('container', name))!;
  const loop = startLoop();
  await sleep(1000);

  // Watch the balancer's set closely from the moment of the kill: the gap may be short.
  let left = false;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      if (!(await upstreams().catch(() => [upstream])).includes(upstream)) left = true;
      await sleep(50);
    }
  })();
  process.kill(state.Pid, 'SIGKILL');
  const killedAt = Date.now();

  await waitFor(`${name} restarted by its restart policy`, async () => {
    const c = await inspect('container', name);
    return c.RestartCount >= restartsBefore + 1 && c.State.Running && c.State.Pid !== state.Pid;
  }, 30_000, 100);
  // It must first leave the set (its check fails while it is down), then come back once healthy again.
  await waitFor(`${name} to leave the balancer's set and come back`, async () => left && (await upstreams()).includes(upstream), 20_000, 100)
    .catch((error) => t.log(String(error)));
  watching = false;
  await watcher;
  t.log(`back ${Date.now() - killedAt} ms after the kill; restart count ${(await inspect('container', name)).RestartCount}`);
  await waitFor(`${name} to answer through the balancer`, async () => (await requestOnce(`${url}/`)).instance === name, 30_000, 20);
  await sleep(1000);
  const report = await loop.stop();
  t.true(left, `${name} (${upstream}) left /_balancer/status after the kill`);
  t.true((await upstreams()).includes(upstream), `${name} is back in /_balancer/status`);
  t.is(report.failures.length, 0, describeFailures(report));
  t.true((await inspect('container', name)).RestartCount >= restartsBefore + 1);
  t.log(`${report.total} requests around the crash:`, report.byInstance);
});

test.serial('5. logs: a marker in a request lands in the serving replica\'s file and the combined file; Consul and the balancer have theirs', async (t) => {
  t.timeout(120_000);
  const marker = `cnp-marker-${randomUUID()}`;
  const answer = await requestOnce(`${url}/${marker}`);
  t.truthy(answer.instance, `the request was answered by a replica (status ${answer.status} ${answer.error ?? ''})`);
  const file = `${answer.instance}.log`;
  await waitFor(`${marker} in ${file}`, async () => (await collectorFile(file)).includes(marker), 30_000, 250);
  await waitFor(`${marker} in all.log`, async () => (await collectorFile('all.log')).includes(marker), 30_000, 250);
  // The balancer's file gets nginx's own JSON access line for the same request.
  const balancerFile = `cnp-${STACK}-balancer.log`;
  await waitFor(`${marker} in ${balancerFile}`, async () => (await collectorFile(balancerFile)).includes(marker), 30_000, 250);
  const accessLine = (await collectorFile(balancerFile)).split('\n').find((l) => l.includes(marker))!;
  t.regex(accessLine, /"source":"nginx","msg":"request".*"status":404/);
  t.regex(await collectorFile(`cnp-${STACK}-consul.log`), /agent/, 'Consul\'s own output reached its file');
  t.log(`${file}: ${(await collectorFile(file)).split('\n').find((l) => l.includes(marker))}`);
});

test.serial('6. tear-down leaves the engine\'s containers, networks and volumes as they were', async (t) => {
  t.timeout(120_000);
  const summary = await realizer.destroy();
  t.true(summary.deleted.length >= 10);
  const after = await listDocker();
  const changes = compareListings(before, after);
  // Other test files may use the engine at the same time: any difference must not be the stack's.
  const ours = changes.filter((c) =>
    c.entry.includes(`cnp-${STACK}`) || (c.kind === 'volumes' && stackVolumes.has(c.entry)));
  t.deepEqual(ours, [], 'nothing of the stack is left');
  if (changes.length) t.log('changes made meanwhile by others (not the stack):', changes);
  t.deepEqual((await docker(['ps', '-aq', '--filter', `label=${STACK_LABEL}`])).trim(), '');
  t.true(stackVolumes.size >= 2, 'the stack did mount volumes, so their removal was checked');
});
