// The system test: the Pulumi program deployed by the real Pulumi CLI (its engine and Node.js language host,
// built by npm run tools; the docker and command plugins are the project's stand-ins, harness/plugins/) into
// the real Docker engine from the offline images, then scaled, crashed, read back from the log collector and
// torn down. Each deploy is `pulumi config set` into the stack's file and `pulumi up` of a stack of this run's
// own on a file backend in a temporary folder; what a deploy did comes from the engine's events
// (`--event-log`), the containers from the stack's state, how they stopped from the Docker engine's events. The stack runs both
// services (hello and the activity service) and the NATS broker. All traffic goes through the balancer's
// (the gateway's) port published on 127.0.0.1. Serial: each scenario starts from the one before.
import test, { type ExecutionContext } from 'ava';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { scratchCopy } from '../helpers/scratch-copy';
import { holdSystemLock, SYSTEM_LOCK_WAIT_MS } from '../helpers/system-lock';
import {
  describeFailures,
  requestOnce,
  sendAll,
  sendRequests,
  startSteadyLoopProcess,
  type LoadReport,
  type RequestResult,
  type SteadyLoop,
  type SteadyLoopOptions,
  type SteadyLoopReport,
} from '../../harness/load';
import { upstreamsOf, type BalancerStatusJson } from '../../harness/balancer';
import { replicaRole, roleToken } from '../../lib/consul-acl';
import { secretsIn, stackSecrets } from '../helpers/stack-secrets';
import { freePorts } from '../../harness/ports';
import { waitFor } from '../../harness/processes';
import { docker, inspect, run } from '../helpers/docker';
import { compareListings, listDocker, type DockerListing } from '../helpers/docker-listing';
import { BASE_IMAGE, CONSUL_IMAGE, NATS_IMAGE, PROJECT_DIR, ensureOfflineImages } from '../helpers/images';
import { CliStack, removedContainers, type CliSummary, type RemovedContainer, type StateResource } from '../helpers/cli-stack';

// A name of this run's own: two runs on one engine (two checkouts, a run and a benchmark) never touch
// each other's containers, networks, volumes or images, and the clean-up removes only what this run made.
// The name carries the test process's pid, so a later run can tell the leftovers of a killed run (its
// process is gone) from another run still going.
const STACK = `systest${process.pid}x${randomBytes(3).toString('hex')}`;
const RUN_STACK = /^systest(\d+)x[0-9a-f]{6}$/;
const STACK_KEY = 'io.consul-nginx-pulumi.stack';
const STACK_LABEL = `${STACK_KEY}=${STACK}`;
const NETWORK = `cnp-${STACK}-net`;
const COLLECTOR = `cnp-${STACK}-collector`;
/** A replica's container name carries its image's short id: the last name each number had, from the state. */
const knownReplicaNames = new Map<number, string>();
const replicaName = (n: number) => {
  const name = knownReplicaNames.get(n);
  if (!name) throw new Error(`replica ${n} was never deployed`);
  return name;
};
const replicaKey = (n: number) => `docker:index/container:Container::replicas-${n}`;
const activityKey = (n: number) => `docker:index/container:Container::activity-${n}`;
/** The activity replicas' container names (their SERVICE_IDs, in X-Instance-Id), by number, from the state. */
const knownActivityNames = new Map<number, string>();
/** The activity replicas the deploys declare (`activityReplicas`); scenario 2a changes it, every other deploy keeps it. */
let activityReplicas = 1;
/** Containers of the stack besides the replicas of either service: collector, Consul, the broker and the balancer's two (holder and gateway). */
const FIXED_CONTAINERS = 5;
/** Where the test leaves the evidence command's output for the README. */
const EVIDENCE_FILE = path.join(PROJECT_DIR, 'build/system/evidence.txt');

