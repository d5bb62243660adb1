// The realizer's diff table and step order: what the docker provider does with each changed container
// input, and the order in which the engine (pulumi/pulumi pkg/resource/deploy/step_generator.go) runs
// the steps of one update.
import test from 'ava';
import {
  CONTAINER_INPUT_EFFECTS,
  deleteWaves,
  diffResource,
  planSteps,
  keyOf,
  type DeclaredResource,
  type StateEntry,
} from '../system/diff';
import { planContainer } from '../system/plans';
import { dependencyKeys } from '../system/realize';

const C = 'docker:index/container:Container';
const I = 'docker:index/image:Image';

const container = (name: string, inputs: Record<string, unknown> = {}, options: DeclaredResource['options'] = {}): DeclaredResource => ({
  type: C,
  name,
  inputs: {
    name: `cnp-${name}`,
    image: 'sha256:aaa',
    envs: ['A=1'],
    restart: 'unless-stopped',
    memory: 256,
    healthcheck: { tests: ['CMD', 'true'] },
    wait: true,
    ...inputs,
  },
  options,
});
const image = (digest: string, args: Record<string, string> = { BASE_IMAGE: 'b' }): DeclaredResource => ({
  type: I,
  name: 'replicas-image',
  inputs: { imageName: 'cnp-service:x', skipPush: true, build: { context: '/p/service', args } },
  outputs: { repoDigest: digest },
  options: {},
});

test('every container input the realizer applies has exactly one rule in the diff table', (t) => {
  const error = t.throws(() => planContainer('c', { image: 'i', bogus: 1 }));
  const applied = /applied inputs are: (.*)$/.exec(error.message)![1].split(', ');
  t.deepEqual(
    applied.filter((k) => !(k in CONTAINER_INPUT_EFFECTS)),
    [],
    'inputs without a rule',
  );
  t.deepEqual(
    Object.keys(CONTAINER_INPUT_EFFECTS).filter((k) => !applied.includes(k)),
    [],
    'rules for inputs the realizer never reads',
  );
});

test('a changed image, name, env, port or log option replaces the container', (t) => {
  for (const [key, value] of Object.entries({
    image: 'sha256:bbb',
    name: 'other',
    envs: ['A=2'],
    ports: [{ internal: 1 }],
    logOpts: { tag: 'x' },
    stopSignal: 'SIGINT',
  })) {
    const diff = diffResource(container('r'), container('r', { [key]: value }));
    t.true(diff.replace, key);
    t.deepEqual(diff.changed, [key]);
  }
});

test('restart and memory are updated in place; wait, waitTimeout, destroyGraceSeconds and mustRun only change the state', (t) => {
  const inPlace = diffResource(container('r'), container('r', { restart: 'always', memory: 1024, memorySwap: 1024 }));
  t.false(inPlace.replace);
  t.deepEqual(inPlace.update.sort(), ['memory', 'memorySwap', 'restart']);
  const stateOnly = diffResource(container('r'), container('r', { wait: false, waitTimeout: 5, destroyGraceSeconds: 30, mustRun: false }));
  t.false(stateOnly.replace);
  t.deepEqual(stateOnly.update, []);
  t.deepEqual(stateOnly.unapplied, []);
  t.is(stateOnly.changed.length, 4);
});

test('a local.Command is replaced when its triggers change, and updated (its create re-run) otherwise', (t) => {
  const cmd = (inputs: Record<string, unknown>): DeclaredResource => ({ type: 'command:local:Command', name: 'b', inputs, options: {} });
  const base = { create: 'npm run build', dir: '/repo', triggers: ['h1'] };
  t.true(diffResource(cmd(base), cmd({ ...base, triggers: ['h2'] })).replace);
  const edited = diffResource(cmd(base), cmd({ ...base, create: 'npm run build -- --quiet' }));
  t.false(edited.replace);
  t.deepEqual(edited.changed, ['create']);
});

test('a hardening edit replaces the container (ForceNew in kreuzwerker docker_container), except tmpfs, which only replaceOnChanges applies', (t) => {
  for (const [key, value] of Object.entries({
    user: 'consul',
    readOnly: true,
    capabilities: { drops: ['ALL'] },
    securityOpts: ['no-new-privileges:true'],
    ulimits: [{ name: 'nproc', soft: 4096, hard: 4096 }],
    cpus: '1',
  })) {
    const diff = diffResource(container('r'), container('r', { [key]: value }));
    t.true(diff.replace, `${key} replaces`);
  }
  const tmpfs = { tmpfs: { '/tmp': 'size=16m' } };
  const silent = diffResource(container('r', tmpfs), container('r', { tmpfs: { '/tmp': 'size=32m' } }));
  t.false(silent.replace);
  t.deepEqual(silent.unapplied, ['tmpfs']);
  t.true(diffResource(container('r', tmpfs), container('r', { tmpfs: { '/tmp': 'size=32m' } }, { replaceOnChanges: ['tmpfs'] })).replace);
});

