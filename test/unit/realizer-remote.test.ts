// The realizer's remote side without a remote: docker providers (which engine, and how their sshOpts reach
// ssh), remote.Command plans and their ssh command line, and the engine's rules for a changed provider.
import test from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { diffResource, type DeclaredResource } from '../system/diff';
import { Engines } from '../system/engines';
import { planDockerProvider, planNetwork, planRemoteCommand } from '../system/plans';
import { Realizer, dependencyKeys } from '../system/realize';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-realizer-remote-'));
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }));

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

test('a remote.Command plan: connection defaults as the SDK gives them; inputs the realizer does not apply are refused', (t) => {
  const plan = planRemoteCommand('boot', { create: 'sh -s', connection: { host: '127.0.0.1', privateKey: 'KEY' }, triggers: ['x'] });
  t.deepEqual(plan.connection, {
    host: '127.0.0.1',
    port: 22,
    user: 'root',
    privateKey: 'KEY',
    hostKey: undefined,
    perDialTimeout: 15,
    dialErrorLimit: 10,
  });
  t.throws(() => planRemoteCommand('c', { create: 'x', connection: { host: 'h' }, environment: { A: '1' } }), {
    message: /declares environment=/,
  });
  t.throws(() => planRemoteCommand('c', { create: 'x', connection: { host: 'h', password: 'p' } }), {
    message: /connection declares password=/,
  });
  t.throws(() => planRemoteCommand('c', { create: 'x' }), { message: /has no connection/ });
});

const container = (provider?: string, inputs: Record<string, unknown> = { image: 'i' }): DeclaredResource => ({
  type: 'docker:index/container:Container',
  name: 'c',
  inputs,
  options: provider ? { provider } : {},
});

test('a resource whose provider changes is replaced, whatever its inputs (step_generator.go providerChanged)', (t) => {
  t.deepEqual(diffResource(container('vm1'), container('vm1')), { changed: [], replace: false, update: [], unapplied: [] });
  for (const [from, to] of [
    ['vm1', 'vm2'],
    [undefined, 'vm1'],
    ['vm1', undefined],
  ]) {
    const diff = diffResource(container(from), container(to));
    t.true(diff.replace, `${from} -> ${to}`);
    t.true(diff.changed.includes('provider'));
  }
});

test('remote.Command: a trigger change replaces it; a new script or connection is an update', (t) => {
  const cmd = (inputs: Record<string, unknown>): DeclaredResource => ({ type: 'command:remote:Command', name: 'b', inputs, options: {} });
  const base = { create: 'a', connection: { host: 'h', port: 22 }, triggers: ['1'] };
  t.true(diffResource(cmd(base), cmd({ ...base, triggers: ['2'] })).replace);
  t.false(diffResource(cmd(base), cmd({ ...base, create: 'b' })).replace);
  t.deepEqual(diffResource(cmd(base), cmd({ ...base, connection: { host: 'h', port: 2222 } })).changed, ['connection']);
  t.false(diffResource(cmd(base), cmd({ ...base, connection: { host: 'h', port: 2222 } })).replace);
});

test('a docker resource waits for its provider and what the provider depends on (its bootstrap)', (t) => {
  const record: DeclaredResource[] = [
    { type: 'command:remote:Command', name: 'vm1-bootstrap', inputs: { create: 'true', connection: { host: 'h' } }, options: {} },
    { type: 'pulumi:providers:docker', name: 'vm1', inputs: { host: 'ssh://h' }, options: { dependencies: ['vm1-bootstrap'] } },
    { ...container('vm1'), options: { provider: 'vm1', dependencies: [] } },
  ];
  t.deepEqual([...dependencyKeys(record).get('docker:index/container:Container::c')!].sort(), [
    'command:remote:Command::vm1-bootstrap',
    'pulumi:providers:docker::vm1',
  ]);
  // The realizer plans through the named provider, and refuses a provider the record does not hold.
  const realizer = new Realizer({ projectDir: '/p' });
  t.is(realizer.plan(record).size, 2);
  t.throws(() => realizer.plan([container('vm9')]), { message: /names provider "vm9", which is not a pulumi:providers:docker/ });
});

test("a network's explicit subnet and gateway (a VM's stack network) become docker network create flags", (t) => {
  const plan = planNetwork('n', { name: 'net', driver: 'bridge', ipamConfigs: [{ subnet: '10.213.0.0/24', gateway: '10.213.0.1' }] });
  t.deepEqual(plan.createArgs, ['network', 'create', '--driver', 'bridge', '--subnet', '10.213.0.0/24', '--gateway', '10.213.0.1', 'net']);
  t.throws(() => planNetwork('n', { name: 'net', ipamConfigs: [{ subnet: '10.0.0.0/24', auxAddress: { a: '10.0.0.9' } }] }), {
    message: /ipamConfigs\[0\] declares auxAddress=/,
  });
});
