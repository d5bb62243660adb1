// The multi-VM system test: four Docker-in-Docker "VMs" (test/helpers/vms.ts) laid out as the course's
// (vm1 discovery + balancer, vm2 collector + replicas, vm3 replicas), with three brokers (vm1, vm2 and vm4, a
// broker VM holding no gateway or collector, which a scenario kills), deployed as the README tells users:
// the `vms` config set key by key with `pulumi config set --path`, the ssh key with `config set --secret
// sshPrivateKey < keyfile`, then `pulumi up` through the real CLI and its Node.js language host
// (test/helpers/cli-stack.ts), in a scratch copy of the project, on a stack of the run's own name with a
// file backend in a temporary folder. The engine runs each VM's docker provider over ssh and the
// bootstraps as remote.Commands (the provider stand-ins of harness/plugins/). What a deploy did comes from
// the engine's event log, what runs where from the stack's state. The host reaches the VMs only through
// ports they publish on 127.0.0.1: sshd, and the balancer's port on vm1, which the VM container publishes
// (the client runs on the host, through vm1's port mapping). Serial: each scenario starts from the one before.
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BOOTSTRAP_SCRIPT_PATH } from '../../infra/vm-host';
import { upstreamsOf, type BalancerStatusJson } from '../../harness/balancer';
import { describeFailures, getJson, sendAll, sendRequests, startSteadyLoopProcess, type SteadyLoop } from '../../harness/load';
import { CA_FILE_VARIABLE } from '../../harness/tls';
import { waitFor } from '../../harness/processes';
import { openSshTunnel, type SshTunnel } from '../../lib/ssh-tunnel';
import { remoteFailure, runOverSsh } from '../../harness/plugins/command/ssh';
import { scratchCopy, type ScratchCopy } from '../helpers/scratch-copy';
import { holdSystemLock, SYSTEM_LOCK_WAIT_MS } from '../helpers/system-lock';
import { LABEL_PREFIX } from '../../infra/naming';
import { secretsIn, stackSecrets } from '../helpers/stack-secrets';
import { COLLECTOR_SYSLOG_PORT } from '../../infra/collector';
import {
  ACTIVITY_PORTS,
  CONSUL_SERVER_RPC_PORT,
  NATS_CLIENT_PORT,
  NATS_CLUSTER_PORT,
  portRangeText,
  REPLICA_PORTS,
} from '../../infra/vm-ports';
import { CliStack, removedContainers, type CliSummary, type StateResource } from '../helpers/cli-stack';
import { docker, run } from '../helpers/docker';
import { BASE_IMAGE, CONSUL_IMAGE, NATS_IMAGE } from '../helpers/images';
import { VmFleet, containerHostKey, ensureVmImages, isAlive, sweepDeadVmRuns, type Vm } from '../helpers/vms';
import { splitPem } from '../../infra/consul-tls';
import { stackTls } from '../helpers/stack-tls';
import { streamCopiesOf, type StreamCopies } from '../../harness/nats';
import { openEventStream } from '../../harness/sse';
import { USER_EVENTS_STREAM } from '../../lib/user-events';

const STACK = `vmstack${process.pid}x${randomBytes(3).toString('hex')}`;
/** Where every VM's daemon reads its syslog TLS files (infra/syslog-tls.ts daemonTlsPaths). */
const SYSLOG_TLS_DIR = `/etc/cnp-${STACK}-syslog-tls`;
/** The balancer's port inside vm1 (on its address); the VM container publishes it on 127.0.0.1. */
const BALANCER_PORT = 18080;
/** The balancer's admin listener (/_balancer/status) inside vm1, on its private address; published on 127.0.0.1 the same way. */
const BALANCER_ADMIN_PORT = 18081;
const fleet = new VmFleet();
/** Other system test files run before or after this one, never beside it (test/helpers/system-lock.ts). */
let releaseSystemLock: (() => void) | undefined;
/** The project, copied (the CLI writes Pulumi.<stack>.yaml and the program its ssh files into it). */
let copy: ScratchCopy | undefined;
let cli: CliStack | undefined;
/** Set once `pulumi up` ran: after.always then destroys the stack (unless the last scenario did). */
let deployed = false;
/** Where the program keeps its ssh key file and known_hosts for this stack (infra/vm-host.ts SshAccess). */
let sshDir = '';
const loops: SteadyLoop[] = [];
let url = '';
let adminUrl = '';
/** The stack's state after the last `pulumi up`. */
let state: StateResource[] = [];
/** The stack outputs after the last `pulumi up` (consulToken among them) and which are secrets. */
let outputs: Record<string, unknown> = {};
let secretOutputs: string[] = [];
/** An ssh tunnel to vm1's Consul agent (the API listens on the VMs' loopback only), opened on first use. */
let consulTunnel: Promise<SshTunnel> | undefined;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The `vms` config for the fleet, in the course's layout, as the `pulumi config set --path` lines of README.md's
 * and infra/README.md's "Deploy on VMs": [path, value]. ssh host and port are the VM containers' sshd on loopback.
 */
function vmsConfigLines(): Array<[string, string]> {
  const entry = (i: number, vm: Vm, roles: string[], publicAddress?: string): Array<[string, string]> => [
    [`vms[${i}].name`, vm.name],
    [`vms[${i}].ssh.host`, vm.ssh.host],
    [`vms[${i}].ssh.user`, vm.ssh.user],
    [`vms[${i}].ssh.port`, String(vm.ssh.port)],
    [`vms[${i}].privateAddress`, vm.privateAddress],
    ...(publicAddress ? [[`vms[${i}].publicAddress`, publicAddress] as [string, string]] : []),
    ...roles.map((role, r): [string, string] => [`vms[${i}].roles[${r}]`, role]),
  ];
  const [vm1, vm2, vm3, vm4] = ['vm1', 'vm2', 'vm3', 'vm4'].map((name) => fleet.vm(name));
  return [
    ...entry(0, vm1, ['discovery', 'balancer', 'broker'], vm1.privateAddress),
    ...entry(1, vm2, ['collector', 'replicas', 'broker', 'activity']),
    ...entry(2, vm3, ['replicas', 'activity']),
    ...entry(3, vm4, ['broker']),
  ];
}

/** The first deploy's config, key by key as a user types it; later ones set `replicas` only. Resolves with its ms. */
async function configure(): Promise<number> {
  const started = Date.now();
  await cli!.configSet(Object.fromEntries(vmsConfigLines()), { path: true });
  await cli!.configSetSecret('sshPrivateKey', fleet.keyFile);
  // The offline bases (infra/README.md) and the balancer's ports inside vm1, which the VM container publishes.
  await cli!.configSet({
    baseImage: BASE_IMAGE,
    consulImage: CONSUL_IMAGE,
    natsImage: NATS_IMAGE,
    balancerPort: BALANCER_PORT,
    balancerAdminPort: BALANCER_ADMIN_PORT,
  });
  return Date.now() - started;
}

async function deploy(t: ExecutionContext, replicas: number): Promise<CliSummary> {
  const configMs = deployed ? 0 : await configure();
  await cli!.configSet({ replicas });
  deployed = true;
  const summary = await cli!.up();
  const upMs = summary.endedAt - summary.startedAt;
  state = await cli!.state();
  ({ values: outputs, secrets: secretOutputs } = await cli!.outputs());
  // The admin listener on a VM is HTTPS with a certificate of the stack's CA, an output: the status reads trust it.
  const caFile = path.join(copy!.dir, 'internal-ca.pem');
  fs.writeFileSync(caFile, String(outputs.internalCaCertificate));
  process.env[CA_FILE_VARIABLE] = caFile;
  t.log(
    `replicas=${replicas}: pulumi up on the VMs in ${(upMs / 1000).toFixed(1)} s${configMs ? ` (config set in ${(configMs / 1000).toFixed(1)} s)` : ''}: ` +
      `${summary.created.length} created, ${summary.updated.length} updated, ${summary.replaced.length} replaced, ` +
      `${summary.deleted.length} deleted, ${summary.same.length} same`,
  );
  return summary;
}

/** A resource of the state by its name in the program. */
const resource = (name: string): StateResource => {
  const found = state.find((r) => r.name === name);
  if (!found) throw new Error(`no resource ${name} in the stack's state: ${state.map((r) => r.name).join(', ')}`);
  return found;
};

/**
 * The docker containers of the state: resource name, container name and id, and its VM (by its provider, `<vm>-docker`).
 * Without `holders`, only those that run: not each VM's holder of secret files, which is created and never started.
 */
function containers({ holders = false } = {}): Array<{ resourceName: string; name: string; id: string; vm: string }> {
  return state
    .filter((r) => r.type === 'docker:index/container:Container' && (holders || !r.name.endsWith('-secrets-holder')))
    .map((r) => ({ resourceName: r.name, name: r.outputs.name as string, id: r.id!, vm: r.providerName.replace(/-docker$/, '') }));
}

/** The `-http-port=` of a Consul agent's command. */
const consulHttpPort = (vm: string): string =>
  (resource(`${vm}-consul-agent`).inputs.command as string[]).find((a) => a.startsWith('-http-port='))!.split('=')[1];