const cli = new CliStack(STACK, PROJECT_DIR);
/** The stack's settings file in the project (`pulumi config set` writes it); removed at the end. */
const STACK_FILE = cli.configFile();
/** True once `pulumi stack init` made the stack, until `pulumi destroy` removed its resources. */
let deployed = false;
/** The values `pulumi config set` last wrote into the stack's file. */
const configured = new Map<string, string>();
/** The stack's containers as its state holds them after the last deploy. */
type LiveContainer = { resourceName: string; name: string; id: string; urn: string };
/** The stack's running containers: every container of the state but the holder of secret files, which never starts. */
let live: LiveContainer[] = [];
let secretsHolder: LiveContainer | undefined;
/** Every image id the state ever held: the provider never deletes images, so the clean-up removes them. */
const builtImages = new Set<string>();
let ports: { balancerPort: number; balancerAdminPort: number; consulUiPort: number; collectorPort: number };
let url = '';
/** The balancer's admin listener: /_balancer/status and X-Upstream-Addr live there, not on `url`. */
let adminUrl = '';
/** The stack's balancerAdminToken output: every admin request carries it. */
let adminToken = '';
const adminHeaders = () => ({ Authorization: `Bearer ${adminToken}` });
let before: DockerListing;
/** Every volume any of the stack's containers mounted, named or anonymous. */
const stackVolumes = new Set<string>();
const loops: SteadyLoop[] = [];
/** Other system test files run before or after this one, never beside it (test/helpers/system-lock.ts). */
let releaseSystemLock: (() => void) | undefined;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A removed container with the grace its delete step stopped it with (the state's destroyGraceSeconds). */
type Removed = RemovedContainer & { graceSeconds?: number };
type DeploySummary = CliSummary & { removedContainers: Removed[] };

/** Reads the state back: the live containers, their names by number, their volumes, the images. */
async function readState(): Promise<void> {
  const state = await cli.state();
  const containers = state
    .filter((r) => r.type === 'docker:index/container:Container')
    .map((r) => ({ resourceName: r.name, name: String(r.outputs.name), id: r.id!, urn: r.urn }));
  live = containers.filter((c) => c.resourceName !== 'consul-secrets-holder');
  secretsHolder = containers.find((c) => c.resourceName === 'consul-secrets-holder');
  for (const r of state)
    if (r.type === 'docker:index/image:Image' && typeof r.outputs.repoDigest === 'string') builtImages.add(r.outputs.repoDigest);
  for (const c of live) {
    const replica = /^replicas-(\d+)$/.exec(c.resourceName);
    if (replica) knownReplicaNames.set(Number(replica[1]), c.name);
    const activity = /^activity-(\d+)$/.exec(c.resourceName);
    if (activity) knownActivityNames.set(Number(activity[1]), c.name);
    for (const mount of (await inspect('container', c.id))?.Mounts ?? []) if (mount.Type === 'volume') stackVolumes.add(mount.Name);
  }
}

/** The containers a summary's window removed, each with the grace its delete step had (from the engine's event). */
async function removedIn(summary: CliSummary): Promise<Removed[]> {
  const graces = new Map<string, number>();
  for (const e of summary.events) {
    if (e.kind === 'pre' && e.op.startsWith('delete') && e.key.startsWith('docker:index/container:') && e.oldInputs) {
      graces.set(String(e.oldInputs.name), Number(e.oldInputs.destroyGraceSeconds));
    }
  }
  return (await removedContainers(STACK_LABEL, summary.startedAt, summary.endedAt)).map((r) => ({
    ...r,
    graceSeconds: graces.get(r.name),
  }));
}

/**
 * A deploy as the README tells users to make one: `pulumi config set KEY VALUE` for each setting that changed
 * (into Pulumi.<stack>.yaml of the project), then `pulumi up --yes --skip-preview` in `projectDir`. A scratch
 * copy of the project gets the project's stack file first.
 */
async function deploy(
  t: ExecutionContext,
  replicas: number,
  projectDir = PROJECT_DIR,
  baseImage = BASE_IMAGE,
  extra: string[] = [],
): Promise<DeploySummary> {
  const started = Date.now();
  if (!deployed) {
    await cli.init();
    deployed = true;
  }
  const wanted: Record<string, string | number> = {
    replicas,
    activityReplicas,
    baseImage,
    consulImage: CONSUL_IMAGE,
    natsImage: NATS_IMAGE,
    ...ports,
  };
  const changed = Object.fromEntries(Object.entries(wanted).filter(([key, value]) => configured.get(key) !== String(value)));
  await cli.configSet(changed);
  for (const [key, value] of Object.entries(changed)) configured.set(key, String(value));
  if (projectDir !== PROJECT_DIR) fs.copyFileSync(STACK_FILE, cli.configFile(projectDir));
  const configuredMs = Date.now() - started;
  const summary = await cli.up(extra, { cwd: projectDir });
  const upMs = summary.endedAt - summary.startedAt;
  const removed = await removedIn(summary);
  await readState();
  adminToken ||= String((await cli.outputs()).values.balancerAdminToken);
  t.log(
    `replicas=${replicas}, activityReplicas=${activityReplicas}: pulumi up in ${(upMs / 1000).toFixed(1)} s (config set of ${Object.keys(changed).length} key(s) in ${configuredMs} ms): ` +
      `${summary.created.length} created, ${summary.replaced.length} replaced, ${summary.updated.length} updated, ${summary.deleted.length} deleted, ${summary.same.length} unchanged` +
      (summary.updated.length ? ` (updated: ${summary.updated.join(', ')})` : ''),
  );
  return { ...summary, removedContainers: removed };
}

async function upstreams(): Promise<string[]> {
  const res = await fetch(`${adminUrl}/_balancer/status`, { headers: adminHeaders(), signal: AbortSignal.timeout(2000) });
  return upstreamsOf((await res.json()) as BalancerStatusJson, 'hello')
    .slice()
    .sort();
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
  return Promise.all(numbers.map(async (n) => (await inspect('container', replicaName(n)))!.Id));
}

/** Every container running, and healthy where it has a health check (the balancer's holder has none: it only waits). */
async function allHealthy(): Promise<boolean> {
  const states = await Promise.all(live.map(async (c) => (await inspect('container', c.id))?.State));
  return states.length > 0 && states.every((s) => s?.Running === true && (s.Health === undefined || s.Health.Status === 'healthy'));
}

/** The instances (X-Instance-Id) that answered `count` GETs of /api/activity through the gateway, and any failure. */
async function activityAnswers(count: number): Promise<{ byInstance: Record<string, number>; failures: RequestResult[] }> {
  const report = await sendRequests(`${url}/api/activity`, count);
  return { byInstance: report.byInstance, failures: report.failures };
}

/** Waits until /api/activity through the gateway is answered by exactly these activity replicas. */
async function waitForActivity(what: string, names: string[], timeoutMs: number): Promise<void> {
  await waitFor(
    what,
    async () => {
      const { byInstance, failures } = await activityAnswers(20 * names.length);
      return failures.length === 0 && JSON.stringify(Object.keys(byInstance).sort()) === JSON.stringify([...names].sort());
    },
    timeoutMs,
    250,
  );
}

/** With `postUrl`, GETs alternate with POSTs, which nginx never retries once sent (see load.ts). */
function startLoop(postUrl = '', options: SteadyLoopOptions = {}): SteadyLoop {
  const loop = startSteadyLoopProcess(`${url}/`, { clients: 4, maxMs: 120_000, postUrl, ...options });
  loops.push(loop);
  return loop;
}

/** A file the collector keeps, over every day directory it wrote (collector/syslog-ng.conf: one per UTC day). */
async function collectorFile(file: string): Promise<string> {
  return docker(['exec', COLLECTOR, 'sh', '-c', `cat /var/log/stack/*/${file}`]).catch(() => '');
}

/**
 * Requests with the balancer's own access line for each (found by the loop's `seq=N`): which upstreams
 * nginx tried, how long each took, and how long nginx itself held the request. A request slow for the
 * client but quick in nginx waited outside nginx (connect, docker-proxy, the machine).
 */
async function withAccessLines(results: RequestResult[]): Promise<string[]> {
  await sleep(2000); // access lines reach the collector through the daemon's syslog driver
  const log = (await collectorFile(`cnp-${STACK}-balancer.log`)).split('\n');
  return results.map((r) => {
    const query = new URL(r.url).search;
    const line = log.find((l) => l.includes(`"uri":"/${query}"`));
    return `${Math.round(r.ms)} ms for the client, status ${r.status || r.error}: ${line ?? `(no access line for ${query})`}`;
  });
}

/** The failures with their access lines and nginx's recent errors, for an assertion message. */
async function explainFailures(report: LoadReport | SteadyLoopReport): Promise<string> {
  const stall = 'longestStallMs' in report ? `; longest stall of the clients' event loop: ${report.longestStallMs} ms` : '';
  const summary = describeFailures(report) + stall;
  if (report.failures.length === 0) return summary;
  const access = await withAccessLines(report.failures.slice(0, 5));
  const nginxErrors = (await collectorFile(`cnp-${STACK}-balancer.log`))
    .split('\n')
    .filter((l) => /"msg":"nginx".*\[(error|warn)\]/.test(l));
  return [summary, 'balancer access lines:', ...access, 'nginx errors and warnings (last 10):', ...nginxErrors.slice(-10)].join('\n');
}

test.before(async (t) => {
  t.timeout(SYSTEM_LOCK_WAIT_MS + 120_000);
  releaseSystemLock = await holdSystemLock();
  const [balancerPort, balancerAdminPort, consulUiPort, collectorPort] = await freePorts(4);
  ports = { balancerPort, balancerAdminPort, consulUiPort, collectorPort };
  url = `http://127.0.0.1:${ports.balancerPort}`;
  adminUrl = `http://127.0.0.1:${ports.balancerAdminPort}`;
  for (const stack of await stacksOfDeadRuns()) await sweepStack(stack);
  // The stack files a killed run left in the project (its state went with its temporary folder).
  for (const file of fs.readdirSync(PROJECT_DIR)) {
    const pid = /^Pulumi\.systest(\d+)x[0-9a-f]{6}\.yaml$/.exec(file)?.[1];
    if (pid !== undefined && !alive(Number(pid))) fs.rmSync(path.join(PROJECT_DIR, file), { force: true });
  }
  before = await listDocker();
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** System-test stacks on this engine whose test process is gone: what a killed run left. */
async function stacksOfDeadRuns(): Promise<string[]> {
  const labels = await Promise.all(
    ['container', 'network', 'volume'].map((kind) =>
      docker([
        kind,
        'ls',
        ...(kind === 'container' ? ['-a'] : []),
        '--filter',
        `label=${STACK_KEY}`,
        '--format',
        `{{.Label "${STACK_KEY}"}}`,
      ]),
    ),
  );
  const stacks = new Set(labels.join('\n').split('\n').filter(Boolean));
  return [...stacks].filter((stack) => {
    const pid = RUN_STACK.exec(stack)?.[1];
    return pid !== undefined && !alive(Number(pid));
  });
}

/** Removes everything carrying a stack's label, and its images. */
async function sweepStack(stack: string): Promise<void> {
  const label = `label=${STACK_KEY}=${stack}`;
  const containers = (await docker(['ps', '-aq', '--filter', label])).split('\n').filter(Boolean);
  if (containers.length) await docker(['rm', '-f', '-v', ...containers]);
  for (const kind of ['network', 'volume'] as const) {
    const names = (await docker([kind, 'ls', '-q', '--filter', label])).split('\n').filter(Boolean);
    if (names.length) await docker([kind, 'rm', ...names]).catch(() => {});
  }
  // The provider never deletes images. A stack's tags go by name, never by id with -f: an identical build of
  // another stack shares the id.
  const tags = (await docker(['images', '--format', '{{.Repository}}:{{.Tag}}', '--filter', `reference=cnp-*:${stack}`]))
    .split('\n')
    .filter(Boolean);
  if (tags.length) await docker(['image', 'rm', ...tags]).catch(() => {});
}

test.after.always(async () => {
  await Promise.all(loops.map((l) => l.stop()));
  // The engine's own tear-down first (a scenario failed before 8), then whatever carries the stack's label.
  if (deployed) await cli.destroy().catch((error: Error) => console.error(`pulumi destroy in after.always: ${error.message}`));
  await sweepStack(STACK);
  // Then the builds this run left untagged (earlier versions), if no one uses them.
  for (const image of [...builtImages].reverse()) await docker(['image', 'rm', image]).catch(() => {});
  fs.rmSync(STACK_FILE, { force: true });
  cli.remove();
});
// After the clean-up above (ava runs these hooks in order), so the next system test file starts on a quiet engine.
test.after.always(() => releaseSystemLock?.());

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
  t.true(summary.created.includes(activityKey(1)));
  t.is(
    live.length,
    3 + 1 + FIXED_CONTAINERS,
    "collector, consul, the broker, 3 hello replicas, 1 activity replica and the balancer's holder and gateway",
  );
  await waitFor('every container healthy', allHealthy, 120_000, 500);
  await waitForReplicaUpstreams('the balancer to serve the 3 replicas', [1, 2, 3], 30_000, 200);
  // The second service answers its route through the same published port (the gateway routes by path).
  await waitForActivity('the activity service to answer /api/activity through the gateway', [knownActivityNames.get(1)!], 60_000);
  const activity = await fetch(`${url}/api/activity`, { signal: AbortSignal.timeout(2000) });
  t.is(activity.status, 200);
  t.regex(activity.headers.get('content-type') ?? '', /^application\/json/);
  t.is(typeof (await activity.json()), 'object', "the recent events, as JSON (their shape is the activity service's own test)");

  const report = await sendRequests(`${url}/`, 300);
  t.is(report.failures.length, 0, await explainFailures(report));
  t.deepEqual(Object.keys(report.byInstance).sort(), [1, 2, 3].map(replicaName));
  for (const [instance, count] of Object.entries(report.byInstance)) t.true(count >= 60, `${instance} answered ${count}/300`);
  t.log('requests per instance:', report.byInstance);

  const evidenceArgs = ['--url', url, '--admin-url', adminUrl, '--requests', '200'];
  const evidence = await run('npx', ['tsx', 'scripts/evidence.ts', ...evidenceArgs], {
    cwd: PROJECT_DIR,
    env: { ...process.env, ADMIN_TOKEN: adminToken },
  });
  fs.mkdirSync(path.dirname(EVIDENCE_FILE), { recursive: true });
  fs.writeFileSync(EVIDENCE_FILE, `$ npm run evidence -- ${evidenceArgs.join(' ')}\n${evidence}`);
  t.log(evidence);
  t.regex(evidence, /\(failed\)\s+0\s+0\.0%/);
  for (const n of [1, 2, 3]) t.regex(evidence, new RegExp(`${replicaName(n)}\\s+\\d+\\s+\\d+\\.\\d%`));
  t.regex(evidence, /routing table \(\/_balancer\/status\): 2 service\(s\)/);
  t.regex(evidence, /hello: routes =\/, \/api\/users; 3 upstream\(s\)/);
  t.regex(evidence, /activity: routes \/api\/activity; 1 upstream\(s\)/);

  // Internal addresses only on the admin listener (published on loopback): the public port shows none.
  const pub = await fetch(`${url}/`, { signal: AbortSignal.timeout(2000) });
  t.is(pub.headers.get('x-upstream-addr'), null);
  const pubStatus = await fetch(`${url}/_balancer/status`, { signal: AbortSignal.timeout(2000) });
  t.is(pubStatus.status, 404);
  t.like(await pubStatus.json(), { error: 'not found' });
  const admin = await fetch(`${adminUrl}/`, { headers: adminHeaders(), signal: AbortSignal.timeout(2000) });
  t.regex(admin.headers.get('x-upstream-addr') ?? '', /^\d+\.\d+\.\d+\.\d+:8080$/);
  // Without the stack's balancerAdminToken the admin listener answers nothing but its refusal.
  const refused = await fetch(`${adminUrl}/_balancer/status`, { signal: AbortSignal.timeout(2000) });
  t.is(refused.status, 401);
  t.is(refused.headers.get('x-upstream-addr'), null);
});

test.serial(
  "1a. Consul's ACLs: anonymous gets nothing, the stack's consulToken sees every replica, the ACL step run again changes nothing",
  async (t) => {
    t.timeout(120_000);
    const consulUrl = `http://127.0.0.1:${ports.consulUiPort}`;
    const { values, secrets } = await cli.outputs();
    t.true(secrets.includes('consulToken'), 'consulToken is a secret output');
    const token = values.consulToken as string;
    t.regex(token, /^[0-9a-f-]{36}$/);
    const get = async (apiPath: string, withToken: boolean) => {
      const res = await fetch(consulUrl + apiPath, {
        headers: withToken ? { 'X-Consul-Token': token } : {},
        signal: AbortSignal.timeout(5000),
      });
      return { status: res.status, json: await res.json().catch((): unknown => null) };
    };
    t.deepEqual((await get('/v1/health/service/hello?passing', false)).json, [], 'anonymous sees no instance');
    t.deepEqual((await get('/v1/health/service/nats?passing', false)).json, [], 'anonymous does not see the broker either');
    t.is((await get('/v1/agent/self', false)).status, 403);
    t.is((await get('/v1/kv/hello/users/?recurse', false)).status, 404, 'anonymous sees no key');
    const passing = (await get('/v1/health/service/hello?passing', true)).json as Array<{ Service: { ID: string } }>;
    t.deepEqual(passing.map((e) => e.Service.ID).sort(), [1, 2, 3].map(replicaName).sort(), 'the UI token sees them');
    // The broker, registered by the program's step (nats-server cannot register itself), passes its /healthz
    // check, which Consul's container makes to the broker's container name on the stack network.
    type NatsEntry = { Service: { ID: string; Address: string; Port: number; Tags: string[] | null } };
    let nats: NatsEntry[] = [];
    // Checked every 2 s, and Consul staggers a new check's first run: on a loaded machine it may pass late.
    await waitFor(
      'nats passing in Consul',
      async () => (nats = (await get('/v1/health/service/nats?passing', true)).json as NatsEntry[]).length > 0,
      20_000,
      250,
    ).catch(() => undefined);
    t.deepEqual(
      nats.map((e) => ({ id: e.Service.ID, address: e.Service.Address, port: e.Service.Port, tags: e.Service.Tags ?? [] })),
      [{ id: 'nats', address: `cnp-${STACK}-nats`, port: 4222, tags: [] }],
    );
    const activity = (await get('/v1/health/service/activity?passing', true)).json as Array<{ Service: { ID: string } }>;
    t.deepEqual(
      activity.map((e) => e.Service.ID),
      [knownActivityNames.get(1)],
    );

    // The ACL init step once more: the same policies and tokens. The engine re-runs a local.Command only when
    // its inputs change (its triggers replace it; pulumi-command provider/pkg/provider/local/command.go), so an
    // unchanged `pulumi up` would not run it: `pulumi up --replace URN --target URN` is the engine's way to run
    // exactly that step again (pkg/cmd/pulumi/operations/up.go, --replace: "Specify resources to replace").
    // Its output is the command's stdout in the state.
    const stepOutput = async (name: string) => {
      const urn = (await cli.state()).find((r) => r.name === name)!.urn;
      const rerun = await deploy(t, 3, PROJECT_DIR, BASE_IMAGE, ['--target', urn, '--replace', urn]);
      t.deepEqual(rerun.replaced, [`command:local:Command::${name}`], `only ${name} is replaced`);
      t.deepEqual([rerun.created, rerun.deleted, rerun.updated], [[], [], []]);
      return String((await cli.state()).find((r) => r.name === name)!.outputs.stdout);
    };
    const aclState = async () => ({
      policies: ((await get('/v1/acl/policies', true)).json as Array<{ ID: string; Name: string }>).map((p) => `${p.Name} ${p.ID}`).sort(),
      tokens: ((await get('/v1/acl/tokens', true)).json as Array<{ AccessorID: string }>).map((k) => k.AccessorID).sort(),
    });
    const first = await aclState();
    for (const policy of ['replica-hello', 'balancer', 'activity', 'broker-nats'])
      t.true(
        first.policies.some((p) => p.startsWith(`${policy} `)),
        policy,
      );
    const output = await stepOutput('consul-acl-init');
    t.regex(output, /policy replica-hello updated/);
    t.deepEqual(await aclState(), first);

    // The broker's registration step once more: the same single instance, still passing.
    const registered = await stepOutput('broker-registration');
    t.regex(registered, /register-broker: service nats registered at cnp-\S+-nats:4222/);
    t.is(((await get('/v1/health/service/nats', true)).json as unknown[]).length, 1);
    await waitFor(
      'nats passing after registering again',
      async () => ((await get('/v1/health/service/nats?passing', true)).json as unknown[]).length === 1,
      10_000,
      200,
    );
  },
);

test.serial(
  '1b. every container runs hardened: unprivileged, read-only root, no capability, no-new-privileges, CPU, memory and process limits',
  async (t) => {
    t.timeout(60_000);
    const containers = live;
    t.is(containers.length, 3 + 1 + FIXED_CONTAINERS);
    for (const c of containers) {
      const info = (await inspect('container', c.id))!;
      const host = info.HostConfig;
      t.like(
        {
          readOnly: host.ReadonlyRootfs,
          capDrop: host.CapDrop,
          capAdd: host.CapAdd,
          securityOpt: host.SecurityOpt,
          nproc: host.Ulimits?.find((u) => u.Name === 'nproc'),
        },
        {
          readOnly: true,
          capDrop: ['ALL'],
          capAdd: null,
          securityOpt: ['no-new-privileges:true'],
          nproc: { Name: 'nproc', Soft: 4096, Hard: 4096 },
        },
        `${c.name} host config`,
      );
      t.true(host.NanoCpus > 0 && host.NanoCpus <= 1e9, `${c.name} has a CPU limit of at most one core`);
      t.true(host.Memory > 0 && host.MemorySwap === host.Memory, `${c.name} has a memory limit and no swap`);
      // Inside: the main process (pid 1) and an exec'd shell are not root, hold no capability, cannot gain any.
      const uid = (await docker(['exec', c.id, 'id', '-u'])).trim();
      t.not(uid, '0', `${c.name} runs as uid ${uid}`);
      const status = await docker(['exec', c.id, 'grep', '-E', '^(Uid|CapEff|NoNewPrivs)', '/proc/1/status']);
      t.regex(status, /^Uid:\s+[1-9]\d*\s/m, `${c.name}: process 1 is not root`);
      t.regex(status, /^CapEff:\s+0{16}$/m, `${c.name}: process 1 has no effective capability`);
      t.regex(status, /^NoNewPrivs:\s+1$/m, `${c.name}: process 1 cannot gain privileges`);
      // A write to the root filesystem fails; the declared tmpfs scratch takes one.
      const write = await docker(['exec', c.id, 'sh', '-c', 'echo x > /written']).then(
        () => 'written',
        (error: Error) => error.message,
      );
      t.regex(write, /Read-only file system/, `${c.name}: a write to / fails`);
      // The balancer's holder only waits: it has no scratch.
      if (host.Tmpfs?.['/tmp'] !== undefined) await docker(['exec', c.id, 'sh', '-c', 'echo x > /tmp/written && rm /tmp/written']);
      t.log(
        `${c.name}: uid ${uid}, ${host.NanoCpus / 1e9} CPU, ${host.Memory / 2 ** 20} MiB, tmpfs ${Object.keys(host.Tmpfs ?? {}).join(' ')}`,
      );
    }
    t.is((await docker(['exec', `cnp-${STACK}-consul`, 'id', '-un'])).trim(), 'consul');
  },
);

test.serial(
  '1c. no secret in docker inspect: no token or key in any container of the stack, its environment, command line or image (build arguments included)',
  async (t) => {
    t.timeout(60_000);
    const { values } = await cli.outputs();
    const management = values.consulToken as string;
    const state = await cli.state();
    const gossipKey = String(state.find((r) => r.name === 'consul-gossip-key')!.outputs.stdout).trim();
    const secrets = stackSecrets(values, gossipKey, [`cnp-${STACK}-consul`]);
    const found = (text: string) => secretsIn(secrets, text);
    t.truthy(secretsHolder, 'the holder of secret files is in the state');
    for (const c of [...live, secretsHolder!]) {
      const info = (await inspect('container', c.id))!;
      t.deepEqual(found(JSON.stringify(info)), [], `${c.name}: docker inspect`);
      const image = JSON.stringify(await inspect('image', info.Image));
      const history = await docker(['history', '--no-trunc', '--format', '{{.CreatedBy}}', info.Image]);
      t.deepEqual(found(image + history), [], `${c.name}: its image and its history (build arguments)`);
    }
    t.is((await inspect('container', secretsHolder!.id))!.State.Status, 'created', 'the holder never ran');
    // Each role reads its own token from its file, read-only; the agent its configuration.
    const replica = live.find((c) => c.resourceName === 'replicas-1')!;
    t.is((await docker(['exec', replica.id, 'cat', '/run/secrets/consul-token'])).trim(), roleToken(management, replicaRole('hello').role));
    const write = await docker(['exec', replica.id, 'sh', '-c', 'echo x > /run/secrets/consul-token']).then(
      () => 'written',
      (error: Error) => error.message,
    );
    t.regex(write, /Read-only file system/);
    t.is(
      (await docker(['exec', replica.id, 'ls', '/run/secrets'])).trim(),
      'consul-token',
      "only its own role's files: none of Consul's or another role's",
    );
    t.log(`${live.length + 1} containers and their images inspected: none holds any of ${[...secrets.keys()].join(', ')}`);
  },
);

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
  t.is(report.failures.length, 0, await explainFailures(report));
  t.true((report.byInstance[replicaName(4)] ?? 0) > 0, 'replica 4 served');
  t.true((report.byInstance[replicaName(5)] ?? 0) > 0, 'replica 5 served');
  t.deepEqual(await containerIds([1, 2, 3]), ids, 'the existing 3 containers are the same ones');
  t.log(
    `${report.total} requests during scale-up (longest stall of the clients' event loop: ${report.longestStallMs} ms):`,
    report.byInstance,
  );
  t.log('slowest requests:', (await withAccessLines(report.slowest)).join('\n'));
});

