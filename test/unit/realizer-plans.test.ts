// The system test's realizer translates recorded Pulumi inputs into docker CLI flags; these are exact checks.
import test from 'ava';
import { planContainer, planImage, planCommand, planNetwork } from '../system/plans';
import { Realizer, orderByDependencies } from '../system/realize';

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

test('an input the realizer does not apply is refused by name, also inside nested inputs', (t) => {
  t.throws(() => planContainer('c', { image: 'i', privileged: true }), { message: /declares privileged=true/ });
  t.throws(() => planContainer('c', { image: 'i', healthcheck: { tests: ['CMD', 'true'], bogus: 1 } }), {
    message: /healthcheck declares bogus=1/,
  });
  t.throws(() => planNetwork('n', { name: 'n', ipv6: true }), { message: /declares ipv6=true/ });
  t.throws(() => planCommand('b', { create: 'make', update: 'make again' }, '/p'), { message: /declares update=/ });
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

test('resources are ordered by explicit dependsOn, otherwise as declared', (t) => {
  const r = (name: string, dependsOn?: string[]) => ({
    type: 'docker:index/container:Container',
    name,
    inputs: {},
    options: { dependsOn },
  });
  t.deepEqual(
    orderByDependencies([r('a', ['c']), r('b'), r('c')]).map((x) => x.name),
    ['c', 'a', 'b'],
  );
  t.throws(() => orderByDependencies([r('a', ['b']), r('b', ['a'])]), { message: /cycle/ });
});

test('providers create nothing; a provider for a tcp:// host is refused; components are skipped', (t) => {
  const realizer = new Realizer({ projectDir: '/p' });
  const remote = { type: 'pulumi:providers:docker', name: 'docker-remote', inputs: { host: 'ssh://u@h' }, options: {} };
  t.is(realizer.plan([remote]).size, 0);
  const tcp = { type: 'pulumi:providers:docker', name: 'docker-tcp', inputs: { host: 'tcp://h:2375' }, options: {} };
  t.throws(() => realizer.plan([tcp]), { message: /host=tcp:\/\/h:2375; only ssh:\/\/ and unix:\/\// });
  const component = { type: 'cnp:infra:Discovery', name: 'discovery', custom: false, inputs: {}, options: {} };
  t.is(realizer.plan([component]).size, 0);
  const duplicate = { type: 'docker:index/network:Network', name: 'n', inputs: { name: 'x' }, options: {} };
  t.throws(() => realizer.plan([duplicate, { ...duplicate }]), { message: /two resources named/ });
});