/** A GET of vm1's Consul agent's API with the stack's consulToken, through the tunnel. */
async function consulGet<T>(apiPath: string): Promise<T> {
  const vm1 = fleet.vm('vm1');
  consulTunnel ??= openSshTunnel(
    { target: `${vm1.ssh.user}@${vm1.ssh.host}`, port: vm1.ssh.port, opts: ['-F', '/dev/null', ...fleet.sshOptions] },
    `127.0.0.1:${consulHttpPort('vm1')}`,
  );
  const res = await fetch(`http://127.0.0.1:${(await consulTunnel).localPort}${apiPath}`, {
    headers: { 'X-Consul-Token': outputs.consulToken as string },
    signal: AbortSignal.timeout(5000),
  });
  if (!res.ok) throw new Error(`Consul answered ${res.status} to GET ${apiPath}`);
  return (await res.json()) as T;
}

/**
 * The replica containers (of `stem`'s resources, `<vm>-replicas-<n>` or `<vm>-activity-<n>`): number, container
 * name, VM, and the address the balancer reaches it at, which Consul advertises: on a VM a replica listens on
 * the first free port of its service's range, known only to itself and, once it registered, to Consul.
 */
async function replicas(
  stem: 'replicas' | 'activity' = 'replicas',
): Promise<Array<{ n: number; name: string; vm: string; upstream: string }>> {
  const entries = await consulGet<Array<{ Service: { ID: string; Address: string; Port: number } }>>(
    `/v1/health/service/${stem === 'replicas' ? 'hello' : 'activity'}`,
  );
  const registered = new Map(entries.map((e) => [e.Service.ID, `${e.Service.Address}:${e.Service.Port}`]));
  return containers()
    .flatMap((c) => {
      const n = new RegExp(`-${stem}-(\\d+)$`).exec(c.resourceName)?.[1];
      return n ? [{ n: Number(n), name: c.name, vm: c.vm, upstream: registered.get(c.name) ?? 'not registered' }] : [];
    })
    .sort((a, b) => a.n - b.n);
}

async function upstreams(): Promise<string[]> {
  // HTTPS, verified with the stack's internal CA (deploy() points BALANCER_CA_FILE at it).
  const status = await getJson<BalancerStatusJson>(`${adminUrl}/_balancer/status`, {
    Authorization: `Bearer ${String(outputs.balancerAdminToken)}`,
  });
  return upstreamsOf(status, 'hello').slice().sort();
}

async function allHealthy(): Promise<boolean> {
  const states = await Promise.all(
    containers().map(async (c) => {
      const json = await fleet.exec(c.vm, ['docker', 'inspect', '--format', '{{json .State}}', c.id]).catch(() => 'null');
      return JSON.parse(json) as { Running: boolean; Health?: { Status: string } } | null;
    }),
  );
  return states.length > 0 && states.every((s) => s?.Running && (!s.Health || s.Health.Status === 'healthy'));
}

/** `consul members` as vm1's agent sees the cluster: node name → status. */
async function members(): Promise<Map<string, string>> {
  const consul = containers().find((c) => c.resourceName === 'vm1-consul-agent')!;
  const text = await fleet.exec('vm1', [
    'docker',
    'exec',
    consul.name,
    'consul',
    'members',
    `-http-addr=127.0.0.1:${consulHttpPort('vm1')}`,
  ]);
  return new Map(
    text
      .split('\n')
      .slice(1)
      .filter(Boolean)
      .map((line) => {
        const [node, , status] = line.split(/\s+/);
        return [node, status];
      }),
  );
}

/**
 * A file the collector on vm2 keeps, over every day directory it wrote (collector/syslog-ng.conf: one per
 * UTC day); with '' the names of the files in them.
 */
async function collectorFile(file: string): Promise<string> {
  const collector = containers().find((c) => c.resourceName === 'vm2-collector-container')!;
  const script = file === '' ? 'for f in /var/log/stack/*/*.log; do basename "$f"; done' : `cat /var/log/stack/*/${file}`;
  const command = ['sh', '-c', script];
  return fleet.exec('vm2', ['docker', 'exec', collector.name, ...command]).catch(() => '');
}

/** Containers, networks and volumes on a VM's engine, the engine's own networks left out. */
async function vmObjects(name: string): Promise<string[]> {
  const [containers, networks, volumes] = await Promise.all([
    fleet.exec(name, ['docker', 'ps', '-a', '--format', 'container {{.Names}}']),
    fleet.exec(name, ['docker', 'network', 'ls', '--format', 'network {{.Name}}']),
    fleet.exec(name, ['docker', 'volume', 'ls', '--format', 'volume {{.Name}}']),
  ]);
  return (containers + networks + volumes).split('\n').filter((l) => l && !/^network (bridge|host|none)$/.test(l));
}