test.serial(
  '3. replicas 5 -> 2 under the loop: only 3, 4, 5 go, each stopped with its grace and exiting by itself, no request fails',
  async (t) => {
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
      t.false(removed.killed, `${removed.name} got no SIGKILL`);
      t.log(`${removed.name}: stopped in ${removed.stopMs} ms, exit code ${removed.exitCode}`);
    }
    t.is(summary.removedContainers.length, 3);
    await waitForReplicaUpstreams('the balancer to serve the 2 left', [1, 2], 30_000, 100);
    await sleep(1000);
    const report = await loop.stop();
    t.is(report.failures.length, 0, await explainFailures(report));
    t.true((report.byMethod.POST ?? 0) > 0, `POSTs in the loop: ${JSON.stringify(report.byMethod)}`);
    t.deepEqual(await containerIds([1, 2]), ids);
    for (const n of [3, 4, 5]) t.is(await inspect('container', replicaName(n)), undefined);
    t.log(
      `${report.total} requests during scale-down (longest stall of the clients' event loop: ${report.longestStallMs} ms):`,
      report.byInstance,
    );
    t.log('slowest requests:', (await withAccessLines(report.slowest)).join('\n'));
  },
);

test.serial(
  '3a. activityReplicas 1 -> 2 -> 1 under a steady loop on hello: only activity containers are created and removed, hello and the rest untouched',
  async (t) => {
    t.timeout(240_000);
    // By name: the state lists resources in the order the last `pulumi up` registered them, not creation order.
    const others = (): Record<string, string> =>
      Object.fromEntries(
        live
          .filter((c) => !/^activity-\d+$/.test(c.resourceName))
          .map((c): [string, string] => [c.resourceName, c.id])
          .sort(),
      );
    const before = others();
    const loop = startLoop();
    await sleep(1000);

    activityReplicas = 2;
    const up = await deploy(t, 2);
    t.deepEqual(up.created, [activityKey(2)], 'scaling the activity service creates its own container only');
    t.deepEqual([up.replaced, up.deleted, up.updated], [[], [], []]);
    t.deepEqual(others(), before, 'every other container is the same one');
    await waitForActivity(
      'both activity replicas to answer /api/activity',
      [1, 2].map((n) => knownActivityNames.get(n)!),
      60_000,
    );

    activityReplicas = 1;
    const down = await deploy(t, 2);
    t.deepEqual(down.deleted, [activityKey(2)], 'only the highest-numbered activity replica goes');
    t.deepEqual([down.created, down.replaced, down.updated], [[], [], []]);
    t.is(down.removedContainers[0]?.exitCode, 0, 'it drained and exited by itself');
    t.deepEqual(others(), before);
    await waitForActivity('activity replica 1 alone to answer', [knownActivityNames.get(1)!], 60_000);

    const report = await loop.stop();
    t.is(report.failures.length, 0, await explainFailures(report));
    t.log(`${report.total} hello requests while the activity service scaled 1 -> 2 -> 1, none failed`);
  },
);

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

  await waitFor(
    `${name} restarted by its restart policy`,
    async () => {
      const c = await inspect('container', name);
      return c !== undefined && c.RestartCount >= restartsBefore + 1 && c.State.Running && c.State.Pid !== state.Pid;
    },
    30_000,
    100,
  );
  // It must first leave the set (its check fails while it is down), then come back once healthy again, at
  // the address it has now: Docker does not promise a restarted container its old address, and the
  // replica registers whichever it has.
  const upstreamAfter = await replicaUpstream(name);
  await waitFor(
    `${name} to leave the balancer's set and come back`,
    async () => left && (await upstreams()).includes(upstreamAfter),
    20_000,
    100,
  ).catch((error) => t.log(String(error)));
  watching = false;
  await watcher;
  t.log(
    `back ${Date.now() - killedAt} ms after the kill at ${upstreamAfter}` +
      `${upstreamAfter === upstream ? ' (its address before)' : ` (was ${upstream})`}; restart count ${(await inspect('container', name))?.RestartCount}`,
  );
  await waitFor(`${name} to answer through the balancer`, async () => (await requestOnce(`${url}/`)).instance === name, 30_000, 20);
  await sleep(1000);
  const report = await loop.stop();
  t.true(left, `${name} (${upstream}) left /_balancer/status after the kill`);
  const now = await upstreams();
  t.true(now.includes(upstreamAfter), `${name} is back in /_balancer/status at ${upstreamAfter}: ${now.join(', ')}`);
  if (upstreamAfter !== upstream) t.false(now.includes(upstream), `its old address ${upstream} is gone from the set`);
  t.is(report.failures.length, 0, await explainFailures(report));
  t.true((await inspect('container', name))!.RestartCount >= restartsBefore + 1);
  t.log(
    `${report.total} requests around the crash (longest stall of the clients' event loop: ${report.longestStallMs} ms):`,
    report.byInstance,
  );
  t.log('slowest requests:', (await withAccessLines(report.slowest)).join('\n'));
});

