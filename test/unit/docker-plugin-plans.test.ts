// The docker stand-in's translation of declared inputs into docker CLI calls (harness/plugins/docker/plans.ts
// and engines.ts), without an engine: exact flags per input, refused inputs, image builds, providers and
// their ssh options, and a VM's stack network.
import test from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Engines } from '../../harness/plugins/docker/engines';
import { planContainer, planDockerProvider, planImage, planNetwork } from '../../harness/plugins/docker/plans';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-docker-plans-'));
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('a container plan carries every declared input as the matching docker flag', (t) => {
  const plan = planContainer('replica-1', {
    name: 'cnp-x-replica-1',
    image: 'cnp-service:x',
    envs: ['PORT=8080'],
    labels: [{ label: 'io.x.stack', value: 'x' }],
    restart: 'unless-stopped',
    memory: 256,
    ports: [{ internal: 8080, external: 18080, ip: '127.0.0.1' }],
    networksAdvanced: [{ name: 'cnp-x-net', aliases: ['replica-1'] }],
    healthcheck: { tests: ['CMD', 'node', '-e', "fetch('x')"], interval: '5s', retries: 3 },
    logDriver: 'syslog',
    logOpts: { tag: 'cnp-x-replica-1' },
    volumes: [{ volumeName: 'cnp-x-data', containerPath: '/data' }],
    entrypoints: ['consul'],
    command: ['agent', '-server'],
    destroyGraceSeconds: 15,
  });
  t.deepEqual(plan.createArgs, [
    'create',
    '--name',
    'cnp-x-replica-1',
    '-e',
    'PORT=8080',
    '--label',
    'io.x.stack=x',
    '--restart',
    'unless-stopped',
    '--memory',
    '256m',
    '-p',
    '127.0.0.1:18080:8080/tcp',
    '--network',
    'cnp-x-net',
    '--network-alias',
    'replica-1',
    '--health-cmd',
    "node -e 'fetch('\\''x'\\'')'",
    '--health-interval',
    '5s',
    '--health-retries',
    '3',
    '--log-driver',
    'syslog',
    '--log-opt',
    'tag=cnp-x-replica-1',
    '-v',
    'cnp-x-data:/data',
    '--entrypoint',
    'consul',
    'cnp-service:x',
    'agent',
    '-server',
  ]);
  t.is(plan.destroyGraceSeconds, 15);
  t.true(plan.removeVolumes);
});

test('a hardened container: user, read-only root, tmpfs, capabilities, security options, CPU and ulimits become their docker flags', (t) => {
  const plan = planContainer('consul', {
    name: 'cnp-x-consul',
    image: 'cnp-consul:x',
    user: 'consul',
    readOnly: true,
    tmpfs: { '/tmp': 'rw,noexec,nosuid,nodev,size=16m', '/run/x': '' },
    capabilities: { drops: ['ALL'], adds: ['NET_BIND_SERVICE'] },
    securityOpts: ['no-new-privileges:true'],
    memory: 256,
    memorySwap: 256,
    cpus: '0.5',
    ulimits: [{ name: 'nproc', soft: 4096, hard: 4096 }],
  });
  t.deepEqual(plan.createArgs, [
    'create',
    '--name',
    'cnp-x-consul',
    '--user',
    'consul',
    '--read-only',
    '--memory',
    '256m',
    '--memory-swap',
    '256m',
    '--cpus',
    '0.5',
    '--cap-drop',
    'ALL',
    '--cap-add',
    'NET_BIND_SERVICE',
    '--security-opt',
    'no-new-privileges:true',
    '--ulimit',
    'nproc=4096:4096',
    '--tmpfs',
    '/tmp:rw,noexec,nosuid,nodev,size=16m',
    '--tmpfs',
    '/run/x',
    'cnp-consul:x',
  ]);
  t.throws(() => planContainer('c', { image: 'i', capabilities: { drops: ['ALL'], bogus: ['X'] } }), {
    message: /capabilities declares bogus=/,
  });
  t.throws(() => planContainer('c', { image: 'i', ulimits: [{ name: 'nproc', soft: 1 }] }), {
    message: /ulimits\[0\] needs name, soft and hard/,
  });
});

test('an input the stand-in does not apply is refused by name, also inside nested inputs', (t) => {
  t.throws(() => planContainer('c', { image: 'i', privileged: true }), { message: /declares privileged=true/ });
  t.throws(() => planContainer('c', { image: 'i', healthcheck: { tests: ['CMD', 'true'], bogus: 1 } }), {
    message: /healthcheck declares bogus=1/,
  });
  t.throws(() => planNetwork('n', { name: 'n', ipv6: true }), { message: /declares ipv6=true/ });
});

test("sysctls become --sysctl flags (kreuzwerker's sysctls, ForceNew)", (t) => {
  const plan = planContainer('c', { image: 'i', sysctls: { 'net.ipv4.tcp_migrate_req': '1' } });
  t.deepEqual(plan.createArgs.slice(plan.createArgs.indexOf('--sysctl'), plan.createArgs.indexOf('--sysctl') + 2), [
    '--sysctl',
    'net.ipv4.tcp_migrate_req=1',
  ]);
});