test.before(async (t) => {
  t.timeout(SYSTEM_LOCK_WAIT_MS + 600_000);
  releaseSystemLock = await holdSystemLock();
  const started = Date.now();
  t.log((await ensureVmImages()).trim());
  const swept = await sweepDeadVmRuns();
  if (swept.length) t.log(`removed the VMs of dead runs: ${swept.join(', ')}`);
  // The scratch copies (with the stack's key file and known_hosts) and file backends of runs whose process is gone.
  for (const dir of fs.readdirSync(os.tmpdir())) {
    const pid = /^cnp-vmstack(\d+)x[0-9a-f]{6}-/.exec(dir)?.[1];
    if (pid !== undefined && !isAlive(Number(pid))) fs.rmSync(path.join(os.tmpdir(), dir), { recursive: true, force: true });
  }
  copy = scratchCopy(`cnp-${STACK}-`);
  sshDir = path.join(copy.dir, '.pulumi', 'ssh', STACK);
  // The state where scripts/stack.sh keeps it (`<copy>/.pulumi`), so the project's own commands see the stack.
  cli = new CliStack(STACK, copy.dir, randomBytes(16).toString('hex'), { projectBackend: true });
  await cli.init();
  await fleet.start(
    [{ name: 'vm1', publish: [BALANCER_PORT, BALANCER_ADMIN_PORT] }, { name: 'vm2' }, { name: 'vm3' }, { name: 'vm4' }],
    [BASE_IMAGE, CONSUL_IMAGE, NATS_IMAGE],
  );
  url = `http://127.0.0.1:${fleet.vm('vm1').published.get(BALANCER_PORT)}`;
  // HTTPS on VMs (infra/consul-tls.ts); its certificate names 127.0.0.1 too, where the port is forwarded.
  adminUrl = `https://127.0.0.1:${fleet.vm('vm1').published.get(BALANCER_ADMIN_PORT)}`;
  t.log(`4 VMs on ${fleet.subnet}.0/24 up, images loaded, in ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

test.after.always(async () => {
  await Promise.all(loops.map((l) => l.stop()));
  (await consulTunnel?.catch(() => undefined))?.close();
  // The VMs go below whatever this leaves; the destroy is for what the stack made outside them (its ssh files),
  // bounded below ava's 2-minute inactivity timeout (package.json).
  if (deployed)
    await cli!.destroy({ timeoutMs: 100_000 }).catch((error: Error) => console.error(`pulumi destroy in after.always: ${error.message}`));
  await fleet.destroy();
  cli?.remove();
  copy?.remove();
});
// After the clean-up above (ava runs these hooks in order), so the next system test file starts on a quiet engine.
test.after.always(() => releaseSystemLock?.());

test.serial(
  'the VM bootstrap on a fresh VM over ssh: finds Debian and its Docker, docker info answers, a second run changes nothing',
  async (t) => {
    t.timeout(120_000);
    // As the bootstrap remote.Command runs it: `sh -s`, the script on standard input, root with the run's key.
    const vm = fleet.vm('vm3');
    const script = fs.readFileSync(BOOTSTRAP_SCRIPT_PATH, 'utf8');
    const connection = { ...vm.ssh, privateKey: fleet.privateKey, perDialTimeout: 15, dialErrorLimit: 10 };
    // Through the command stand-in's ssh (pulumi-command's SSH client rules told to OpenSSH); its stdout.
    const bootstrap = async (command: string) => {
      const result = await runOverSsh(connection, command, { stdin: script, timeoutMs: 100_000 });
      if (result.code !== 0) throw remoteFailure(result, command);
      return result.stdout;
    };
    t.is((await bootstrap('sh -s detect')).trim(), 'debian');

    const state = () =>
      fleet.ssh(
        'vm3',
        // The engine's process and identity, installed packages, and every file changed since the marker.
        'pidof dockerd; docker info --format "{{.ID}} {{.Containers}}"; dpkg-query -W | sha256sum; ' +
          'find / -xdev -newer /run/cnp-marker -type f -not -path "/proc/*" -not -path "/run/*" -not -path "/tmp/*" -not -path "/var/lib/docker/*" | sort',
      );
    await fleet.ssh('vm3', 'touch /run/cnp-marker');
    const first = await bootstrap('sh -s');
    t.log(first.trim());
    t.regex(first, /docker present: Docker version 20\.10/);
    t.regex(first, /engine running/);
    t.regex(first, /docker info answers: server 20\.10\.\d+/);
    t.notRegex(first, /installing|starting/, 'nothing installed or started: the engine was there');
    const before = await state();
    const second = await bootstrap('sh -s');
    t.is(second, first, 'the second run says the same');
    t.is(await state(), before, 'the second run changed no file, package or engine');
    t.log(`state after both runs:\n${before.trim()}`);
  },
);

test.serial('course layout, 4 replicas: every replica gets requests through the balancer on vm1', async (t) => {
  t.timeout(600_000);
  const summary = await deploy(t, 4);
  t.deepEqual(summary.replaced, []);
  await waitFor('every container on every VM running and healthy', allHealthy, 180_000, 1000);
  const placed = await replicas();
  t.deepEqual(
    placed.map((r) => `${r.n}@${r.vm}`),
    ['1@vm2', '2@vm3', '3@vm2', '4@vm3'],
  );
  // Each in its VM's network, on a port of the range on the VM's private address (infra/vm-ports.ts).
  for (const r of placed) {
    const [address, port] = r.upstream.split(':');
    t.is(address, fleet.vm(r.vm).privateAddress, `${r.name} advertises ${r.upstream}`);
    t.true(REPLICA_PORTS.includes(Number(port)), `${r.name} advertises ${r.upstream}`);
  }
  const expected = placed.map((r) => r.upstream).sort();
  await waitFor(
    'the balancer to serve the 4 replicas',
    async () => JSON.stringify(await upstreams()) === JSON.stringify(expected),
    60_000,
    250,
  );
  const report = await sendRequests(`${url}/`, 200);
  t.is(report.failures.length, 0, describeFailures(report));
  t.deepEqual(Object.keys(report.byInstance).sort(), placed.map((r) => r.name).sort());
  t.log('requests per replica:', report.byInstance);

  // The gateway reaches the replicas over TLS with the stack's CA (infra/consul-tls.ts): from the gateway's own
  // container on vm1, a replica on vm2 completes a handshake verified for hello.service.consul, and plain HTTP
  // gets no answer from it.
  const gateway = (await fleet.exec('vm1', ['docker', 'ps', '--format', '{{.Names}}']))
    .split('\n')
    .find((n) => /-balancer-[0-9a-f]{12}$/.test(n));
  t.truthy(gateway, 'the gateway runs on vm1');
  const target = placed.find((r) => r.vm === 'vm2')!.upstream;
  const probe = [
    "const [host, port] = process.argv[1].split(':'); const tls = require('tls'), fs = require('fs'), http = require('http');",
    "const s = tls.connect({ host, port: +port, ca: fs.readFileSync('/run/secrets/upstream-ca.pem'), servername: 'hello.service.consul' }, () => {",
    "  console.log('tls ' + (s.authorized ? 'authorized' : 'refused') + ' ' + s.getProtocol()); s.end();",
    "  http.get({ host, port: +port, path: '/health', timeout: 3000 }, (r) => { console.log('plain: status ' + r.statusCode); r.resume(); })",
    "    .on('timeout', function () { this.destroy(new Error('timeout')); }).on('error', (e) => console.log('plain: error ' + (e.code || e.message)));",
    '});',
    "s.on('error', (e) => console.log('tls error ' + e.message));",
  ].join('\n');
  const seen = await fleet.exec('vm1', ['docker', 'exec', gateway!, 'node', '-e', probe, target]);
  t.regex(seen, /^tls authorized TLSv1\.[23]$/m);
  t.regex(seen, /^plain: error /m);
  t.log(`gateway -> ${target}: ${seen.trim().split('\n').join('; ')}`);
});

test.serial(
  'nothing in clear between the VMs: a capture of their network while a user named with a random marker is written, read and its event delivered holds neither the marker, the user id nor any token',
  async (t) => {
    t.timeout(120_000);
    const capture = await fleet.captureBetweenVms();
    let bytes: Buffer;
    let userId: string | undefined;
    const marker = `wire${randomBytes(6).toString('hex')}`;
    try {
      // Through the gateway's public port (the client's side, outside the capture): the replica on vm2 or vm3
      // writes it into Consul, its relay publishes the event to the broker, the activity replicas receive it.
      const created = await fetch(`${url}/api/users`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: marker, email: `${marker}@example.com` }),
        signal: AbortSignal.timeout(5000),
      });
      t.is(created.status, 201);
      const { id } = (await created.json()) as { id: string };
      // The event carries the user's id (lib/user-events.ts): it crosses hello -> broker -> activity.
      await waitFor(
        'the event in the activity feed',
        async () => (await (await fetch(`${url}/api/activity`, { signal: AbortSignal.timeout(2000) })).text()).includes(id),
        30_000,
        250,
      );
      userId = id;
      const read = await fetch(`${url}/api/users/${id}`, { signal: AbortSignal.timeout(2000) });
      t.true((await read.text()).includes(marker), 'read back through the gateway');
      // Each container's log lines of it reach the collector meanwhile.
      await new Promise((r) => setTimeout(r, 2000));
    } finally {
      bytes = await capture.stop();
    }
    // The capture holds the stack's traffic between the VMs: the gateway to the replicas, NATS, Consul's RPC and
    // every daemon's logs. A replica may publish to the broker on its own VM, off this network; the event still
    // crosses it on the brokers' routes, which keep the stream's three copies.
    const count = async (filter: string) => (await run('tcpdump', ['-nn', '-r', capture.file, filter])).split('\n').filter(Boolean).length;
    const seen: Record<string, number> = {};
    for (const [what, filter] of [
      ['gateway -> replicas', `portrange ${portRangeText(REPLICA_PORTS)} or portrange ${portRangeText(ACTIVITY_PORTS)}`],
      ['NATS (clients, routes)', `port ${NATS_CLIENT_PORT} or port ${NATS_CLUSTER_PORT}`],
      ['Consul RPC', `port ${CONSUL_SERVER_RPC_PORT}`],
      ['syslog', `port ${COLLECTOR_SYSLOG_PORT}`],
    ] as const) {
      seen[what] = await count(filter);
      t.true(seen[what] > 0, `packets of ${what} in the capture`);
    }
    t.false(bytes.includes(marker), 'the marker crossed the network in clear');
    t.false(bytes.includes(userId), "the user's id (in its event too) crossed the network in clear");
    const gossipKey = String(resource('consul-gossip-key').outputs.stdout).trim();
    t.deepEqual(secretsIn(stackSecrets(outputs, gossipKey, ['vm1', 'vm2', 'vm3', 'vm4']), bytes.toString('latin1')), []);
    t.log(`${bytes.length} bytes captured between the VMs; packets: ${JSON.stringify(seen)}; no marker, no token`);
  },
);

test.serial(
  "Consul's ACLs on every VM: anonymous gets nothing from an agent's API, the stack's consulToken sees every replica, the ACL step run again changes nothing",
  async (t) => {
    t.timeout(420_000);
    const token = outputs.consulToken as string;
    t.true(secretOutputs.includes('consulToken'));
    // The API listens on the VMs' loopback only: through a tunnel to vm2 (a client agent, no server), as an operator would.
    const vm2 = fleet.vm('vm2');
    const httpPort = consulHttpPort('vm2');
    const tunnel = await openSshTunnel(
      { target: `${vm2.ssh.user}@${vm2.ssh.host}`, port: vm2.ssh.port, opts: ['-F', '/dev/null', ...fleet.sshOptions] },
      `127.0.0.1:${httpPort}`,
    );
    try {
      const get = async (apiPath: string, withToken: boolean) => {
        const res = await fetch(`http://127.0.0.1:${tunnel.localPort}${apiPath}`, {
          headers: withToken ? { 'X-Consul-Token': token } : {},
          signal: AbortSignal.timeout(5000),
        });
        return { status: res.status, json: await res.json().catch((): unknown => null) };
      };
      t.deepEqual((await get('/v1/health/service/hello?passing', false)).json, [], 'anonymous sees no instance');
      t.is((await get('/v1/agent/self', false)).status, 403);
      t.deepEqual((await get('/v1/catalog/nodes', false)).json, [], 'anonymous sees no node');
      t.is((await get('/v1/kv/hello/users/?recurse', false)).status, 404, 'anonymous sees no key');
      const passing = (await get('/v1/health/service/hello?passing', true)).json as Array<{ Service: { ID: string } }>;
      t.deepEqual(passing.map((e) => e.Service.ID).sort(), (await replicas()).map((r) => r.name).sort(), 'the UI token sees every replica');
      // The brokers, each registered by the program's step on the agent of its VM, through an ssh tunnel to that
      // VM; the agent checks /healthz on the port the broker publishes on its VM's private address.
      // A cluster member's /healthz fails for a moment while it catches up with the others (its streams not
      // current): wait for all three, bounded, and show the checks' output if one stays out.
      const brokersPassing = async () =>
        (
          (await get('/v1/health/service/nats?passing', true)).json as Array<{
            Node: { Node: string };
            Service: { ID: string; Address: string; Port: number };
          }>
        )
          .map((e) => `${e.Service.ID} ${e.Service.Address}:${e.Service.Port} on ${e.Node.Node}`)
          .sort();
      const wanted = ['vm1', 'vm2', 'vm4'].map((vm) => `nats ${fleet.vm(vm).privateAddress}:4222 on ${vm}`);
      const nats = await waitFor(
        'the three brokers passing',
        async () => {
          const now = await brokersPassing();
          return JSON.stringify(now) === JSON.stringify(wanted) ? now : undefined;
        },
        30_000,
        500,
      ).catch(async (error: Error) => {
        t.log((await get('/v1/health/checks/nats', true)).json);
        throw error;
      });
      t.deepEqual(nats, wanted);
      t.is(((await get('/v1/health/service/activity?passing', true)).json as unknown[]).length, 1, 'the activity replica passes');

      // The two steps the engine ran as local.Commands (the real ssh, with the program's ssh options, through a
      // tunnel to their VM), once more: the realizer re-ran their recorded `create`; with the real engine a step
      // runs again when it is replaced, so `pulumi up --target-replace` on their URNs (create-replacement,
      // then delete-replaced; neither has a `delete`, pulumi-command v1.2.1) and nothing else. Their stdout is
      // the replacement's state output.
      const aclState = async () => ({
        policies: ((await get('/v1/acl/policies', true)).json as Array<{ ID: string; Name: string }>)
          .map((p) => `${p.Name} ${p.ID}`)
          .sort(),
        tokens: ((await get('/v1/acl/tokens', true)).json as Array<{ AccessorID: string }>).map((k) => k.AccessorID).sort(),
      });
      const first = await aclState();
      t.deepEqual(
        first.policies.map((p) => p.split(' ')[0]).filter((name) => name.startsWith('agent-')),
        ['agent-vm1', 'agent-vm2', 'agent-vm3', 'agent-vm4'],
      );
      const steps = ['consul-acl-init', 'vm2-broker-registration'];
      const started = Date.now();
      const again = await cli!.up(steps.flatMap((name) => ['--target-replace', resource(name).urn]));
      t.log(`the two steps replaced with pulumi up --target-replace in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      t.deepEqual(
        again.replaced.sort(),
        steps.map((name) => `command:local:Command::${name}`),
      );
      t.deepEqual([...again.created, ...again.updated, ...again.deleted], [], 'nothing else changes');
      state = await cli!.state();
      const registered = resource('vm2-broker-registration').outputs.stdout as string;
      t.regex(registered, /through ssh root@127\.0\.0\.1 port \d+/);
      t.regex(registered, /service nats registered at \S+:4222/);
      t.is(((await get('/v1/health/service/nats', true)).json as unknown[]).length, 3, 'registering again leaves one instance per broker');
      const output = resource('consul-acl-init').outputs.stdout as string;
      t.regex(output, /through ssh root@127\.0\.0\.1 port \d+/);
      t.regex(output, /policy replica-hello updated/);
      t.deepEqual(await aclState(), first);
    } finally {
      tunnel.close();
    }
  },
);

test.serial(
  'no secret in docker inspect on any VM: no token or gossip key in a container, its environment, command line or image',
  async (t) => {
    t.timeout(120_000);
    const gossipKey = String(resource('consul-gossip-key').outputs.stdout).trim();
    const secrets = stackSecrets(outputs, gossipKey, ['vm1', 'vm2', 'vm3', 'vm4']);
    // The private keys of the stack's TLS, by their longest line (docker inspect shows JSON, where a newline is `\n`).
    for (const step of [
      'consul-tls-ca',
      'vm2-collector-tls',
      'vm1-admin-tls',
      ...['vm2', 'vm3'].map((vm) => `${vm}-replica-tls`),
      ...['vm1', 'vm2', 'vm4'].map((vm) => `${vm}-broker-tls`),
      ...['vm1', 'vm2', 'vm3', 'vm4'].flatMap((vm) => [`${vm}-consul-tls`, `${vm}-syslog-tls`]),
    ]) {
      const key = splitPem(resource(step).outputs.stdout as string).key;
      secrets.set(
        `the key of ${step}`,
        key.split('\n').reduce((a, b) => (b.length > a.length ? b : a), ''),
      );
    }
    const all = containers({ holders: true });
    t.is(all.filter((c) => c.resourceName.endsWith('-secrets-holder')).length, 5, "one holder of secret files per VM, and the collector's");
    for (const c of all) {
      const info = await fleet.exec(c.vm, ['docker', 'inspect', c.id]);
      const image = (JSON.parse(info) as Array<{ Image: string }>)[0].Image;
      const imageInfo = await fleet.exec(c.vm, ['docker', 'image', 'inspect', image]);
      const history = await fleet.exec(c.vm, ['docker', 'history', '--no-trunc', '--format', '{{.CreatedBy}}', image]);
      const found = secretsIn(secrets, info + imageInfo + history);
      t.deepEqual(found, [], `${c.vm}: ${c.name}`);
    }
    t.log(`${all.length} containers on 4 VMs and their images inspected: none holds any of ${secrets.size} secrets`);
  },
);

test.serial(
  'consul members lists the four agents; an agent without the gossip key cannot join, one with it can, and without a certificate of the stack gets no RPC answer',
  async (t) => {
    t.timeout(120_000);
    const before = await members();
    t.deepEqual(
      [...before]
        .filter(([, status]) => status === 'alive')
        .map(([node]) => node)
        .sort(),
      ['vm1', 'vm2', 'vm3', 'vm4'],
    );
    // Two extra agents on vm3 (other ports, same address): one without the key, one with it.
    const vm1 = fleet.vm('vm1').privateAddress;
    const vm3 = fleet.vm('vm3').privateAddress;
    const agent = (node: string, serf: number, http: number, extra: string[]) =>
      fleet.exec('vm3', [
        'docker',
        'run',
        '-d',
        '--rm',
        '--name',
        node,
        '--network',
        'host',
        CONSUL_IMAGE,
        'consul',
        'agent',
        `-node=${node}`,
        `-bind=${vm3}`,
        `-serf-lan-port=${serf}`,
        `-http-port=${http}`,
        '-dns-port=-1',
        '-client=127.0.0.1',
        '-data-dir=/tmp/data',
        `-retry-join=${vm1}:8301`,
        '-retry-interval=1s',
        ...extra,
      ]);
    await agent('nokey', 18301, 18500, []);
    // The key the stack made once (infra/gossip-key.ts: a local.Command's secret stdout, in the state).
    const gossipKey = (resource('consul-gossip-key').outputs.stdout as string).trim();
    await agent('withkey', 18311, 18510, [`-encrypt=${gossipKey}`]);
    try {
      await waitFor('the agent with the key to join', async () => (await members()).get('withkey') === 'alive', 30_000, 500);
      await sleep(3000); // as long again for the one without, retrying every second
      const after = await members();
      t.false(after.has('nokey'), `the agent without the key is not a member: ${[...after].join(' ')}`);
      const nokeyLog = await fleet.exec('vm3', ['docker', 'logs', 'nokey']).catch((e) => String(e));
      t.regex(nokeyLog, /(Failed to join|No installed keys could decrypt|Remote state is encrypted)/i);
      t.log(nokeyLog.split('\n').find((l) => /failed to join/i.test(l)) ?? '');
      // Gossip is not RPC: the member with the key but no certificate of the stack's CA gets nothing from the
      // servers, which refuse RPC without TLS (infra/consul-tls.ts); the stack's own agents get their answers.
      const rpc = await fleet
        .exec('vm3', ['docker', 'exec', 'withkey', 'consul', 'catalog', 'datacenters', '-http-addr=127.0.0.1:18510'])
        .then(
          (out) => `answered: ${out}`,
          (error: Error) => error.message,
        );
      t.notRegex(rpc, /^answered/, 'an agent without a certificate gets no RPC answer');
      const server = containers().find((c) => c.resourceName === 'vm1-consul-agent')!;
      await waitFor(
        "vm1's server to log the refused plain RPC",
        async () =>
          /Non-TLS connection attempted with VerifyIncoming set/.test(
            await fleet.exec('vm1', ['docker', 'logs', server.name]).catch(() => ''),
          ),
        15_000,
        500,
      );
      t.regex(
        await fleet.exec('vm3', [
          'docker',
          'exec',
          containers().find((c) => c.resourceName === 'vm3-consul-agent')!.name,
          'consul',
          'catalog',
          'datacenters',
          `-http-addr=127.0.0.1:${consulHttpPort('vm3')}`,
        ]),
        /dc1/,
      );
    } finally {
      await fleet.exec('vm3', ['docker', 'exec', 'withkey', 'consul', 'leave', '-http-addr=127.0.0.1:18510']).catch(() => '');
      await fleet.exec('vm3', ['docker', 'rm', '-f', 'nokey', 'withkey']).catch(() => '');
    }
  },
);

test.serial(
  'a code change under service/ and activity/ rolls over the VMs under GETs and POSTs: none fails, every later answer is the new code, the old containers are gone',
  async (t) => {
    t.timeout(540_000);
    // The CLI runs the program in the scratch copy: the change is made there, as a developer edits the checkout.
    const marker = `rolled-${randomBytes(3).toString('hex')}`;
    copy!.edit('service/app.ts', 'version: deps.version', `version: \`\${deps.version}+${marker}\``);
    copy!.edit(
      'activity/app.ts',
      "c.json({ events: feed.recent(c.req.valid('query').limit) })",
      `c.json({ events: feed.recent(c.req.valid('query').limit), rolled: '${marker}' })`,
    );
    const [oldHello, oldActivity] = [await replicas(), await replicas('activity')];
    t.is(oldHello.length, 4);
    t.is(oldActivity.length, 1);
    const isReplica = (key: string) => /Container::vm\d-(replicas|activity)-\d+$/.test(key);
    const others = containers().filter((c) => !isReplica(`Container::${c.resourceName}`));

    const gets = startSteadyLoopProcess(`${url}/`, { clients: 4, maxMs: 480_000 });
    // GETs of / alternating with POSTs of new users: nginx never retries a POST it has sent.
    const mixed = startSteadyLoopProcess(`${url}/`, { clients: 2, maxMs: 480_000, postUrl: `${url}/api/users` });
    const activity = startSteadyLoopProcess(`${url}/api/activity`, { clients: 1, maxMs: 480_000 });
    loops.push(gets, mixed, activity);
    await sleep(1000);
    const summary = await deploy(t, 4);
    const deployMs = summary.endedAt - summary.startedAt;
    await sleep(1000);
    const [getReport, mixedReport, activityReport] = [await gets.stop(), await mixed.stop(), await activity.stop()];

    const replaced = summary.replaced.filter(isReplica).sort();
    t.deepEqual(
      replaced,
      [...oldHello.map((r) => `${r.vm}-replicas-${r.n}`), ...oldActivity.map((r) => `${r.vm}-activity-${r.n}`)]
        .map((name) => `docker:index/container:Container::${name}`)
        .sort(),
    );
    for (const c of others)
      t.is(containers().find((now) => now.resourceName === c.resourceName)?.id, c.id, `${c.resourceName} kept its container`);
    // The engine's order: every new replica created, and ready (its create returned: the readiness gate), before
    // the first old one is deleted, at the end.
    const replicaSteps = summary.steps.filter(isReplica);
    const firstDelete = replicaSteps.findIndex((step) => step.startsWith('delete-replaced'));
    t.is(firstDelete, replaced.length, `creates first: ${replicaSteps.join(', ')}`);
    t.true(replicaSteps.slice(firstDelete).every((step) => step.startsWith('delete-replaced')));
    const created = summary.events.filter((e) => isReplica(e.key) && e.kind === 'outputs' && e.op === 'create-replacement');
    const deleteBegins = summary.events.find((e) => isReplica(e.key) && e.kind === 'pre' && e.op === 'delete-replaced')!;
    t.is(created.length, replaced.length);
    t.true(
      created.every((e) => e.sequence < deleteBegins.sequence),
      'every new replica ready before the first delete',
    );

    // The old containers are gone from their VMs, each drained and exited 0 within its grace.
    const oldNames = [...oldHello, ...oldActivity].map((r) => r.name).sort();
    const removed = (
      await Promise.all(
        ['vm2', 'vm3'].map((vm) =>
          removedContainers(`${LABEL_PREFIX}.stack=${STACK}`, summary.startedAt, summary.endedAt, (args) =>
            fleet.exec(vm, ['docker', ...args]),
          ),
        ),
      )
    ).flat();
    t.deepEqual(removed.map((r) => r.name).sort(), oldNames);
    for (const r of removed) t.is(r.exitCode, 0, `${r.name} drained and exited by itself (${r.stopMs} ms after SIGTERM)`);
    const left = (await Promise.all(['vm2', 'vm3'].map((vm) => fleet.exec(vm, ['docker', 'ps', '-a', '--format', '{{.Names}}'])))).join(
      '\n',
    );
    t.deepEqual(
      oldNames.filter((name) => left.includes(name)),
      [],
      'no old container is left on vm2 or vm3',
    );

    t.is(getReport.failures.length, 0, describeFailures(getReport));
    t.is(mixedReport.failures.length, 0, describeFailures(mixedReport));
    t.is(activityReport.failures.length, 0, describeFailures(activityReport));
    t.true((mixedReport.byMethod.POST ?? 0) > 20, `POSTs ran through the deploy: ${JSON.stringify(mixedReport.byMethod)}`);

    // The new replicas started while the old ones still listened: each took a port the old ones did not hold.
    const [newHello, newActivity] = [await replicas(), await replicas('activity')];
    t.deepEqual(
      newHello.filter((r) => oldHello.some((o) => o.upstream === r.upstream || o.name === r.name)),
      [],
      `new names and ports: ${oldHello.map((r) => r.upstream).join(' ')} -> ${newHello.map((r) => r.upstream).join(' ')}`,
    );
    await waitFor(
      'the balancer to follow the new replicas only',
      async () => JSON.stringify(await upstreams()) === JSON.stringify(newHello.map((r) => r.upstream).sort()),
      30_000,
      250,
    );
    const after = await sendAll(`${url}/`, 100);
    t.deepEqual(
      after.filter((r) => !r.ok || !newHello.some((n) => n.name === r.instance)),
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
    const feed = await fetch(`${url}/api/activity`);
    t.is(feed.headers.get('x-instance-id'), newActivity[0].name);
    t.is(((await feed.json()) as { rolled?: string }).rolled, marker);
    t.log(
      `code deploy of 4 replicas and 1 activity replica on vm2 and vm3 in ${(deployMs / 1000).toFixed(1)} s; during it ` +
        `${getReport.total} GETs, ${mixedReport.total} mixed (${JSON.stringify(mixedReport.byMethod)}), ${activityReport.total} activity GETs; ` +
        `failed: ${getReport.failures.length + mixedReport.failures.length + activityReport.failures.length}; ` +
        `old replicas stopped in ${removed.map((r) => `${r.stopMs} ms`).join(', ')}; ports ${oldHello.map((r) => r.upstream).join(' ')} -> ${newHello
          .map((r) => r.upstream)
          .join(' ')}`,
    );
  },
);