test.serial(
  "5. logs: a marker in a request lands in the serving replica's file and the combined file; Consul and the balancer have theirs",
  async (t) => {
    t.timeout(120_000);
    const marker = `cnp-marker-${randomUUID()}`;
    // Under /api/users, a route of hello (any other path is the gateway's own 404), in the path, which the
    // replica logs; the replica answers it with its own 4xx (no such user, or not an id).
    const answer = await requestOnce(`${url}/api/users/${marker}`);
    t.truthy(answer.instance, `the request was answered by a replica (status ${answer.status} ${answer.error ?? ''})`);
    const file = `${answer.instance}.log`;
    await waitFor(`${marker} in ${file}`, async () => (await collectorFile(file)).includes(marker), 30_000, 250);
    await waitFor(`${marker} in all.log`, async () => (await collectorFile('all.log')).includes(marker), 30_000, 250);
    // The balancer's file gets nginx's own JSON access line for the same request.
    const balancerFile = `cnp-${STACK}-balancer.log`;
    await waitFor(`${marker} in ${balancerFile}`, async () => (await collectorFile(balancerFile)).includes(marker), 30_000, 250);
    const accessLine = (await collectorFile(balancerFile)).split('\n').find((l) => l.includes(marker))!;
    t.true(answer.status === 400 || answer.status === 404, `status ${answer.status}`);
    t.regex(accessLine, new RegExp(`"source":"nginx","msg":"request".*"status":${answer.status}`));
    t.regex(await collectorFile(`cnp-${STACK}-consul.log`), /agent/, "Consul's own output reached its file");
    t.log(`${file}: ${(await collectorFile(file)).split('\n').find((l) => l.includes(marker))}`);
  },
);