test('a health check edit is never applied unless replaceOnChanges names it', (t) => {
  const edited = { healthcheck: { tests: ['CMD', 'false'] } };
  const silent = diffResource(container('r'), container('r', edited));
  t.false(silent.replace);
  t.deepEqual(silent.update, []);
  t.deepEqual(silent.unapplied, ['healthcheck']);
  t.true(diffResource(container('r'), container('r', edited, { replaceOnChanges: ['healthcheck'] })).replace);
  t.true(diffResource(container('r'), container('r', edited, { replaceOnChanges: ['*'] })).replace);
});

test('an image whose id or build args change is rebuilt in place, not replaced; networks and volumes replace', (t) => {
  const rebuilt = diffResource(image('sha256:1'), image('sha256:2'));
  t.deepEqual([rebuilt.changed, rebuilt.replace], [['repoDigest'], false]);
  t.false(diffResource(image('sha256:1'), image('sha256:1', { BASE_IMAGE: 'c' })).replace);
  t.deepEqual(diffResource(image('sha256:1'), image('sha256:1')).changed, []);
  const net = (driver: string): DeclaredResource => ({
    type: 'docker:index/network:Network',
    name: 'n',
    inputs: { name: 'n', driver },
    options: {},
  });
  t.true(diffResource(net('bridge'), net('overlay')).replace);
  t.throws(() => diffResource(container('r'), container('r', { privileged: true })), {
    message: /no diff rule for docker:Container input privileged/,
  });
});

const state = (...resources: DeclaredResource[]) => new Map<string, StateEntry>(resources.map((r) => [keyOf(r), { resource: r }]));
const stepsOf = (plan: ReturnType<typeof planSteps>) => [...plan.registration, ...plan.deletes].map((s) => `${s.op} ${s.resource.name}`);

test('a new image: replicas are created before any old one is deleted, which happens last and together; the fixed-port balancer is deleted just before its new copy', (t) => {
  const collector = container('collector', {}, { deleteBeforeReplace: true });
  const replica = (n: number, id: string) =>
    container(
      `replicas-${n}`,
      { name: `cnp-replica-${n}-${id}`, image: `sha256:${id}` },
      { dependencies: ['collector', 'replicas-image'] },
    );
  const balancer = (id: string) =>
    container('balancer', { image: `sha256:${id}` }, { deleteBeforeReplace: true, dependencies: ['collector'] });
  const before = [collector, image('sha256:old'), replica(1, 'old'), replica(2, 'old'), balancer('old')];
  const after = [collector, image('sha256:new'), replica(1, 'new'), replica(2, 'new'), balancer('new')];
  const plan = planSteps(state(...before), after);
  t.deepEqual(stepsOf(plan), [
    'same collector',
    'update replicas-image',
    'create-replacement replicas-1',
    'create-replacement replicas-2',
    'delete-replaced balancer',
    'create-replacement balancer',
    'delete-replaced replicas-2',
    'delete-replaced replicas-1',
  ]);
  // ScheduleDeletes: the old replicas do not depend on each other, so the engine deletes them together.
  const dependsOn = dependencyKeys(before);
  const waves = deleteWaves(plan.deletes, (key) => dependsOn.get(key) ?? new Set());
  t.deepEqual(
    waves.map((w) => w.map((s) => s.resource.name).sort()),
    [['replicas-1', 'replicas-2']],
  );
});

test('resources no longer declared are deleted at the end, each after everything that depends on it', (t) => {
  const net = { type: 'docker:index/network:Network', name: 'net', inputs: { name: 'n' }, options: {} };
  const a = container('a', {}, { dependencies: ['net'] });
  const b = container('b', {}, { dependencies: ['net'] });
  const before = [net, a, b];
  const plan = planSteps(state(...before), []);
  t.deepEqual(stepsOf(plan), ['delete b', 'delete a', 'delete net']);
  const dependsOn = dependencyKeys(before);
  t.deepEqual(
    deleteWaves(plan.deletes, (key) => dependsOn.get(key) ?? new Set()).map((w) => w.map((s) => s.resource.name).sort()),
    [['a', 'b'], ['net']],
  );
});

test('a container whose create failed gets an empty update when nothing changed (the engine does not re-create it)', (t) => {
  const r = container('r');
  const failed = new Map<string, StateEntry>([[keyOf(r), { resource: r, initError: 'not healthy' }]]);
  t.deepEqual(stepsOf(planSteps(failed, [r])), ['update r']);
  t.deepEqual(stepsOf(planSteps(state(r), [r])), ['same r']);
});