test.serial('4 -> 6 under a steady loop: the 4 stay, 5 and 6 serve, no request fails; every VM logs to the collector', async (t) => {
  t.timeout(300_000);
  const idOf = (name: string) => containers().find((c) => c.name === name)!.id;
  const ids = new Map((await replicas()).map((r) => [r.n, idOf(r.name)]));
  const loop = startSteadyLoopProcess(`${url}/`, { clients: 4, maxMs: 240_000 });
  loops.push(loop);
  await sleep(1000);
  const summary = await deploy(t, 6);
  t.deepEqual(
    summary.created.sort(),
    ['vm2-replicas-5', 'vm3-replicas-6'].map((name) => `docker:index/container:Container::${name}`),
  );
  t.deepEqual(summary.replaced, []);
  t.deepEqual(summary.deleted, []);
  t.deepEqual(summary.updated, [], 'nothing is updated in place');
  const expected = (await replicas()).map((r) => r.upstream).sort();
  await waitFor('the balancer to serve all 6', async () => JSON.stringify(await upstreams()) === JSON.stringify(expected), 60_000, 200);
  await sleep(2000);
  const report = await loop.stop();
  t.is(report.failures.length, 0, describeFailures(report));
  for (const r of await replicas()) {
    if (r.n <= 4) t.is(idOf(r.name), ids.get(r.n)!, `replica ${r.n} kept its container`);
    else t.true((report.byInstance[r.name] ?? 0) > 0, `replica ${r.n} (${r.vm}) served`);
  }
  t.log(`${report.total} requests during 4 -> 6:`, report.byInstance);

  // Logs from every VM: each container's syslog tag is `<vm>.<container>` (infra/stack.ts), so each VM's
  // files carry its name; syslog-ng cuts long tags, so the files are found by that prefix.
  const byVm = await waitFor(
    'files with lines from every VM in the collector',
    async () => {
      const files = (await collectorFile('')).split('\n').filter((f) => f.endsWith('.log'));
      const found = new Map<string, string[]>();
      for (const vm of ['vm1', 'vm2', 'vm3', 'vm4'])
        found.set(
          vm,
          files.filter((f) => f.startsWith(`${vm}.`)),
        );
      return [...found.values()].every((list) => list.length > 0) ? found : undefined;
    },
    30_000,
    500,
  );
  for (const [vm, files] of byVm) {
    t.true(
      files.some((f) => f.startsWith(`${vm}.cnp-${STACK}-consul`)),
      `${vm}'s Consul agent logs: ${files.join(', ')}`,
    );
    t.not((await collectorFile(files[0])).trim(), '', `${files[0]} has lines`);
  }
  t.regex(await collectorFile('all.log'), /vm3\.cnp-/);
  t.log(`collector files by VM: ${[...byVm].map(([vm, files]) => `${vm}: ${files.join(', ')}`).join('; ')}`);
});