/** The replica containers (name and id) of the live stack. */
const liveReplicas = () => live.filter((c) => /^replicas-\d+$/.test(c.resourceName));

test.serial(
  '6. a code change under service/ rolls out under GETs and POSTs: none fails, every answer after it is the new code, each old replica drained and exited 0',
  async (t) => {
    t.timeout(300_000);
    // The change is made in a scratch copy, so other test files keep bundling the working tree.
    const copy = scratchCopy('cnp-systest-');
    t.teardown(() => copy.remove());
    const marker = `rolled-${randomBytes(3).toString('hex')}`;
    copy.edit('service/app.ts', 'version: deps.version', `version: \`\${deps.version}+${marker}\``);
    const before = new Map(live.map((c) => [c.resourceName, c]));
    const oldReplicas = liveReplicas();
    t.is(oldReplicas.length, 2);

    const loop = startLoop();
    const mixedLoop = startLoop(`${url}/api/users`, { clients: 2, maxMs: 240_000 });
    await sleep(1000);
    const started = Date.now();
    const summary = await deploy(t, 2, copy.dir);
    const deployMs = Date.now() - started;
    await sleep(1000);
    const [report, mixed] = [await loop.stop(), await mixedLoop.stop()];

    const replacedContainers = () => summary.replaced.filter((k) => k.startsWith('docker:index/container:')).sort();
    t.deepEqual(replacedContainers(), [replicaKey(1), replicaKey(2)]);
    for (const role of ['balancer-ports', 'balancer-gateway', 'collector-container', 'consul-agent', 'broker-container', 'activity-1']) {
      t.is(live.find((c) => c.resourceName === role)!.id, before.get(role)!.id, `${role} kept its container`);
    }
    // The engine's order: both new replicas are created (and ready) before either old one is deleted, last.
    const replicaSteps = summary.steps.filter((s) => /Container::replicas-\d+$/.test(s));
    t.deepEqual(
      replicaSteps.map((s) => s.split(' ')[0]),
      ['create-replacement', 'create-replacement', 'delete-replaced', 'delete-replaced'],
    );
    const firstDelete = summary.steps.findIndex((s) => s.startsWith('delete'));
    t.true(
      summary.steps.slice(firstDelete).every((s) => s.startsWith('delete')),
      `deletes come last: ${summary.steps.join(', ')}`,
    );
    // Ready: each create-replacement finished (its resOutputsEvent: the provider's create returned, which waits
    // for the container's health check) before the first delete-replaced of a replica began.
    const isReplica = (e: { key: string }) => /Container::replicas-\d+$/.test(e.key);
    const created = summary.events.filter((e) => isReplica(e) && e.kind === 'outputs' && e.op === 'create-replacement');
    const firstReplicaDelete = summary.events.find((e) => isReplica(e) && e.kind === 'pre' && e.op === 'delete-replaced');
    t.is(created.length, 2);
    t.true(
      created.every((e) => e.sequence < firstReplicaDelete!.sequence),
      `both new replicas done (events ${created.map((e) => e.sequence).join(', ')}) before the first delete (${firstReplicaDelete?.sequence})`,
    );
    // Each old replica was stopped with its grace and exited 0 after draining.
    t.deepEqual(summary.removedContainers.map((r) => r.name).sort(), oldReplicas.map((c) => c.name).sort());
    for (const removed of summary.removedContainers) {
      t.is(removed.graceSeconds, 15);
      t.is(removed.exitCode, 0, `${removed.name} drained and exited by itself`);
      t.is(await inspect('container', removed.name), undefined);
    }

    t.is(report.failures.length, 0, await explainFailures(report));
    t.is(mixed.failures.length, 0, await explainFailures(mixed));
    t.true((mixed.byMethod.POST ?? 0) > 20, `POSTs ran through the deploy: ${JSON.stringify(mixed.byMethod)}`);

    // After the deploy every answer comes from a new replica running the changed code.
    const newNames = liveReplicas()
      .map((c) => c.name)
      .sort();
    t.deepEqual(
      newNames.filter((n) => oldReplicas.some((o) => o.name === n)),
      [],
      'new container names (new image id)',
    );
    for (const name of newNames) t.regex(name, new RegExp(`^cnp-${STACK}-replica-\\d-[0-9a-f]{12}$`));
    const after = await sendAll(`${url}/`, 100);
    t.deepEqual(
      after.filter((r) => !r.ok || !newNames.includes(r.instance!)),
      [],
      'every answer from a new replica',
    );
    const versions = await Promise.all(
      Array.from({ length: 10 }, async () => ((await (await fetch(`${url}/`)).json()) as { version: string }).version),
    );
    t.true(
      versions.every((v) => v.endsWith(`+${marker}`)),
      versions.join(', '),
    );
    t.log(
      `code deploy of 2 replicas in ${(deployMs / 1000).toFixed(1)} s; ${report.total} GETs and ${mixed.total} mixed GET/POST requests during it, 0 failed; ` +
        `old replicas stopped in ${summary.removedContainers.map((r) => `${r.stopMs} ms`).join(', ')}`,
    );
  },
);