test('empty or absent inputs are not counted as declared', (t) => {
  t.notThrows(() => planContainer('c', { image: 'i', privileged: undefined, devices: [], sysctls: {} }));
});

test('image builds resolve like the provider: context and an explicit dockerfile from the program dir', (t) => {
  const plan = planImage(
    'svc',
    { imageName: 'cnp-service:x', skipPush: true, build: { context: 'service', args: { BASE_IMAGE: 'b' } } },
    '/p',
  );
  t.deepEqual(plan.buildArgs, [
    'build',
    '--quiet',
    '-t',
    'cnp-service:x',
    '-f',
    '/p/service/Dockerfile',
    '--build-arg',
    'BASE_IMAGE=b',
    '/p/service',
  ]);
  const explicit = planImage(
    'svc',
    { imageName: 'i', skipPush: true, build: { context: 'service', dockerfile: 'service/Dockerfile' } },
    '/p',
  );
  t.true(explicit.buildArgs.includes('/p/service/Dockerfile'));
  t.throws(() => planImage('svc', { imageName: 'i', skipPush: false, build: { context: '.' } }, '/p'), { message: /skipPush=false/ });
});

test('a docker provider: no host is the local engine; ssh:// keeps its sshOpts (sent JSON-encoded, as the SDK sends them)', (t) => {
  t.deepEqual(planDockerProvider('local', {}), { name: 'local', host: undefined, sshOpts: [] });
  const opts = ['-i', '/k', '-o', 'StrictHostKeyChecking=yes'];
  t.deepEqual(planDockerProvider('vm1', { host: 'ssh://root@127.0.0.1:2201', sshOpts: JSON.stringify(opts) }), {
    name: 'vm1',
    host: 'ssh://root@127.0.0.1:2201',
    sshOpts: opts,
  });
  t.throws(() => planDockerProvider('p', { host: 'tcp://h:2375' }), { message: /host=tcp:\/\/h:2375/ });
  t.throws(() => planDockerProvider('p', { sshOpts: '["-v"]' }), { message: /sshOpts without an ssh:\/\/ host/ });
  t.throws(() => planDockerProvider('p', { host: 'ssh://h', certPath: '/c' }), { message: /declares certPath=/ });
});

test("the ssh wrapper hands the provider's sshOpts to ssh first, before the docker CLI's connection-helper arguments", async (t) => {
  // A stand-in `ssh` first on PATH records the arguments it gets: the real docker CLI runs the wrapper,
  // the wrapper runs the stand-in. The connection then fails, which is expected.
  const fakeBin = path.join(tmp, 'fake-bin');
  const argsFile = path.join(tmp, 'ssh-args');
  fs.mkdirSync(fakeBin, { recursive: true });
  fs.writeFileSync(path.join(fakeBin, 'ssh'), `#!/bin/sh\nprintf '%s\\n' "$@" > ${argsFile}\nexit 255\n`, { mode: 0o755 });
  const savedPath = process.env.PATH;
  process.env.PATH = `${fakeBin}${path.delimiter}${savedPath}`;
  const engines = new Engines();
  try {
    const engine = engines.forProvider({
      name: 'vm1',
      host: 'ssh://root@127.0.0.1:2201',
      sshOpts: ['-i', '/keys/id ed25519', '-o', 'UserKnownHostsFile=/run/kh'],
    });
    t.is(engine.host, 'ssh://root@127.0.0.1:2201');
    await new Promise<void>((resolve) =>
      execFile('docker', ['-H', engine.host!, 'version'], { env: { ...process.env, ...engine.env }, timeout: 30_000 }, () => resolve()),
    );
    const args = fs.readFileSync(argsFile, 'utf8').trim().split('\n');
    t.deepEqual(args.slice(0, 4), ['-i', '/keys/id ed25519', '-o', 'UserKnownHostsFile=/run/kh']);
    // docker/cli connhelper: ConnectTimeout and -T added, then user, port, host and the remote command.
    t.deepEqual(args.slice(4), [
      '-o ConnectTimeout=30',
      '-T',
      '-l',
      'root',
      '-p',
      '2201',
      '--',
      '127.0.0.1',
      'docker',
      'system',
      'dial-stdio',
    ]);
    // A provider without sshOpts needs no wrapper; one without a host is the local engine.
    t.is(engines.forProvider({ name: 'plain', host: 'ssh://u@h', sshOpts: [] }).env, undefined);
    t.is(engines.forProvider({ name: 'local', sshOpts: [] }).host, undefined);
  } finally {
    process.env.PATH = savedPath;
    engines.close();
  }
});

test("a network's explicit subnet and gateway (a VM's stack network) become docker network create flags", (t) => {
  const plan = planNetwork('n', { name: 'net', driver: 'bridge', ipamConfigs: [{ subnet: '10.213.0.0/24', gateway: '10.213.0.1' }] });
  t.deepEqual(plan.createArgs, ['network', 'create', '--driver', 'bridge', '--subnet', '10.213.0.0/24', '--gateway', '10.213.0.1', 'net']);
  t.throws(() => planNetwork('n', { name: 'net', ipamConfigs: [{ subnet: '10.0.0.0/24', auxAddress: { a: '10.0.0.9' } }] }), {
    message: /ipamConfigs\[0\] declares auxAddress=/,
  });
});