test.serial(
  "syslog between VMs is TLS: every daemon sends with its root-only client files and verifies the collector; the collector files a client of the stack's CA and refuses no certificate, another CA's and plain text",
  async (t) => {
    t.timeout(120_000);
    // Every running container's log configuration, as each VM's engine has it: TLS to vm2's private address, no skip-verify.
    const collectorAddress = `tcp+tls://${fleet.vm('vm2').privateAddress}:${COLLECTOR_SYSLOG_PORT}`;
    for (const vm of ['vm1', 'vm2', 'vm3', 'vm4']) {
      const ids = containers()
        .filter((c) => c.vm === vm && c.resourceName !== 'vm2-collector-container')
        .map((c) => c.id);
      const configs = (await fleet.exec(vm, ['docker', 'inspect', '--format', '{{json .HostConfig.LogConfig}}', ...ids]))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { Type: string; Config: Record<string, string> });
      for (const { Type, Config } of configs) {
        t.is(Type, 'syslog');
        t.like(Config, {
          'syslog-address': collectorAddress,
          'syslog-tls-ca-cert': `${SYSLOG_TLS_DIR}/ca.pem`,
          'syslog-tls-cert': `${SYSLOG_TLS_DIR}/client.pem`,
          'syslog-tls-key': `${SYSLOG_TLS_DIR}/client-key.pem`,
          mode: 'non-blocking',
        });
        t.false('syslog-tls-skip-verify' in Config);
      }
      // The files the daemon reads: root's only.
      t.is(
        (await fleet.ssh(vm, `cd ${SYSLOG_TLS_DIR} && stat -c '%a %U:%G %n' . ca.pem client.pem client-key.pem`)).trim(),
        ['700 root:root .', '600 root:root ca.pem', '600 root:root client.pem', '600 root:root client-key.pem'].join('\n'),
        vm,
      );
    }

    // From vm3's network (a throwaway container in its host network): clients of the collector on vm2's private
    // address. One with vm3's own client certificate (the control: this path delivers), then refused ones.
    const marker = randomBytes(4).toString('hex');
    const ca = splitPem(resource('consul-tls-ca').outputs.stdout as string).cert;
    const own = splitPem(resource('vm3-syslog-tls').outputs.stdout as string);
    const otherCa = stackTls('ca', { CN: 'another CA' });
    const stranger = stackTls('agent', {
      CA_CERT: otherCa.cert,
      CA_KEY: otherCa.key,
      CN: 'vm3',
      SANS: `IP:${fleet.vm('vm3').privateAddress}`,
      EKU: 'clientAuth',
    });
    const script = `
      const tls = require('node:tls'), net = require('node:net');
      const [host, port, marker, ca, own, stranger] = ${JSON.stringify([fleet.vm('vm2').privateAddress, COLLECTOR_SYSLOG_PORT, marker, ca, own, stranger])};
      const line = (kind) => '<30>1 ' + new Date().toISOString() + ' vm3 vm3.syslog-test-' + kind + ' 1 - - ' + kind + '-' + marker + '\\n';
      const framed = (text) => Buffer.byteLength(text) + ' ' + text;
      const send = (connect, event, text) => new Promise((resolve) => {
        let error = '', authorized = false;
        const socket = connect();
        const timer = setTimeout(() => socket.destroy(), 5000);
        socket.on(event, () => { authorized = socket.authorized === true; socket.end(text); });
        socket.on('error', (e) => (error ||= e.message));
        socket.on('close', () => { clearTimeout(timer); resolve({ authorized, error }); });
      });
      const viaTls = (kind, client) => send(() => tls.connect({ host, port, ca, ...client }), 'secureConnect', framed(line(kind)));
      (async () => {
        const results = {};
        results.accepted = await viaTls('accepted', own);
        results.nocert = await viaTls('nocert', {});
        results.stranger = await viaTls('stranger', stranger);
        results.plain = await send(() => net.connect({ host, port }), 'connect', line('plain') + framed(line('plain')));
        console.log(JSON.stringify(results));
      })();
    `;
    const results = JSON.parse(
      await fleet.exec('vm3', ['docker', 'run', '--rm', '-i', '--network', 'host', BASE_IMAGE, 'node', '-'], { input: script }),
    ) as Record<string, { authorized: boolean; error: string }>;
    t.log(`clients of the collector from vm3: ${JSON.stringify(results)}`);
    t.true(results.accepted.authorized, "the collector's certificate chains to the stack's CA and names vm2's private address");
    t.is(results.accepted.error, '');

    await waitFor(
      'the line of the client with a certificate of the stack in all.log',
      async () => (await collectorFile('all.log')).includes(`accepted-${marker}`),
      15_000,
      250,
    );
    const collector = containers().find((c) => c.resourceName === 'vm2-collector-container')!;
    const collectorLog = () => fleet.exec('vm2', ['sh', '-c', `docker logs ${collector.id} 2>&1`]);
    await waitFor(
      "syslog-ng's log to show each refusal",
      async () => {
        const log = await collectorLog();
        return ['peer did not return a certificate', 'certificate verify failed', 'wrong version number'].every((e) => log.includes(e));
      },
      15_000,
      250,
    );
    const filed = await fleet.exec('vm2', ['docker', 'exec', collector.id, 'sh', '-c', `grep -rh -- '-${marker}' /var/log/stack || true`]);
    t.deepEqual(
      filed
        .split('\n')
        .filter(Boolean)
        .map((l) => l.replace(/^\S+ /, ''))
        .sort(),
      [`accepted-${marker}`, `vm3.syslog-test-accepted accepted-${marker}`],
      'only the line of the client with a certificate of the stack is filed (all.log and its own file)',
    );
    t.log(
      (await collectorLog())
        .split('\n')
        .filter((l) => /SSL error/.test(l))
        .slice(-4)
        .map((l) => l.replace(/, location=.*$/, ''))
        .join('\n'),
    );
  },
);