test.serial(
  '7. a new baseImage rebuilds every image built on it: replicas roll and the balancer is replaced with 0 failed requests through the public port',
  async (t) => {
    t.timeout(300_000);
    // A different base image (another id) under this run's own tag: sweepStack removes it.
    const base = `cnp-base:${STACK}`;
    await docker(['build', '-q', '-t', base, '-'], { input: `FROM ${BASE_IMAGE}\nLABEL ${STACK_LABEL}\n` });
    const oldReplicas = liveReplicas();
    const holderBefore = live.find((c) => c.resourceName === 'balancer-ports')!;
    const oldGateway = live.find((c) => c.resourceName === 'balancer-gateway')!;
    const timed = startLoop(`${url}/api/users`, { clients: 2, maxMs: 240_000, keepResults: true });
    const steady = startLoop('', { clients: 2, maxMs: 240_000, keepResults: true });
    await sleep(1000);
    const started = Date.now();
    const summary = await deploy(t, 2, PROJECT_DIR, base);
    const deployMs = Date.now() - started;
    await sleep(1000);
    const [mixed, gets] = [await timed.stop(), await steady.stop()];

    t.deepEqual(
      summary.replaced.filter((k) => k.startsWith('docker:index/container:')).sort(),
      // The activity image is built on baseImage too; the broker's is built on natsImage and stays, and so does
      // the balancer's holder (its ports and namespace), whatever its image.
      ['balancer-gateway', 'collector-container', 'replicas-1', 'replicas-2', 'activity-1']
        .map((n) => `docker:index/container:Container::${n}`)
        .sort(),
    );
    t.is(live.find((c) => c.resourceName === 'balancer-ports')!.id, holderBefore.id, 'the holder kept its container');
    for (const removed of summary.removedContainers.filter((r) => oldReplicas.some((o) => o.name === r.name))) {
      t.is(removed.exitCode, 0, `${removed.name} drained and exited by itself`);
    }

    // The new gateway was created, and healthy, before the old one was deleted; the old one stopped by itself.
    const newGateway = live.find((c) => c.resourceName === 'balancer-gateway')!;
    t.not(newGateway.name, oldGateway.name);
    const gatewayKey = 'docker:index/container:Container::balancer-gateway';
    t.deepEqual(
      summary.steps.filter((s) => s.endsWith(gatewayKey)).map((s) => s.split(' ')[0]),
      ['create-replacement', 'delete-replaced'],
    );
    const removedGateway = summary.removedContainers.find((r) => r.name === oldGateway.name);
    t.is(removedGateway?.exitCode, 0, 'the old gateway stopped nginx gracefully and exited 0');
    t.false(removedGateway?.killed, 'within its grace');

    // The replacement: from the new gateway's creation to the old one's removal. Both listen on the port
    // meanwhile; the old one stops accepting only once the new one is healthy.
    const createdAt = Date.parse((await inspect('container', newGateway.id))!.Created);
    const windowEnd = removedGateway!.destroyedAt;
    const results = [...mixed.results!, ...gets.results!];
    const inWindow = results.filter((r) => r.at >= createdAt && r.at <= windowEnd);
    t.true(inWindow.length > 50, `requests were sent while the balancer was replaced: ${inWindow.length}`);
    t.is(mixed.failures.length, 0, await explainFailures(mixed));
    t.is(gets.failures.length, 0, await explainFailures(gets));
    t.log(
      `baseImage deploy in ${(deployMs / 1000).toFixed(1)} s; balancer replaced in ${windowEnd - createdAt} ms (new gateway created -> old one removed; ` +
        `the old one stopped in ${removedGateway!.stopMs} ms): ${inWindow.length} requests sent through the public port in that window ` +
        `(${inWindow.filter((r) => r.method === 'POST').length} POSTs), ${inWindow.filter((r) => !r.ok).length} failed; ` +
        `${results.length} requests during the whole deploy, ${mixed.failures.length + gets.failures.length} failed`,
    );
    const after = await sendAll(`${url}/`, 50);
    t.deepEqual(
      after.filter((r) => !r.ok),
      [],
      'the new stack serves',
    );
  },
);