test.serial('the balancer replaced on vm1 under a steady loop (gatewayRateLimit changed): it hands over, no request fails', async (t) => {
  t.timeout(300_000);
  const gateway = () => containers().find((c) => c.resourceName === 'vm1-balancer-gateway')!;
  const holderId = containers().find((c) => c.resourceName === 'vm1-balancer-ports')!.id;
  const old = gateway();
  const loop = startSteadyLoopProcess(`${url}/`, { clients: 4, maxMs: 240_000, keepResults: true });
  loops.push(loop);
  await sleep(1000);
  // Any change of the balancer's settings replaces it, as a new image does; this one rebuilds nothing.
  await cli!.configSet({ gatewayRateLimit: 2000 });
  const summary = await cli!.up();
  state = await cli!.state();
  await sleep(1000);
  const report = await loop.stop();

  t.deepEqual(summary.replaced, ['docker:index/container:Container::vm1-balancer-gateway']);
  t.deepEqual(
    summary.steps.filter((s) => s.endsWith('::vm1-balancer-gateway')).map((s) => s.split(' ')[0]),
    ['create-replacement', 'delete-replaced'],
    'the new one is created (and healthy) before the old one is deleted',
  );
  t.is(containers().find((c) => c.resourceName === 'vm1-balancer-ports')!.id, holderId, 'the holder keeps the ports');
  const now = gateway();
  t.not(now.name, old.name);
  t.is((await fleet.exec('vm1', ['docker', 'ps', '-aq', '--filter', `id=${old.id}`])).trim(), '', 'the old one is removed');
  const created = Date.parse((await fleet.exec('vm1', ['docker', 'inspect', '--format', '{{.Created}}', now.id])).trim());
  const inWindow = report.results!.filter((r) => r.at >= created && r.at <= summary.endedAt);
  t.true(inWindow.length > 50, `requests were sent while the balancer was replaced: ${inWindow.length}`);
  t.is(report.failures.length, 0, describeFailures(report));
  t.log(
    `balancer replaced on vm1 in a pulumi up of ${((summary.endedAt - summary.startedAt) / 1000).toFixed(1)} s; from the new gateway's creation ` +
      `to the end of the deploy (the old one removed) ${summary.endedAt - created} ms: ${inWindow.length} requests through the public port, ` +
      `${inWindow.filter((r) => !r.ok).length} failed; ${report.total} during the whole run, ${report.failures.length} failed`,
  );
});

/** The brokers' VMs (infra/stack.ts: one JetStream cluster). */
const BROKER_VMS = ['vm1', 'vm2', 'vm4'];

/**
 * USER_EVENTS's copies as its leader reports them (/jsz on each broker's monitoring port, read inside its
 * container on its VM), or undefined while no running broker leads it.
 */
async function streamCopies(skip: string[] = []): Promise<StreamCopies | undefined> {
  for (const vm of BROKER_VMS.filter((name) => !skip.includes(name))) {
    const broker = containers().find((c) => c.resourceName === `${vm}-broker-container`)!;
    const jsz = await fleet
      .exec(vm, ['docker', 'exec', broker.name, 'wget', '-q', '-T', '2', '-O', '-', 'http://127.0.0.1:8222/jsz?accounts=true&streams=true'])
      .catch(() => '');
    const copies = jsz ? streamCopiesOf(JSON.parse(jsz), USER_EVENTS_STREAM) : undefined;
    if (copies) return copies;
  }
  return undefined;
}