test.serial(
  '7b. a stack made before both layouts shared one declaration (its Consul component `discovery`, cnp:infra:Discovery) updates with every resource kept',
  async (t) => {
    t.timeout(240_000);
    // The state as that code left it: the same resources under the Consul component's former URNs (infra/consul-agent.ts's aliases).
    const former: [string, string][] = [
      [
        'cnp:infra:ConsulAgent$docker:index/container:Container::consul-agent',
        'cnp:infra:Discovery$docker:index/container:Container::discovery-consul',
      ],
      ['cnp:infra:ConsulAgent$docker:index/image:Image::consul-image', 'cnp:infra:Discovery$docker:index/image:Image::discovery-image'],
      ['cnp:infra:ConsulAgent$docker:index/volume:Volume::consul-data', 'cnp:infra:Discovery$docker:index/volume:Volume::discovery-data'],
      ['cnp:infra:ConsulAgent::consul"', 'cnp:infra:Discovery::discovery"'],
    ];
    let exported = await cli.ok(['stack', 'export']);
    for (const [now, then] of former) {
      t.true(exported.includes(now), `the state holds ${now}`);
      exported = exported.replaceAll(now, then);
    }
    const file = path.join(cli.root, 'former-state.json');
    fs.writeFileSync(file, exported);
    await cli.ok(['stack', 'import', '--file', file]);
    const ids = (state: StateResource[]) =>
      state
        .filter((r) => r.custom)
        .map((r) => `${r.type} ${r.id}`)
        .sort();
    const idsBefore = ids(await cli.state());
    t.true((await cli.state()).some((r) => r.urn.endsWith('cnp:infra:Discovery::discovery')));

    const summary = await cli.up();

    t.deepEqual(summary.steps, [], 'no resource created, updated, replaced or deleted');
    const state = await cli.state();
    t.deepEqual(ids(state), idsBefore, 'every resource kept its id');
    t.deepEqual(
      state
        .filter((r) => r.type.startsWith('cnp:infra:Consul') || r.type.startsWith('cnp:infra:Discovery'))
        .map((r) => r.urn.split('::').pop()),
      ['consul'],
      'the component is under its new name',
    );
    t.log(`${summary.same.length} resources kept under their new names, none touched`);
  },
);

test.serial("8. tear-down leaves the engine's containers, networks and volumes as they were", async (t) => {
  t.timeout(120_000);
  const summary = await cli.destroy();
  deployed = false;
  t.log(`pulumi destroy in ${((summary.endedAt - summary.startedAt) / 1000).toFixed(1)} s: ${summary.deleted.length} deleted`);
  t.true(summary.deleted.length >= 10);
  t.deepEqual(await cli.state(), [], 'the state holds no resource');
  const after = await listDocker();
  const changes = compareListings(before, after);
  // Other test files may use the engine at the same time: any difference must not be the stack's.
  const ours = changes.filter((c) => c.entry.includes(`cnp-${STACK}`) || (c.kind === 'volumes' && stackVolumes.has(c.entry)));
  t.deepEqual(ours, [], 'nothing of the stack is left');
  if (changes.length) t.log('changes made meanwhile by others (not the stack):', changes);
  t.deepEqual((await docker(['ps', '-aq', '--filter', `label=${STACK_KEY}=${STACK}`])).trim(), '');
  t.true(stackVolumes.size >= 3, "the stack did mount volumes (logs, Consul's data, the broker's stream), so their removal was checked");
});