test.serial(
  'a broker VM (vm4: no gateway, no collector) killed under steady writes through the gateway: no write fails, every event arrives once on an open SSE stream; once vm4 is back the stream has three current copies',
  async (t) => {
    t.timeout(300_000);
    const before = await waitFor(
      'three current copies of USER_EVENTS',
      async () => {
        const copies = await streamCopies();
        return copies?.copies === 3 && copies.current === 3 ? copies : undefined;
      },
      60_000,
      1000,
    );
    const stream = await openEventStream(url);
    t.teardown(() => stream.close());
    // GETs of / alternating with POSTs of new users, each POST a user change whose event the stream must show.
    const writes = startSteadyLoopProcess(`${url}/`, { clients: 2, maxMs: 240_000, postUrl: `${url}/api/users`, keepResults: true });
    loops.push(writes);
    await sleep(3000);
    await docker(['kill', fleet.vm('vm4').container]);
    const killedAt = Date.now();
    // Two brokers of three hold a quorum: the stream goes on; a client connected to vm4's broker finds another.
    await sleep(15_000);
    const during = await streamCopies(['vm4']);
    await fleet.restart('vm4');
    const backAt = Date.now();
    let seen: StreamCopies | undefined;
    const after = await waitFor(
      'three current copies once vm4 is back, under the writes',
      async () => {
        seen = await streamCopies();
        return seen?.copies === 3 && seen.current === 3 ? seen : undefined;
      },
      120_000,
      1000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; last seen ${JSON.stringify(seen)}`);
    });
    const currentAt = Date.now();
    await sleep(1000);
    const report = await writes.stop();

    const posts = report.results!.filter((r) => r.method === 'POST');
    t.is(report.failures.length, 0, describeFailures(report));
    const created = posts.map((r) => r.createdId).filter((id): id is string => id !== undefined);
    t.is(created.length, posts.length, 'every POST answered with the user it created');
    const wanted = new Set(created);
    const ofRun = () => stream.events.filter((e) => wanted.has(e.userId));
    await stream.until(`the ${created.length} created events`, () => new Set(ofRun().map((e) => e.userId)).size === created.length, 60_000);
    await sleep(2000);
    t.is(ofRun().length, created.length, 'one event per write');
    t.is(new Set(ofRun().map((e) => e.id)).size, ofRun().length, 'no event id arrived twice');
    t.false(stream.ended(), 'the SSE stream stayed open');
    const writesWhileDown = posts.filter((r) => r.at >= killedAt && r.at < backAt).length;
    t.true(writesWhileDown > 20, `writes while vm4 was down: ${writesWhileDown}`);
    t.log(
      `vm4 killed for ${((backAt - killedAt) / 1000).toFixed(1)} s: ${posts.length} writes (${writesWhileDown} while it was down), ` +
        `${report.failures.length} failed requests of ${report.total}; ${ofRun().length} events on the open stream, ` +
        `${new Set(ofRun().map((e) => e.id)).size} distinct; copies before ${before.current}/${before.copies} (leader ${before.leader}), ` +
        `while down ${during ? `${during.current}/${during.copies} (leader ${during.leader})` : 'no leader'}, ` +
        `${after.current}/${after.copies} current ${((currentAt - backAt) / 1000).toFixed(1)} s after vm4 was back (leader ${after.leader}), ` +
        `${after.messages} messages`,
    );
  },
);

test.serial("vm3 killed: its replicas leave the balancer's upstreams within 5 s; the survivors then serve every request", async (t) => {
  t.timeout(180_000);
  const gone = (await replicas()).filter((r) => r.vm === 'vm3');
  t.deepEqual(
    gone.map((r) => r.n),
    [2, 4, 6],
  );
  const loop = startSteadyLoopProcess(`${url}/`, { clients: 4, maxMs: 120_000 });
  loops.push(loop);
  await sleep(2000);
  await docker(['kill', fleet.vm('vm3').container]);
  const killedAt = Date.now();
  // Target 5 s (gossip failure detection, then the agents' health): the deadline is twice that.
  await waitFor(
    "vm3's replicas to leave the balancer's upstreams",
    async () => {
      const now = await upstreams();
      return gone.every((r) => !now.includes(r.upstream));
    },
    10_000,
    100,
  );
  const leftMs = Date.now() - killedAt;
  await sleep(1000);
  const around = await loop.stop();
  t.log(`vm3's replicas left the upstreams ${leftMs} ms after the kill; ${around.total} requests around the kill:`, around.byInstance);
  t.true(leftMs <= 10_000);
  // A failure is a non-2xx, an error or over 2 s. The balancer interleaves its upstreams by host
  // (balancer/render.ts interleaveByHost), so a retry after one of vm3's replicas goes to another VM.
  t.log(`failed requests around the kill: ${describeFailures(around)}`);
  t.is(around.failures.length, 0, describeFailures(around));

  // Once they are out, the survivors serve everything.
  const after = startSteadyLoopProcess(`${url}/`, { clients: 4, maxMs: 60_000 });
  loops.push(after);
  await sleep(5000);
  const report = await after.stop();
  t.is(report.failures.length, 0, describeFailures(report));
  const survivors = (await replicas()).filter((r) => r.vm !== 'vm3');
  t.deepEqual(Object.keys(report.byInstance).sort(), survivors.map((r) => r.name).sort());
  t.deepEqual((await upstreams()).sort(), survivors.map((r) => r.upstream).sort());
  t.log(`${report.total} requests after the kill:`, report.byInstance);
  t.log(`consul members after the kill: ${[...(await members())].map(([n, s]) => `${n}=${s}`).join(' ')}`);
});

/** A command on a VM through the real `ssh` with the options its docker provider has in the state (the stack's key file and known_hosts). */
async function sshAsProvider(vm: string, command: string): Promise<string> {
  const given = resource(`${vm}-docker`).inputs.sshOpts;
  const opts = (typeof given === 'string' ? JSON.parse(given) : given) as string[];
  const { port, user, host } = fleet.vm(vm).ssh;
  return run('ssh', ['-F', '/dev/null', ...opts, '-o', 'BatchMode=yes', '-p', String(port), `${user}@${host}`, '--', command]);
}

test.serial("each VM's bootstrap reports its CPU (x86_64 here); every image built for it carries linux/amd64", async (t) => {
  t.timeout(60_000);
  for (const vm of ['vm1', 'vm2', 'vm3', 'vm4'])
    t.regex(resource(`${vm}-bootstrap`).outputs.stdout as string, /^vm-bootstrap: architecture x86_64$/m, vm);
  const images = state.filter((r) => r.type === 'docker:index/image:Image');
  t.deepEqual([...new Set(images.map((i) => i.providerName))].sort(), ['vm1-docker', 'vm2-docker', 'vm3-docker', 'vm4-docker']);
  for (const image of images) t.is((image.inputs.build as { platform?: string }).platform, 'linux/amd64', image.name);
  // The engine's own view of what it built (vm2's, up all along).
  const built = images.filter((i) => i.providerName === 'vm2-docker').map((i) => i.outputs.repoDigest as string);
  const architectures = await fleet.exec('vm2', ['docker', 'image', 'inspect', '--format', '{{.Architecture}}', ...built]);
  t.deepEqual([...new Set(architectures.trim().split('\n'))], ['amd64']);
  t.log(`${images.length} images, all linux/amd64; vm2's engine reports ${built.length} of them amd64`);
});

test.serial("the stack's key file and known_hosts gone (a fresh checkout): pulumi up changes nothing and writes both again", async (t) => {
  t.timeout(300_000);
  const id = path.join(sshDir, 'id');
  const knownHosts = path.join(sshDir, 'known_hosts');
  const before = { id: fs.readFileSync(id, 'utf8'), knownHosts: fs.readFileSync(knownHosts, 'utf8') };
  fs.rmSync(id);
  fs.rmSync(knownHosts);
  const summary = await cli!.up();
  t.log(`pulumi up without the files: ${((summary.endedAt - summary.startedAt) / 1000).toFixed(1)} s, ${summary.same.length} same`);
  t.deepEqual(summary.steps, [], 'no step: nothing created, updated, replaced or deleted');
  t.is(fs.readFileSync(id, 'utf8'), before.id);
  t.is(fs.readFileSync(id, 'utf8'), `${fleet.privateKey.trim()}\n`);
  t.is(fs.statSync(id).mode & 0o777, 0o600);
  t.deepEqual(fs.readFileSync(knownHosts, 'utf8').split('\n').sort(), before.knownHosts.split('\n').sort());
  // Each VM's line is the key the stack took (its host-key step's output), which is the VM's own.
  for (const vm of ['vm1', 'vm2']) {
    const key = await containerHostKey(fleet.vm(vm).container);
    t.is((resource(`${vm}-host-key`).outputs.stdout as string).trim(), key, vm);
    t.true(before.knownHosts.includes(`[127.0.0.1]:${fleet.vm(vm).ssh.port} ${key}\n`), vm);
  }
  // What the provider runs works with them: its ssh options, the restored key and known_hosts (strict).
  t.regex(await sshAsProvider('vm2', 'docker info --format "{{.ServerVersion}}"'), /^20\.10\./);
});

test.serial(
  "vm2's host key renewed (a VM rebuilt on its address): pulumi up stops before its bootstrap with the error naming the fix; that command accepts the key and bootstraps vm2 again",
  async (t) => {
    t.timeout(420_000);
    const urn = resource('vm2-host-key').urn;
    const taken = (resource('vm2-host-key').outputs.stdout as string).trim();
    const renewed = await fleet.renewHostKeys('vm2');
    t.not(renewed, taken);
    await t.throwsAsync(sshAsProvider('vm2', 'true'), { message: /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/ });

    const started = Date.now();
    const failure = await cli!.up().then(
      () => '',
      (error: Error) => error.message,
    );
    t.log(
      `pulumi up refused in ${((Date.now() - started) / 1000).toFixed(1)} s: ${failure.split('\n').find((l) => l.includes('presents')) ?? failure}`,
    );
    t.regex(
      failure,
      /vm2 \(127\.0\.0\.1 port \d+\) presents the host key SHA256:\S+, not ssh-ed25519 SHA256:\S+, the key this stack took at its first contact/,
    );
    t.true(failure.includes(`pulumi up --replace '${urn}'`), 'it names the command that accepts the new key');
    state = await cli!.state();
    t.is((resource('vm2-host-key').outputs.stdout as string).trim(), taken, 'the state still holds the old key');

    // The fix, as the message gives it.
    const accepted = await cli!.up(['--replace', urn]);
    t.log(
      `pulumi up --replace vm2-host-key in ${((accepted.endedAt - accepted.startedAt) / 1000).toFixed(1)} s: ${accepted.steps.join(', ')}`,
    );
    t.deepEqual(accepted.replaced, ['command:local:Command::vm2-host-key']);
    t.deepEqual(
      accepted.updated.sort(),
      ['command:remote:Command::vm2-bootstrap', 'command:remote:Command::vm2-syslog-tls-files'],
      "the bootstrap runs again with the new key, and the step that writes the daemon's TLS files",
    );
    t.deepEqual([...accepted.created, ...accepted.deleted], []);
    state = await cli!.state();
    t.is((resource('vm2-host-key').outputs.stdout as string).trim(), renewed);
    t.regex(resource('vm2-bootstrap').outputs.stdout as string, /^vm-bootstrap: architecture x86_64$/m);
    t.true(fs.readFileSync(path.join(sshDir, 'known_hosts'), 'utf8').includes(`[127.0.0.1]:${fleet.vm('vm2').ssh.port} ${renewed}\n`));
    t.regex(await sshAsProvider('vm2', 'docker info --format "{{.ServerVersion}}"'), /^20\.10\./);
  },
);

test.serial("vm3 back: its engine starts the stack's containers again", async (t) => {
  t.timeout(120_000);
  // The VM boots again (same disk, same address and ssh port); its engine restarts its containers.
  await fleet.restart('vm3');
  const objects = await Promise.all(['vm1', 'vm2', 'vm3', 'vm4'].map(vmObjects));
  t.true(objects.every((listed) => listed.length > 0));
});

test.serial(
  'vm3 dead for good: npm run vm:forget refuses vm2 and a live vm3, drops the dead vm3 from the state, then without it in vms pulumi up puts its replicas on vm2; no request fails',
  async (t) => {
    t.timeout(480_000);
    const before = state.map((r) => r.name);
    const onVm3 = state.filter((r) => r.name === 'vm3' || r.name.startsWith('vm3-')).map((r) => r.name);
    const gone = (await replicas()).filter((r) => r.vm === 'vm3');
    t.deepEqual(
      gone.map((r) => r.n),
      [2, 4, 6],
    );
    // Refused, the state untouched: a VM with other roles (named), and vm3 while Consul sees it alive (it is back).
    const refusal = (vm: string) =>
      cli!.script('npm', ['run', '--silent', 'vm:forget', '--', vm, '--stack', STACK]).then(
        () => 'not refused',
        (error: Error) => error.message,
      );
    t.regex(
      await refusal('vm2'),
      /vm2 holds the roles collector, replicas, broker, activity: only a VM whose roles are all among replicas, activity/,
    );
    await waitFor('Consul to see vm3 alive again', async () => (await members()).get('vm3') === 'alive', 90_000, 500);
    t.regex(await refusal('vm3'), /Consul sees vm3 alive: this command is for a VM that is gone/);
    t.deepEqual(
      (await cli!.state()).map((r) => r.name),
      before,
    );

    // The machine is gone: its container and its disk. Consul then sees its node failed.
    await fleet.remove('vm3');
    await waitFor('Consul to see vm3 failed', async () => (await members()).get('vm3') === 'failed', 30_000, 250);
    await waitFor(
      "vm3's replicas out of the balancer's upstreams",
      async () => {
        const now = await upstreams();
        return gone.every((r) => !now.includes(r.upstream));
      },
      30_000,
      200,
    );
    const loop = startSteadyLoopProcess(`${url}/`, { clients: 4, maxMs: 420_000 });
    loops.push(loop);
    await sleep(1000);

    // The command infra/README.md gives, through scripts/stack.sh and the real CLI.
    const forgetStarted = Date.now();
    const output = await cli!.script('npm', ['run', '--silent', 'vm:forget', '--', 'vm3', '--stack', STACK]);
    const forgetMs = Date.now() - forgetStarted;
    t.log(`npm run vm:forget -- vm3 in ${(forgetMs / 1000).toFixed(1)} s:\n${output.trim()}`);
    state = await cli!.state();
    t.deepEqual(
      state.map((r) => r.name),
      before.filter((name) => !onVm3.includes(name)),
      "exactly vm3's resources left the state",
    );
    t.true(onVm3.includes('vm3-docker') && onVm3.includes('vm3-consul-agent') && onVm3.includes('vm3-replicas-6'));
    t.false((await members()).has('vm3'), 'Consul pruned the node');
    const vm1Consul = containers().find((c) => c.resourceName === 'vm1-consul-agent')!;
    const catalogNodes = () =>
      fleet.exec('vm1', ['docker', 'exec', vm1Consul.name, 'consul', 'catalog', 'nodes', `-http-addr=127.0.0.1:${consulHttpPort('vm1')}`]);
    // The leader deregisters a node that left in its next reconcile.
    await waitFor('the catalog to drop vm3', async () => !/^vm3\s/m.test(await catalogNodes()), 15_000, 250);

    // vm3 out of vms, as a user removes it, then the next deploy.
    await cli!.ok(['config', 'rm', '--path', 'vms[2]']);
    const summary = await cli!.up();
    const upMs = summary.endedAt - summary.startedAt;
    state = await cli!.state();
    t.deepEqual(
      summary.created.sort(),
      [2, 4, 6].map((n) => `docker:index/container:Container::vm2-replicas-${n}`),
    );
    t.deepEqual(summary.updated, ['command:local:Command::consul-acl-init'], 'the ACL step runs again for the agents left');
    t.deepEqual([...summary.replaced, ...summary.deleted], []);
    t.deepEqual(
      summary.events.filter((e) => /::vm3(-|$)/.test(e.urn)),
      [],
      'nothing tried on vm3',
    );
    t.deepEqual(
      (await replicas()).map((r) => `${r.n}@${r.vm}`),
      [1, 2, 3, 4, 5, 6].map((n) => `${n}@vm2`),
    );
    const expected = (await replicas()).map((r) => r.upstream).sort();
    await waitFor(
      'the balancer to serve the 6 on vm2',
      async () => JSON.stringify(await upstreams()) === JSON.stringify(expected),
      60_000,
      200,
    );
    await sleep(2000);
    const report = await loop.stop();
    t.log(
      `pulumi up without vm3 in ${(upMs / 1000).toFixed(1)} s (${summary.created.length} created, ${summary.updated.length} updated); ` +
        `${report.total} requests from before the command to after the up, ${report.failures.length} failed:`,
      report.byInstance,
    );
    t.is(report.failures.length, 0, describeFailures(report));
    for (const r of (await replicas()).filter((r) => [2, 4, 6].includes(r.n)))
      t.true((report.byInstance[r.name] ?? 0) > 0, `replica ${r.n}, now on vm2, served`);
  },
);

test.serial('destroy: nothing of the stack is left on any VM', async (t) => {
  t.timeout(240_000);
  t.true(fs.existsSync(path.join(sshDir, 'id')), "the stack's key file is there before");
  const summary = await cli!.destroy();
  deployed = false;
  t.log(`pulumi destroy: ${summary.deleted.length} resources deleted in ${((summary.endedAt - summary.startedAt) / 1000).toFixed(1)} s`);
  // Every VM the fleet still has (one left behind for good is no longer there).
  for (const name of fleet.vms.keys()) {
    t.deepEqual(await vmObjects(name), [], `${name} is empty`);
    t.is(
      (await fleet.ssh(name, `ls -d ${SYSLOG_TLS_DIR} 2>/dev/null || echo gone`)).trim(),
      'gone',
      `${name}: the daemon's TLS files are removed`,
    );
  }
  t.false(fs.existsSync(path.join(sshDir, 'id')), "the stack's key file is removed");
});
