// The VM layout under the SDK's mock runtime: the `vms` config and its secrets, the placement of replicas,
// and what each VM gets (bootstrap, provider, network, Consul agent, its roles' containers).
import { DEFAULT_RATE_LIMIT_PER_CLIENT } from '../../lib/client-limits';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import test from 'ava';
import { brokerTlsConfig } from '../../infra/broker';
import { parseConfig, type VmConfig } from '../../infra/config';
import { placeReplicas } from '../../infra/placement';
import { BOOTSTRAP_SCRIPT_PATH, imagePlatform } from '../../infra/vm-host';
import { scratchCopy } from '../helpers/scratch-copy';
import {
  MOCK_GOSSIP_KEY,
  mockPem,
  recordStack,
  REPO_ROOT,
  type ProgramError,
  type RecordedResource,
  type RecordedStack,
} from '../helpers/record-stack';
import { agentTlsHcl, CONSUL_TLS_SCRIPT, splitPem } from '../../infra/consul-tls';

const T = {
  container: 'docker:index/container:Container',
  image: 'docker:index/image:Image',
  network: 'docker:index/network:Network',
  volume: 'docker:index/volume:Volume',
  local: 'command:local:Command',
  remote: 'command:remote:Command',
  provider: 'pulumi:providers:docker',
};

/** The course's layout, plus the events: VM1 discovery + balancer, VM2 collector + replicas + broker + activity, VM3 replicas + activity. */
const COURSE_VMS = [
  {
    name: 'vm1',
    ssh: { host: '127.0.0.1', port: 2201, user: 'root' },
    privateAddress: '172.31.0.11',
    publicAddress: '127.0.0.1',
    roles: ['discovery', 'balancer'],
  },
  {
    name: 'vm2',
    ssh: { host: '127.0.0.1', port: 2202, user: 'deploy' },
    privateAddress: '172.31.0.12',
    roles: ['collector', 'replicas', 'broker', 'activity'],
  },
  { name: 'vm3', ssh: { host: 'vm3.example', user: 'root' }, privateAddress: '172.31.0.13', roles: ['replicas', 'activity'] },
];
const SSH_KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n';
const GOSSIP_KEY = Buffer.alloc(32, 9).toString('base64');

const ofType = (record: RecordedStack, type: string) => record.resources.filter((r) => r.type === type);
const named = (record: RecordedStack, name: string) => {
  const found = record.resources.find((r) => r.name === name);
  if (!found) throw new Error(`no resource named ${name}`);
  return found;
};
interface Inputs {
  name: string;
  envs: string[];
  command: string[];
  ports?: { ip: string; external: number; internal: number; protocol: string }[];
  networkMode?: string;
  networksAdvanced?: { name: string }[];
  logDriver?: string;
  logOpts: Record<string, string>;
  host?: string;
  ipamConfigs?: { subnet: string; gateway: string }[];
  build: { platform?: string };
  create: string;
  stdin: string;
  triggers: string[];
  environment: Record<string, string | undefined>;
  connection: { host: string; port: number; user: string; privateKey?: string; dialErrorLimit: number };
}
const inputs = (r: RecordedResource) => r.inputs as unknown as Inputs;
/** A provider's list input, which the SDK sends as JSON text (as every non-string provider input). */
const sshOpts = (r: RecordedResource): string[] => JSON.parse(r.inputs.sshOpts as string) as string[];
const env = (r: RecordedResource) =>
  Object.fromEntries(inputs(r).envs.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));

// ---- config ----

const parseVms = (vms: unknown, extra: Record<string, string> = {}) => parseConfig({ vms: JSON.stringify(vms), ...extra });

/** A VM agent's secret configuration file, as its host's holder uploads it (infra/secret-files.ts). */
const agentSecrets = (record: RecordedStack, vm: string): string =>
  (named(record, `${vm}-consul-secrets-holder`).inputs.uploads as { file: string; content: string }[]).find(
    (u) => u.file === '/secrets/consul/agent.hcl',
  )!.content;

test('vms parse with defaults: ssh port 22, publicAddress = privateAddress', (t) => {
  const config = parseVms(COURSE_VMS);
  t.deepEqual(config.vms[2], {
    name: 'vm3',
    ssh: { host: 'vm3.example', port: 22, user: 'root' },
    privateAddress: '172.31.0.13',
    publicAddress: '172.31.0.13',
    roles: ['replicas', 'activity'],
  } satisfies VmConfig);
  t.is(config.vms[0].publicAddress, '127.0.0.1');
  t.is(config.vms[1].ssh.port, 2202);
  // The CLI stores `--path 'vms[0].ssh.port' 2201` as a number; a string of digits is taken too.
  t.is(parseVms([{ ...COURSE_VMS[0], ssh: { host: 'h', port: '2222', user: 'u' } }, ...COURSE_VMS.slice(1)]).vms[0].ssh.port, 2222);
});

const withVm = (index: number, change: Record<string, unknown>) => COURSE_VMS.map((vm, i) => (i === index ? { ...vm, ...change } : vm));

const badVms: [string, unknown, RegExp][] = [
  [
    'an unknown role',
    withVm(2, { roles: ['replicas', 'web'] }),
    /vms\[2\]\.roles\[1\] = "web" is not allowed: use one of discovery, balancer, collector, replicas, broker, activity/,
  ],
  ['a role twice', withVm(2, { roles: ['replicas', 'replicas'] }), /vms\[2\]\.roles\[1\] = "replicas" is not allowed: use each role once/],
  ['no roles', withVm(2, { roles: [] }), /vms\[2\]\.roles = \[\] is not allowed: use a non-empty list/],
  [
    'two VMs with one name',
    withVm(2, { name: 'vm1' }),
    /vms\[2\]\.name = "vm1" is not allowed: use a name no other VM has \(vms\[0\] has it already\)/,
  ],
  ['a name that is no DNS label', withVm(0, { name: 'VM_1' }), /vms\[0\]\.name = "VM_1" is not allowed: use lowercase letters/],
  [
    'two VMs with one private address',
    withVm(2, { privateAddress: '172.31.0.12' }),
    /vms\[2\]\.privateAddress = "172.31.0.12" is not allowed: use a privateAddress no other VM has/,
  ],
  [
    'a private address that is not one',
    withVm(1, { privateAddress: 'vm2.internal' }),
    /vms\[1\]\.privateAddress = "vm2.internal" is not allowed: use an IPv4 or IPv6 address literal/,
  ],
  ['a public address that is not one', withVm(0, { publicAddress: '1.2.3' }), /vms\[0\]\.publicAddress = "1.2.3" is not allowed/],
  [
    'an ssh port out of range',
    withVm(0, { ssh: { host: 'h', port: 70000, user: 'root' } }),
    /vms\[0\]\.ssh\.port = 70000 is not allowed: use a TCP port number/,
  ],
  ['no ssh user', withVm(0, { ssh: { host: 'h' } }), /vms\[0\]\.ssh\.user = undefined is not allowed/],
  ['an unknown field', withVm(0, { role: 'balancer' }), /vms\[0\]\.role = "balancer" is not allowed: use only the fields/],
  ['no balancer VM', withVm(0, { roles: ['discovery'] }), /vms is not allowed: 0 VMs have the role balancer; use exactly one/],
  [
    'two balancer VMs',
    withVm(2, { roles: ['replicas', 'balancer'] }),
    /2 VMs have the role balancer; use exactly one \(one published entry point/,
  ],
  ['no collector VM', withVm(1, { roles: ['replicas', 'broker'] }), /0 VMs have the role collector; use exactly one/],
  [
    'no replicas VM',
    [COURSE_VMS[0], { ...COURSE_VMS[1], roles: ['collector', 'broker', 'activity'] }],
    /no VM has the role replicas; give it/,
  ],
  [
    'no broker VM',
    withVm(1, { roles: ['collector', 'replicas', 'activity'] }),
    /0 VMs have the role broker; use 1 or 3: one NATS server, or three forming one JetStream cluster/,
  ],
  ['two broker VMs', withVm(2, { roles: ['replicas', 'activity', 'broker'] }), /2 VMs have the role broker; use 1 or 3: .*\(2 would stop/],
  [
    'four broker VMs',
    [
      ...withVm(0, { roles: ['discovery', 'balancer', 'broker'] }),
      { ...COURSE_VMS[2], name: 'vm4', privateAddress: '172.31.0.14', roles: ['broker'] },
    ].map((vm, i) => (i === 2 ? { ...vm, roles: ['replicas', 'activity', 'broker'] } : vm)),
    /4 VMs have the role broker; use 1 or 3/,
  ],
  [
    'no activity VM',
    withVm(1, { roles: ['collector', 'replicas', 'broker'] }).map((vm, i) => (i === 2 ? { ...vm, roles: ['replicas'] } : vm)),
    /no VM has the role activity; give it to at least one \(it may share a VM with other roles\)/,
  ],
  ['no discovery VM', withVm(0, { roles: ['balancer'] }), /0 VMs have the role discovery; use 1 or 3: .*-bootstrap-expect/],
  [
    'two discovery VMs',
    withVm(1, { roles: ['collector', 'replicas', 'broker', 'activity', 'discovery'] }),
    /2 VMs have the role discovery; use 1 or 3/,
  ],
  ['an empty list', [], /vms = \[\] is not allowed: .*leave vms unset to deploy on one engine/],
  ['not a list', { name: 'vm1' }, /vms = \{"name":"vm1"\} is not allowed/],
];
for (const [what, vms, message] of badVms) {
  test(`vms with ${what} is refused with one message naming the place and what is allowed`, (t) => {
    const error = t.throws(() => parseVms(vms));
    t.regex(error.message, /^Invalid stack configuration: consul-nginx-pulumi:vms/);
    t.regex(error.message, message);
  });
}

test('three discovery VMs are allowed (bootstrap-expect 3)', (t) => {
  const vms = parseVms(
    withVm(1, { roles: ['collector', 'replicas', 'broker', 'activity', 'discovery'] }).map((vm, i) =>
      i === 2 ? { ...vm, roles: ['replicas', 'activity', 'discovery'] } : vm,
    ),
  ).vms;
  t.is(vms.filter((vm) => vm.roles.includes('discovery')).length, 3);
});

test('vms together with dockerHost or bindAddress is refused, saying why', (t) => {
  t.regex(
    t.throws(() => parseVms(COURSE_VMS, { dockerHost: 'ssh://root@vm1' })).message,
    /dockerHost = "ssh:\/\/root@vm1" is not allowed together with vms: each VM's engine is reached through its own ssh settings/,
  );
  t.regex(
    t.throws(() => parseVms(COURSE_VMS, { bindAddress: '0.0.0.0' })).message,
    /bindAddress = "0.0.0.0" is not allowed together with vms/,
  );
});

test("with vms, a published port on Consul's or the replicas' ports, or a stack subnet holding a VM, is refused", (t) => {
  t.regex(
    t.throws(() => parseVms(COURSE_VMS, { balancerPort: '8301' })).message,
    /balancerPort = "8301" is not allowed with vms: it is one of Consul's/,
  );
  t.regex(
    t.throws(() => parseVms(COURSE_VMS, { collectorPort: '21003' })).message,
    /collectorPort = "21003" is not allowed with vms: it is one of the replicas' ports 21001-21040/,
  );
  t.regex(
    t.throws(() => parseVms(COURSE_VMS, { balancerAdminPort: '22040' })).message,
    /balancerAdminPort = "22040" is not allowed with vms: it is one of the activity replicas' ports 22001-22040/,
  );
  t.regex(
    t.throws(() => parseVms(COURSE_VMS, { consulUiPort: '8222' })).message,
    /consulUiPort = "8222" is not allowed with vms: it is one of the broker's ports 4222 and 8222/,
  );
  t.regex(
    t.throws(() => parseVms(COURSE_VMS, { vmNetworkSubnet: '172.31.0.0/16' })).message,
    /vmNetworkSubnet = "172.31.0.0\/16" is not allowed: it holds vms\[0\].privateAddress 172.31.0.11/,
  );
  t.regex(
    t.throws(() => parseConfig({ vmNetworkSubnet: '10.213.0.1/24' })).message,
    /vmNetworkSubnet = "10.213.0.1\/24" is not allowed: use an IPv4 subnet/,
  );
});

test('sshPrivateKey and consulGossipKey set as plain text are refused without showing the value', (t) => {
  for (const [key, value] of [
    ['sshPrivateKey', SSH_KEY],
    ['consulGossipKey', GOSSIP_KEY],
  ]) {
    const error = t.throws(() => parseConfig({ [key]: value }));
    t.regex(
      error.message,
      new RegExp(`consul-nginx-pulumi:${key} is set as plain text, which is not allowed: .*pulumi config set --secret ${key}`),
    );
    t.false(error.message.includes(value.trim().slice(0, 20)), 'the value is not in the message');
  }
});

test('secrets are taken when secret and well-formed; a malformed one is refused without its value', (t) => {
  const config = parseConfig({ sshPrivateKey: SSH_KEY, consulGossipKey: GOSSIP_KEY }, undefined, ['sshPrivateKey', 'consulGossipKey']);
  t.is(config.sshPrivateKey, SSH_KEY);
  t.is(config.consulGossipKey, GOSSIP_KEY);
  for (const [key, value] of [
    ['consulGossipKey', Buffer.alloc(16, 1).toString('base64')],
    ['consulGossipKey', 'not base64 at all!'],
    ['sshPrivateKey', 'ssh-ed25519 AAAAC3Nza public key, not a private one'],
  ]) {
    const error = t.throws(() => parseConfig({ [key]: value }, undefined, [key]));
    t.regex(error.message, new RegExp(`consul-nginx-pulumi:${key} \\(a secret, value not shown\\) is not allowed: use `));
    t.false(error.message.includes(value), 'the value is not in the message');
  }
});

test('the program reads secret-ness from the runtime: a plain sshPrivateKey stops it before any resource', async (t) => {
  const error = await t.throwsAsync<ProgramError>(recordStack({ config: { vms: COURSE_VMS, sshPrivateKey: SSH_KEY } }));
  t.regex(error.message, /sshPrivateKey is set as plain text/);
  t.deepEqual(error.resources, []);
  await t.notThrowsAsync(recordStack({ config: { vms: COURSE_VMS }, secrets: { sshPrivateKey: SSH_KEY } }));
});

// ---- placement ----

test('replica n goes to the replicas VMs round-robin by n, in config order', (t) => {
  const vms = parseVms(COURSE_VMS).vms;
  t.deepEqual(
    [...placeReplicas(5, vms)],
    [
      ['vm2', [1, 3, 5]],
      ['vm3', [2, 4]],
    ],
  );
  t.deepEqual(
    [...placeReplicas(1, vms)],
    [
      ['vm2', [1]],
      ['vm3', []],
    ],
  );
});

test('activity replica n goes to the activity VMs round-robin by n, apart from the hello replicas', (t) => {
  const vms = parseVms(COURSE_VMS).vms;
  t.deepEqual(
    [...placeReplicas(3, vms, 'activity')],
    [
      ['vm2', [1, 3]],
      ['vm3', [2]],
    ],
  );
  // A VM with the activity role only runs no hello replica.
  const apart = parseVms(withVm(2, { roles: ['activity'] })).vms;
  t.deepEqual([...placeReplicas(2, apart)], [['vm2', [1, 2]]]);
  t.deepEqual(
    [...placeReplicas(2, apart, 'activity')],
    [
      ['vm2', [1]],
      ['vm3', [2]],
    ],
  );
});

const byKey = (record: RecordedStack) => new Map(record.resources.map((r) => [`${r.type}::${r.name}`, r]));

test('raising replicas 4 -> 6 adds replicas 5 and 6 on their VMs; lowering 6 -> 4 removes them; nothing else changes', async (t) => {
  const four = byKey(await recordStack({ config: { vms: COURSE_VMS, replicas: 4 } }));
  const six = byKey(await recordStack({ config: { vms: COURSE_VMS, replicas: 6 } }));
  const added = [...six.keys()].filter((k) => !four.has(k));
  t.deepEqual(added.sort(), [`${T.container}::vm2-replicas-5`, `${T.container}::vm3-replicas-6`]);
  t.deepEqual(
    [...four.keys()].filter((k) => !six.has(k)),
    [],
  );
  const changed = [...four.keys()].filter((k) => !isDeepStrictEqual(four.get(k), six.get(k)));
  t.deepEqual(changed, [], 'every resource of 4 replicas is identical with 6');
  t.regex(inputs(six.get(`${T.container}::vm3-replicas-6`)!).name, /^cnp-dev-replica-6-[0-9a-f]{12}$/);
  // Lowering is the same comparison the other way round: only 5 and 6 go.
  const again = byKey(await recordStack({ config: { vms: COURSE_VMS, replicas: 4 } }));
  for (const [key, resource] of four) t.deepEqual(again.get(key), resource, key);
});

test('a code change under service/ and activity/ on VMs renames every replica and keeps the rest of its inputs (its PORT range too)', async (t) => {
  const copy = scratchCopy();
  t.teardown(() => copy.remove());
  const config = { vms: COURSE_VMS, replicas: 4, activityReplicas: 2 };
  const before = byKey(await recordStack({ projectDir: copy.dir, config }));
  copy.edit('service/app.ts', 'version: deps.version', 'version: `${deps.version}-changed`');
  copy.edit('activity/app.ts', "app.get('/health'", "app.get('/health' /* changed */");
  const after = byKey(await recordStack({ projectDir: copy.dir, config }));
  const changed = [...after.keys()].filter((k) => !isDeepStrictEqual(after.get(k), before.get(k)));
  const replicas = ['vm2-replicas-1', 'vm3-replicas-2', 'vm2-replicas-3', 'vm3-replicas-4', 'vm2-activity-1', 'vm3-activity-2'];
  t.deepEqual(
    changed.sort(),
    [
      `${T.local}::bundle-build`,
      ...['vm2-replicas-image', 'vm3-replicas-image', 'vm2-activity-image', 'vm3-activity-image'].map((n) => `${T.image}::${n}`),
      ...replicas.map((n) => `${T.container}::${n}`),
    ].sort(),
  );
  // What differs is the version: the name (hence SERVICE_ID and the syslog tag) and the image. Nothing pins a
  // port, so the new replica starts next to the old one, which the engine deletes only after (no deleteBeforeReplace).
  const versionless = (r: RecordedResource) => JSON.stringify(r.inputs).replace(/sha256:[0-9a-f]{64}|-[0-9a-f]{12}\b/g, '<version>');
  for (const name of replicas) {
    const [old, now] = [before, after].map((r) => r.get(`${T.container}::${name}`)!);
    t.not(inputs(now).name, inputs(old).name, name);
    t.is(versionless(now), versionless(old), name);
    t.false(now.options.deleteBeforeReplace, name);
  }
});

test('raising activityReplicas 1 -> 3 on VMs adds activity 2 on vm3 and 3 on vm2; nothing else changes', async (t) => {
  const one = byKey(await recordStack({ config: { vms: COURSE_VMS, replicas: 4, activityReplicas: 1 } }));
  const three = byKey(await recordStack({ config: { vms: COURSE_VMS, replicas: 4, activityReplicas: 3 } }));
  const added = [...three.keys()].filter((k) => !one.has(k));
  t.deepEqual(added.sort(), [`${T.container}::vm2-activity-3`, `${T.container}::vm3-activity-2`]);
  const changed = [...one.keys()].filter((k) => !isDeepStrictEqual(one.get(k), three.get(k)));
  t.deepEqual(changed, [], 'hello replicas and everything else identical');
});

// ---- what each VM gets ----

const course = recordStack({ config: { vms: COURSE_VMS, replicas: 4 }, secrets: { sshPrivateKey: SSH_KEY } });

test('no docker resource uses the default provider; each names the provider of its VM', async (t) => {
  const record = await course;
  t.deepEqual(
    ofType(record, T.provider).map((p) => [p.name, inputs(p).host]),
    [
      ['vm1-docker', 'ssh://root@127.0.0.1:2201'],
      ['vm2-docker', 'ssh://deploy@127.0.0.1:2202'],
      ['vm3-docker', 'ssh://root@vm3.example:22'],
    ],
  );
  const dockerResources = record.resources.filter((r) => r.type.startsWith('docker:'));
  t.true(dockerResources.length > 0);
  for (const r of dockerResources) {
    const vm = r.name.split('-')[0];
    t.is(r.options.provider, `${vm}-docker`, `${r.name} runs on ${vm}`);
  }
});

test('each VM is bootstrapped over SSH before its provider connects; the provider uses the key file the program writes', async (t) => {
  const record = await course;
  const files = named(record, 'ssh-files');
  // The key is no input of any step: the program writes the file at every run (never under the mocks).
  t.deepEqual(files.secretInputs, []);
  t.deepEqual(Object.keys(inputs(files).environment), ['CNP_SSH_DIR']);
  t.regex(inputs(files).create, /^umask 077 && /);
  t.false(fs.existsSync(path.join(inputs(files).environment.CNP_SSH_DIR!, 'id')), 'a recording writes no key file into the checkout');
  for (const vm of ['vm1', 'vm2', 'vm3']) {
    // The host key is taken first (infra/host-key.ts); the bootstrap's client gets it (mocked: none).
    const hostKey = named(record, `${vm}-host-key`);
    t.is(inputs(hostKey).create, 'node --import tsx infra/host-key.ts');
    t.like(inputs(hostKey).environment, { CNP_SSH_HOST: COURSE_VMS.find((v) => v.name === vm)!.ssh.host });
    t.deepEqual(hostKey.options.dependsOn, ['ssh-files']);
    const bootstrap = named(record, `${vm}-bootstrap`);
    t.true(bootstrap.options.dependencies.includes(`${vm}-host-key`), 'the bootstrap waits for the host key');
    t.is(inputs(bootstrap).create, 'sh -s');
    t.true(inputs(bootstrap).stdin.startsWith('#!/bin/sh'));
    t.is(inputs(bootstrap).triggers.length, 1);
    t.is(inputs(bootstrap).connection.privateKey, SSH_KEY);
    t.true(bootstrap.secretInputs.includes('connection'));
    t.true(inputs(bootstrap).connection.dialErrorLimit > 10, 'waits for SSH to answer');
    const provider = named(record, `${vm}-docker`);
    t.deepEqual(provider.options.dependsOn, [`${vm}-bootstrap`, 'ssh-files']);
    const opts = sshOpts(provider);
    t.is(opts[opts.indexOf('-i') + 1], `${inputs(files).environment.CNP_SSH_DIR}/id`);
    t.true(opts.includes('StrictHostKeyChecking=yes'), 'ssh accepts only the key the stack took');
    t.true(opts.includes(`UserKnownHostsFile=${inputs(files).environment.CNP_SSH_DIR}/known_hosts`));
  }
  t.deepEqual(named(record, 'vm3-bootstrap').inputs.connection, {
    ...inputs(named(record, 'vm3-bootstrap')).connection,
    host: 'vm3.example',
    port: 22,
    user: 'root',
  });
});

test("without sshPrivateKey the user's ssh-agent is used: no key input and no -i", async (t) => {
  const record = await recordStack({ config: { vms: COURSE_VMS } });
  t.is(inputs(named(record, 'vm1-bootstrap')).connection.privateKey, undefined);
  t.false(sshOpts(named(record, 'vm1-docker')).includes('-i'));
  t.is(inputs(named(record, 'ssh-files')).environment.CNP_SSH_PRIVATE_KEY, undefined);
});

test('one Consul agent per VM in host networking on its private address; servers on the discovery VM; the API off the private network', async (t) => {
  const record = await course;
  for (const [vm, address, server] of [
    ['vm1', '172.31.0.11', true],
    ['vm2', '172.31.0.12', false],
    ['vm3', '172.31.0.13', false],
  ] as const) {
    const agent = named(record, `${vm}-consul-agent`);
    const command = inputs(agent).command;
    t.is(inputs(agent).networkMode, 'host');
    t.is(inputs(agent).networksAdvanced, undefined);
    t.is(inputs(agent).ports, undefined);
    t.true(command.includes(`-bind=${address}`) && command.includes(`-advertise=${address}`), `${vm} binds its private address`);
    t.true(command.includes('-client=127.0.0.1 10.213.0.1'), `${vm}: HTTP on loopback and the stack network's gateway only`);
    t.is(command.includes('-server'), server);
    t.is(command.includes('-bootstrap-expect=1'), server);
    t.true(command.includes('-retry-join=172.31.0.11'));
    t.true(command.includes(`-node=${vm}`));
    t.true(command.includes('-config-file=/run/secrets/agent.hcl') && command.includes('-disable-keyring-file'));
    t.true(agentSecrets(record, vm).startsWith(`encrypt = "${MOCK_GOSSIP_KEY}"\n`), `${vm}: the gossip key in its secret file`);
    t.deepEqual(agent.secretInputs, []);
    t.true(agent.options.dependencies.includes(`${vm}-network-bridge`), 'after the network whose gateway it binds');
    t.deepEqual(inputs(named(record, `${vm}-network-bridge`)).ipamConfigs, [{ subnet: '10.213.0.0/24', gateway: '10.213.0.1' }]);
  }
});

test('with consulGossipKey set, every agent uses it and no key is generated', async (t) => {
  const record = await recordStack({ config: { vms: COURSE_VMS }, secrets: { consulGossipKey: GOSSIP_KEY } });
  t.is(
    record.resources.find((r) => r.name === 'consul-gossip-key'),
    undefined,
  );
  for (const vm of ['vm1', 'vm2', 'vm3']) t.true(agentSecrets(record, vm).startsWith(`encrypt = "${GOSSIP_KEY}"\n`));
});

test("replicas run in their VM's network on the first free port of 21001-21040 on its private address, use their VM's agent, and roll create-first", async (t) => {
  const record = await course;
  for (const [n, vm, address] of [
    [1, 'vm2', '172.31.0.12'],
    [2, 'vm3', '172.31.0.13'],
    [3, 'vm2', '172.31.0.12'],
    [4, 'vm3', '172.31.0.13'],
  ] as const) {
    const replica = named(record, `${vm}-replicas-${n}`);
    t.is(inputs(replica).networkMode, 'host');
    t.is(inputs(replica).ports, undefined, 'no published port: it binds one itself');
    t.is(inputs(replica).networksAdvanced, undefined);
    t.like(env(replica), { PORT: '21001-21040', HOST: address, CONSUL_HTTP_ADDR: 'http://10.213.0.1:8500' });
    t.false('SERVICE_ADDRESS' in env(replica), 'the service advertises HOST');
    t.true(replica.options.dependsOn.includes(`${vm}-consul-agent`));
    t.false(replica.options.deleteBeforeReplace, 'the successor starts on another port while the old one serves');
  }
});

test("the broker on its VM publishes its client and monitoring ports on the private address and is registered on that VM's agent through an SSH tunnel", async (t) => {
  const record = await course;
  const nats = named(record, 'vm2-broker-container');
  t.is(nats.options.provider, 'vm2-docker');
  t.is(inputs(nats).name, 'cnp-dev-nats');
  t.deepEqual(inputs(nats).ports, [
    { internal: 4222, external: 4222, ip: '172.31.0.12', protocol: 'tcp' },
    { internal: 8222, external: 8222, ip: '172.31.0.12', protocol: 'tcp' },
  ]);
  t.is(inputs(nats).logOpts['syslog-address'], 'tcp+tls://172.31.0.12:5514');
  t.is(named(record, 'vm2-broker-data').inputs.name, 'cnp-dev-nats-data');
  const step = named(record, 'broker-registration');
  t.like(inputs(step).environment, {
    CONSUL_HTTP_ADDR: 'http://127.0.0.1:8500',
    BROKER_ADDRESS: '172.31.0.12',
    // The broker's VM, not the discovery VM the ACL init step goes to: the service belongs to that VM's agent.
    ACL_SSH_TARGET: 'deploy@127.0.0.1',
    ACL_SSH_PORT: '2202',
  });
  t.is(inputs(named(record, 'consul-acl-init')).environment.ACL_SSH_TARGET, 'root@127.0.0.1');
  t.deepEqual(JSON.parse(inputs(step).environment.ACL_SSH_OPTS!), sshOpts(named(record, 'vm2-docker')));
  t.deepEqual(step.options.dependsOn.sort(), ['consul-acl-init', 'ssh-files', 'vm2-consul-agent'].sort());
  t.deepEqual(inputs(step).triggers.slice(1), ['vm2-consul-agent-id', 'cnp-dev-consul-data']);
});

/** The course's layout with three brokers: vm1 (with the gateway), vm2 (with the collector) and vm4, a broker only. */
const THREE_BROKERS = [
  { ...COURSE_VMS[0], roles: ['discovery', 'balancer', 'broker'] },
  COURSE_VMS[1],
  COURSE_VMS[2],
  { name: 'vm4', ssh: { host: '127.0.0.1', port: 2204, user: 'root' }, privateAddress: '172.31.0.14', roles: ['broker'] },
];

test('three broker VMs form one JetStream cluster routed over their private addresses, each registered on its own agent; the clients keep the stream on all three', async (t) => {
  const record = await recordStack({ config: { vms: THREE_BROKERS, activityReplicas: 2 } });
  const members = [
    ['vm1', '172.31.0.11'],
    ['vm2', '172.31.0.12'],
    ['vm4', '172.31.0.14'],
  ] as const;
  for (const [vm, address] of members) {
    const nats = named(record, `${vm}-broker-container`);
    t.is(nats.options.provider, `${vm}-docker`);
    const peers = members.filter(([other]) => other !== vm).map(([, peer]) => `nats://${peer}:6222`);
    t.deepEqual(
      inputs(nats).command.filter((flag) => /^--(server_name|cluster|routes|no_advertise)/.test(flag)),
      [
        `--server_name=${vm}-nats`,
        '--cluster_name=cnp-dev-events',
        '--cluster=nats://0.0.0.0:6222',
        `--cluster_advertise=${address}:6222`,
        `--routes=${peers.join(',')}`,
        '--no_advertise',
      ],
    );
    t.deepEqual(
      inputs(nats).ports?.map((p) => `${p.ip}:${p.external}->${p.internal}`),
      [4222, 8222, 6222].map((port) => `${address}:${port}->${port}`),
    );
    const step = named(record, `${vm}-broker-registration`);
    t.like(inputs(step).environment, { BROKER_ADDRESS: address, ACL_SSH_PORT: String(THREE_BROKERS.find((v) => v.name === vm)!.ssh.port) });
    t.true(step.options.dependsOn.includes(`${vm}-consul-agent`));
  }
  t.false(
    record.resources.some((r) => r.name === 'broker-registration'),
    'one step per broker VM, none shared',
  );
  for (const replica of record.resources.filter((r) => /-(replicas|activity)-\d+$/.test(r.name) && r.type === T.container)) {
    t.is(env(replica).USER_EVENTS_REPLICAS, '3', replica.name);
    if (replica.name.includes('-activity-'))
      for (const vm of ['vm1', 'vm2', 'vm4'])
        t.true(replica.options.dependsOn.includes(`${vm}-broker-registration`), `${replica.name} after ${vm}'s broker registration`);
  }
});

test('one broker VM runs a server of its own: no cluster flags, no route port, and the clients keep one copy', async (t) => {
  const record = await course;
  const nats = named(record, 'vm2-broker-container');
  t.deepEqual(
    inputs(nats).command.filter((flag) => /^--(cluster|routes|no_advertise)/.test(flag)),
    [],
  );
  t.true(inputs(nats).command.includes('--server_name=cnp-dev-nats'));
  t.is(env(named(record, 'vm3-replicas-2')).USER_EVENTS_REPLICAS, '1');
});

test("activity replicas run in their VM's network on the first free port of 22001-22040, use their VM's agent and start after the broker's registration", async (t) => {
  const record = await recordStack({ config: { vms: COURSE_VMS, activityReplicas: 2 } });
  for (const [n, vm, address] of [
    [1, 'vm2', '172.31.0.12'],
    [2, 'vm3', '172.31.0.13'],
  ] as const) {
    const replica = named(record, `${vm}-activity-${n}`);
    t.regex(inputs(replica).name, new RegExp(`^cnp-dev-activity-${n}-[0-9a-f]{12}$`));
    t.is(inputs(replica).networkMode, 'host');
    t.is(inputs(replica).ports, undefined);
    t.like(env(replica), {
      SERVICE_NAME: 'activity',
      PORT: '22001-22040',
      HOST: address,
      NATS_SERVICE: 'nats',
      CONSUL_HTTP_ADDR: 'http://10.213.0.1:8500',
    });
    for (const dep of [`${vm}-consul-agent`, 'consul-acl-init', 'vm2-broker-container', 'broker-registration'])
      t.true(replica.options.dependsOn.includes(dep), `${vm}-activity-${n} after ${dep}`);
    t.false(replica.options.deleteBeforeReplace);
  }
  t.deepEqual(
    (record.outputs.activityReplicaNames as string[]).map((n) => n.replace(/-[0-9a-f]{12}$/, '')),
    ['cnp-dev-activity-1', 'cnp-dev-activity-2'],
  );
});

test('the balancer follows its VM agent and is published on the public address; the collector listens on its private address', async (t) => {
  const record = await course;
  const balancer = named(record, 'vm1-balancer-gateway');
  t.is(env(balancer).CONSUL_HTTP_ADDR, 'http://10.213.0.1:8500');
  t.is(env(balancer).RATE_LIMIT_PER_CLIENT, String(DEFAULT_RATE_LIMIT_PER_CLIENT), 'gatewayRateLimit, at its default');
  // It runs in the namespace of the holder, which publishes the ports and stays when the balancer is replaced.
  const holder = named(record, 'vm1-balancer-ports');
  t.is(inputs(balancer).networkMode, 'container:vm1-balancer-ports-id');
  t.false(balancer.options.deleteBeforeReplace, 'the new one starts next to the old one');
  t.deepEqual(inputs(holder).ports, [
    { internal: 8080, external: 8080, ip: '127.0.0.1', protocol: 'tcp' },
    { internal: 8443, external: 8443, ip: '127.0.0.1', protocol: 'tcp' },
    // The admin listener (instance addresses, the evidence page) on the private network only.
    { internal: 8081, external: 8081, ip: '172.31.0.11', protocol: 'tcp' },
  ]);
  t.deepEqual((holder.inputs as { sysctls?: Record<string, string> }).sysctls, { 'net.ipv4.tcp_migrate_req': '1' });
  t.true(balancer.options.dependsOn.includes('vm1-consul-agent'));
  const collector = named(record, 'vm2-collector-container');
  t.deepEqual(inputs(collector).ports, [{ internal: 5514, external: 5514, ip: '172.31.0.12', protocol: 'tcp' }]);
  t.is(record.outputs.balancerUrl, 'http://127.0.0.1:8080');
  t.is(record.outputs.logsCommand, 'docker -H ssh://deploy@127.0.0.1:2202 exec cnp-dev-collector tail -n 100 -F /var/log/stack/all.log');
});

test("every container on every VM but the collector logs to it over TLS with its VM's client files, non-blocking, and is created after both", async (t) => {
  const record = await course;
  // The holders of secret files are created and never started: nothing to log.
  const containers = ofType(record, T.container).filter((c) => c.name !== 'vm2-collector-container' && c.inputs.start !== false);
  // Three agents, four hello replicas, one activity replica, the broker, the balancer (its holder and gateway).
  t.is(containers.length, 3 + 4 + 1 + 1 + 2);
  for (const c of containers) {
    const vm = c.name.split('-')[0];
    t.is(inputs(c).logDriver, 'syslog');
    // Every VM has a cnp-dev-consul: the VM's name in the tag keeps their logs apart. The balancer's gateway
    // logs under its holder's fixed name, whatever its version.
    const logName = c.name === 'vm1-balancer-gateway' ? 'cnp-dev-balancer' : inputs(c).name;
    // The whole set: no syslog-tls-skip-verify (the driver skips verification when that key is there at all).
    t.deepEqual(
      inputs(c).logOpts,
      {
        'syslog-address': 'tcp+tls://172.31.0.12:5514',
        'syslog-format': 'rfc5424',
        'syslog-tls-ca-cert': '/etc/cnp-dev-syslog-tls/ca.pem',
        'syslog-tls-cert': '/etc/cnp-dev-syslog-tls/client.pem',
        'syslog-tls-key': '/etc/cnp-dev-syslog-tls/client-key.pem',
        tag: `${vm}.${logName}`,
        mode: 'non-blocking',
      },
      c.name,
    );
    t.true(c.options.dependsOn.includes('vm2-collector-container'), c.name);
    t.true(c.options.dependsOn.includes(`${vm}-syslog-tls-files`), `${c.name} starts once its daemon's files are on ${vm}`);
  }
});

test("syslog between VMs: the collector listens with TLS only, its certificate for its private address; each VM's daemon gets a client certificate of the stack's CA in a root-only directory", async (t) => {
  const record = await course;
  const ca = splitPem(mockPem('consul-tls-ca'));
  // The collector's certificate: a server's, for vm2's private address, from the stack's one CA.
  const own = named(record, 'vm2-collector-tls');
  t.is(inputs(own).create, `${CONSUL_TLS_SCRIPT} agent`);
  t.deepEqual(inputs(own).environment, { CA_CERT: ca.cert, CA_KEY: ca.key, CN: 'collector', SANS: 'IP:172.31.0.12', EKU: 'serverAuth' });
  const collector = named(record, 'vm2-collector-container');
  t.like(env(collector), { COLLECTOR_SOURCE: '/etc/syslog-ng/collector/source-tls.conf', COLLECTOR_TLS_DIR: '/run/secrets' });
  t.regex(env(collector).SECRET_FILES_VERSION, /^[0-9a-f]{16}$/, 'new files replace it');
  t.true(collector.options.dependsOn.includes('vm2-collector-secrets-holder'), 'after its files are written');
  t.deepEqual((collector.inputs.volumes as { volumeName: string; containerPath: string; readOnly?: boolean }[])[1], {
    volumeName: 'cnp-dev-secrets-collector',
    containerPath: '/run/secrets',
    readOnly: true,
  });
  const holder = named(record, 'vm2-collector-secrets-holder');
  t.is(holder.inputs.name, 'cnp-dev-collector-secrets');
  t.is(holder.inputs.start, false);
  const uploads = holder.inputs.uploads as { file: string; content: string; permissions: string }[];
  t.deepEqual(
    uploads.map((u) => [u.file, u.content]),
    [
      ['/secrets/collector/ca.pem', ca.cert],
      ['/secrets/collector/collector.pem', splitPem(mockPem('vm2-collector-tls')).cert],
      ['/secrets/collector/collector-key.pem', splitPem(mockPem('vm2-collector-tls')).key],
    ],
  );
  t.false(
    ofType(record, T.container).some(
      (c) =>
        !['vm2-collector-container', 'vm2-collector-secrets-holder'].includes(c.name) &&
        JSON.stringify(c.inputs.volumes ?? []).includes('secrets-collector'),
    ),
    'only the collector mounts its files',
  );

  for (const [vm, address] of [
    ['vm1', '172.31.0.11'],
    ['vm2', '172.31.0.12'],
    ['vm3', '172.31.0.13'],
  ] as const) {
    const cert = named(record, `${vm}-syslog-tls`);
    t.deepEqual(inputs(cert).environment, {
      CA_CERT: ca.cert,
      CA_KEY: ca.key,
      CN: vm,
      SANS: `IP:${address}`,
      EKU: 'clientAuth',
    });
    t.true(cert.secretInputs.includes('environment'));
    const files = named(record, `${vm}-syslog-tls-files`);
    t.is(files.type, T.remote);
    t.is(files.options.parent, vm, "under the VM's host, so vm:forget takes it with the VM");
    t.deepEqual(inputs(files).connection, inputs(named(record, `${vm}-bootstrap`)).connection, "the bootstrap's SSH connection");
    t.true(files.options.dependencies.includes(`${vm}-bootstrap`));
    t.true(files.secretInputs.includes('stdin'), 'the key travels as a secret');
    t.true(files.options.deleteBeforeReplace);
    // As root (sudo -n for another user, as the bootstrap), the files on standard input.
    t.is(inputs(files).create, 'if [ "$(id -u)" = 0 ]; then sh -s; else sudo -n sh -s; fi');
    t.is(
      (files.inputs as { delete: string }).delete,
      `if [ "$(id -u)" = 0 ]; then rm -rf '/etc/cnp-dev-syslog-tls'; else sudo -n rm -rf '/etc/cnp-dev-syslog-tls'; fi`,
    );
    const script = inputs(files).stdin;
    t.true(script.startsWith("set -eu\numask 077\nmkdir -p '/etc/cnp-dev-syslog-tls'\nchmod 700 '/etc/cnp-dev-syslog-tls'\n"));
    for (const [file, content] of [
      ['ca.pem', ca.cert],
      ['client.pem', splitPem(mockPem(`${vm}-syslog-tls`)).cert],
      ['client-key.pem', splitPem(mockPem(`${vm}-syslog-tls`)).key],
    ])
      t.true(
        script.includes(
          `cat >'/etc/cnp-dev-syslog-tls/${file}.new' <<'CNP_FILE_END'\n${content.trim()}\nCNP_FILE_END\nmv -f '/etc/cnp-dev-syslog-tls/${file}.new' '/etc/cnp-dev-syslog-tls/${file}'\n`,
        ),
        `${vm}: ${file}`,
      );
  }
});

test('on one host the collector keeps plain TCP on loopback: no certificate, no TLS log option', async (t) => {
  const record = await recordStack({});
  t.false(record.resources.some((r) => /syslog-tls|collector-tls|collector-secrets/.test(r.name)));
  const replica = ofType(record, T.container).find((c) => c.name === 'replicas-1')!;
  t.is(inputs(replica).logOpts['syslog-address'], 'tcp://127.0.0.1:5514');
  t.false(Object.keys(inputs(replica).logOpts).some((key) => key.startsWith('syslog-tls')));
  t.false(JSON.stringify(named(record, 'collector-container').inputs).includes('COLLECTOR_SOURCE'), "the image's own plain listener");
});

test('images are built on the VM that runs them, for its CPU as its bootstrap reports it (x86_64 here)', async (t) => {
  const record = await course;
  t.deepEqual(
    ofType(record, T.image).map((i) => `${i.name} ${i.options.provider}`),
    [
      'vm2-collector-image vm2-docker',
      // Every VM's Consul agent runs the stack's Consul image (consul/Dockerfile), built there.
      'vm1-consul-image vm1-docker',
      'vm2-consul-image vm2-docker',
      'vm3-consul-image vm3-docker',
      'vm2-broker-image vm2-docker',
      'vm2-replicas-image vm2-docker',
      'vm3-replicas-image vm3-docker',
      'vm2-activity-image vm2-docker',
      // Every activity VM builds the image, even one with no activity replica yet (as replicas VMs do).
      'vm3-activity-image vm3-docker',
      'vm1-balancer-image vm1-docker',
    ],
  );
  for (const image of ofType(record, T.image)) {
    t.is(inputs(image).build.platform, 'linux/amd64', image.name);
    t.true(image.options.dependencies.includes(`${image.name.split('-')[0]}-bootstrap`), `${image.name} waits for its VM's report`);
  }
});

test('a VM reporting aarch64 gets linux/arm64 images, the others keep theirs', async (t) => {
  const record = await recordStack({ config: { vms: COURSE_VMS }, vmArchitectures: { vm3: 'aarch64', vm1: 'arm64' } });
  const platforms = ofType(record, T.image).map((i) => `${i.name} ${inputs(i).build.platform}`);
  t.deepEqual(platforms.sort(), [
    'vm1-balancer-image linux/arm64',
    'vm1-consul-image linux/arm64',
    'vm2-activity-image linux/amd64',
    'vm2-broker-image linux/amd64',
    'vm2-collector-image linux/amd64',
    'vm2-consul-image linux/amd64',
    'vm2-replicas-image linux/amd64',
    'vm3-activity-image linux/arm64',
    'vm3-consul-image linux/arm64',
    'vm3-replicas-image linux/arm64',
  ]);
});

test('a VM whose architecture the stack cannot serve stops the deployment before its images, naming it', async (t) => {
  // Known only once the bootstrap ran: the deployment fails there, and no image of that VM reaches the engine.
  const error = await t.throwsAsync<ProgramError>(recordStack({ config: { vms: COURSE_VMS }, vmArchitectures: { vm3: 'riscv64' } }));
  t.regex(
    error.message,
    /vm3's architecture \(uname -m, reported by its bootstrap\) = "riscv64" is not allowed: use a VM with one of x86_64/,
  );
  const images = error.resources.filter((r) => r.type === T.image);
  t.deepEqual(
    images.filter((i) => Object.keys(i.inputs).length === 0).map((i) => i.name),
    ['vm3-consul-image', 'vm3-replicas-image', 'vm3-activity-image'],
    "vm3's images are declared but never registered",
  );
  t.is(error.resources.find((r) => r.name === 'vm3-bootstrap')?.inputs.create, 'sh -s', 'the bootstrap itself was registered');

  // The rule itself, and the message as the CLI shows it.
  for (const [reported, shown] of [
    ['vm-bootstrap: docker info answers\nvm-bootstrap: architecture riscv64', 'riscv64'],
    ['vm-bootstrap: docker info answers', ''],
  ]) {
    const error = t.throws(() => imagePlatform('vm3', reported));
    t.is(
      error.message,
      `vm3's architecture (uname -m, reported by its bootstrap) = ${JSON.stringify(shown)} is not allowed: use a VM with one of ` +
        'x86_64 (linux/amd64), amd64 (linux/amd64), aarch64 (linux/arm64), arm64 (linux/arm64)',
    );
  }
  t.is(imagePlatform('vm1', 'vm-bootstrap: engine running\nvm-bootstrap: architecture x86_64\n'), 'linux/amd64');
});

test('the bootstrap script tells Debian from the RHEL family by /etc/os-release', (t) => {
  const detect = (osRelease: string) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-os-release-'));
    const file = path.join(dir, 'os-release');
    fs.writeFileSync(file, osRelease);
    try {
      return execFileSync('sh', [BOOTSTRAP_SCRIPT_PATH, 'detect'], { env: { ...process.env, CNP_OS_RELEASE: file } })
        .toString()
        .trim();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
  t.is(detect('ID=debian\n'), 'debian');
  t.is(detect('ID=ubuntu\nID_LIKE=debian\n'), 'debian');
  t.is(detect('ID="centos"\nID_LIKE="rhel fedora"\n'), 'rhel');
  t.is(detect('ID="rocky"\nID_LIKE="rhel centos fedora"\n'), 'rhel');
  t.is(detect('ID=alpine\n'), 'unsupported');
});

test('three discovery VMs run three servers with bootstrap-expect 3, every agent joining all three (IPv6 in brackets)', async (t) => {
  const vms = [
    { ...COURSE_VMS[0], roles: ['discovery', 'balancer'] },
    { ...COURSE_VMS[1], roles: ['discovery', 'collector', 'replicas', 'broker'] },
    { ...COURSE_VMS[2], privateAddress: 'fd00::13', roles: ['discovery', 'replicas'] },
    { name: 'vm4', ssh: { host: '127.0.0.1', port: 2204, user: 'root' }, privateAddress: '172.31.0.14', roles: ['replicas', 'activity'] },
  ];
  const record = await recordStack({ config: { vms, replicas: 3 } });
  for (const vm of ['vm1', 'vm2', 'vm3', 'vm4']) {
    const command = inputs(named(record, `${vm}-consul-agent`)).command;
    t.is(command.includes('-server') && command.includes('-bootstrap-expect=3'), vm !== 'vm4', vm);
    t.deepEqual(
      command.filter((a) => a.startsWith('-retry-join=')),
      ['-retry-join=172.31.0.11', '-retry-join=172.31.0.12', '-retry-join=[fd00::13]'],
    );
  }
  t.like(env(named(record, 'vm3-replicas-2')), { HOST: 'fd00::13' });
  t.is(inputs(named(record, 'vm2-collector-container')).ports![0].ip, '172.31.0.12');
});

test("Consul's RPC between VMs is TLS both ways: one CA made once, a certificate per agent for its private address, the files in its secrets", async (t) => {
  const record = await recordStack({ config: { vms: COURSE_VMS, consulImage: 'cnp-consul:1.8.7' } });
  const ca = named(record, 'consul-tls-ca');
  t.is(inputs(ca).create, `${CONSUL_TLS_SCRIPT} ca`);
  t.false('triggers' in ca.inputs, 'made once');
  for (const [vm, address, server] of [
    ['vm1', '172.31.0.11', true],
    ['vm2', '172.31.0.12', false],
    ['vm3', '172.31.0.13', false],
  ] as const) {
    const step = named(record, `${vm}-consul-tls`);
    t.is(inputs(step).create, `${CONSUL_TLS_SCRIPT} agent`);
    t.like(inputs(step).environment, {
      CA_CERT: splitPem(mockPem('consul-tls-ca')).cert,
      CA_KEY: splitPem(mockPem('consul-tls-ca')).key,
      CN: server ? 'server.dc1.consul' : 'client.dc1.consul',
      SANS: `${server ? 'DNS:server.dc1.consul,' : ''}DNS:localhost,IP:${address},IP:127.0.0.1`,
    });
    t.true(step.secretInputs.includes('environment'), 'the CA key is a secret input');
    const uploads = named(record, `${vm}-consul-secrets-holder`).inputs.uploads as { file: string; content: string }[];
    const file = (name: string) => uploads.find((u) => u.file === `/secrets/consul/${name}`)?.content;
    t.is(file('ca.pem'), splitPem(mockPem('consul-tls-ca')).cert);
    t.is(file('agent.pem'), splitPem(mockPem(`${vm}-consul-tls`)).cert);
    t.is(file('agent-key.pem'), splitPem(mockPem(`${vm}-consul-tls`)).key);
    // Consul 1.8.7: the top-level keys (the `tls` block is 1.12's).
    t.regex(
      file('agent.hcl')!,
      /\nca_file = "\/run\/secrets\/ca.pem" cert_file = "\/run\/secrets\/agent.pem" key_file = "\/run\/secrets\/agent-key.pem" verify_incoming_rpc = true verify_outgoing = true verify_server_hostname = true enable_agent_tls_for_checks = true\n$/,
    );
  }
});

test('the gateway reaches replicas on VMs over verified TLS: per replicas VM a certificate of the stack CA naming both services, its node and address; the balancer trusts the CA; its admin listener is HTTPS', async (t) => {
  const record = await recordStack({ config: { vms: COURSE_VMS, replicas: 4 } });
  for (const [vm, address] of [
    ['vm2', '172.31.0.12'],
    ['vm3', '172.31.0.13'],
  ] as const) {
    const step = named(record, `${vm}-replica-tls`);
    t.is(inputs(step).create, `${CONSUL_TLS_SCRIPT} agent`);
    t.like(inputs(step).environment, {
      CA_CERT: splitPem(mockPem('consul-tls-ca')).cert,
      CN: 'hello.service.consul',
      SANS: `DNS:hello.service.consul,DNS:activity.service.consul,DNS:${vm},IP:${address}`,
    });
    const uploads = named(record, `${vm}-consul-secrets-holder`).inputs.uploads as { file: string; content: string }[];
    for (const role of ['replica', 'activity']) {
      const file = (name: string) => uploads.find((u) => u.file === `/secrets/${role}/${name}`)?.content;
      t.is(file('tls-cert.pem'), splitPem(mockPem(`${vm}-replica-tls`)).cert, `${vm} ${role}`);
      t.is(file('tls-key.pem'), splitPem(mockPem(`${vm}-replica-tls`)).key, `${vm} ${role}`);
    }
    const replica = record.resources.find((r) => r.type === 'docker:index/container:Container' && r.name.startsWith(`${vm}-replicas-`))!;
    t.like(env(replica), { TLS_CERT_FILE: '/run/secrets/tls-cert.pem', TLS_KEY_FILE: '/run/secrets/tls-key.pem' });
  }
  t.false(
    record.resources.some((r) => r.name === 'vm1-replica-tls'),
    'vm1 runs no replica',
  );
  t.is(env(named(record, 'vm1-balancer-gateway')).UPSTREAM_CA_FILE, '/run/secrets/upstream-ca.pem');
  // Its admin listener faces the private network too: HTTPS with a certificate of the same CA.
  t.like(inputs(named(record, 'vm1-admin-tls')).environment, { CN: '172.31.0.11', SANS: 'IP:172.31.0.11,IP:127.0.0.1,DNS:localhost' });
  t.like(env(named(record, 'vm1-balancer-gateway')), {
    ADMIN_TLS_CERT_FILE: '/run/secrets/admin-cert.pem',
    ADMIN_TLS_KEY_FILE: '/run/secrets/admin-key.pem',
  });
  t.is(record.outputs.balancerAdminUrl, 'https://172.31.0.11:8081');
  t.is(record.outputs.internalCaCertificate, splitPem(mockPem('consul-tls-ca')).cert);
  const balancerFiles = named(record, 'vm1-consul-secrets-holder').inputs.uploads as { file: string; content: string }[];
  t.is(balancerFiles.find((u) => u.file === '/secrets/balancer/upstream-ca.pem')?.content, splitPem(mockPem('consul-tls-ca')).cert);
  // One host: none of it.
  const oneHost = await recordStack({});
  t.false(oneHost.resources.some((r) => r.name.endsWith('replica-tls')));
  t.false('UPSTREAM_CA_FILE' in env(named(oneHost, 'balancer-gateway')));
  t.false('ADMIN_TLS_CERT_FILE' in env(named(oneHost, 'balancer-gateway')));
  t.is(oneHost.outputs.internalCaCertificate, '');
});

test('the broker on a VM speaks TLS with a certificate of the stack CA; the replicas verify it with the CA (NATS_CA_FILE); routes too with three brokers', async (t) => {
  const record = await recordStack({ config: { vms: COURSE_VMS, replicas: 4 } });
  const step = named(record, 'vm2-broker-tls');
  t.like(inputs(step).environment, { CN: '172.31.0.12', SANS: 'IP:172.31.0.12,IP:127.0.0.1,DNS:localhost' });
  const broker = named(record, 'vm2-broker-container');
  t.true(inputs(broker).command.includes('--config=/run/secrets/nats.conf'));
  t.true(JSON.stringify(broker.inputs.volumes).includes('cnp-dev-secrets-broker'), 'its secret files are mounted');
  const uploads = named(record, 'vm2-consul-secrets-holder').inputs.uploads as { file: string; content: string }[];
  const file = (name: string) => uploads.find((u) => u.file === name)?.content;
  t.regex(file('/secrets/broker/nats.conf')!, /\ntls \{\n {2}cert_file: "\/run\/secrets\/tls-cert.pem"/);
  t.notRegex(file('/secrets/broker/nats.conf')!, /cluster \{/, 'one broker: no routes');
  t.is(file('/secrets/broker/tls-cert.pem'), splitPem(mockPem('vm2-broker-tls')).cert);
  t.is(file('/secrets/replica/nats-ca.pem'), splitPem(mockPem('consul-tls-ca')).cert);
  for (const vm of ['vm2', 'vm3']) {
    const replica = record.resources.find((r) => r.type === 'docker:index/container:Container' && r.name.startsWith(`${vm}-replicas-`))!;
    t.is(env(replica).NATS_CA_FILE, '/run/secrets/nats-ca.pem');
  }
  t.regex(brokerTlsConfig(REPO_ROOT, '/run/secrets', true), /cluster \{\n.*\n {2}tls \{\n(.*\n){4} {4}verify: true\n/);
  // One host: plain NATS on the stack network.
  const oneHost = await recordStack({});
  t.false(oneHost.resources.some((r) => r.name.endsWith('broker-tls')));
  t.true(inputs(named(oneHost, 'broker-container')).command.includes('--config=/etc/cnp/nats-server.conf'));
});

test('on one host Consul has no TLS: its RPC stays inside one engine', async (t) => {
  const record = await recordStack({});
  t.false(record.resources.some((r) => r.name.includes('consul-tls')));
  const uploads = named(record, 'consul-secrets-holder').inputs.uploads as { file: string; content: string }[];
  t.false(uploads.some((u) => u.file.endsWith('.pem')));
});

test('the TLS settings follow the image: top-level keys before 1.12, the tls block from 1.12 and for a tag naming no version', (t) => {
  t.regex(
    agentTlsHcl({ major: 1, minor: 8 }),
    /^ca_file = .* verify_incoming_rpc = true verify_outgoing = true verify_server_hostname = true enable_agent_tls_for_checks = true$/,
  );
  for (const version of [{ major: 1, minor: 12 }, { major: 1, minor: 20 }, undefined]) {
    t.regex(
      agentTlsHcl(version),
      /^tls \{ defaults \{ ca_file = .* verify_outgoing = true \} internal_rpc \{ verify_incoming = true verify_server_hostname = true \} \} enable_agent_tls_for_checks = true$/,
    );
  }
  t.deepEqual(
    splitPem(
      'x\n-----BEGIN CERTIFICATE-----\nc\n-----END CERTIFICATE-----\n-----BEGIN EC PRIVATE KEY-----\nk\n-----END EC PRIVATE KEY-----\n',
    ),
    {
      cert: '-----BEGIN CERTIFICATE-----\nc\n-----END CERTIFICATE-----\n',
      key: '-----BEGIN EC PRIVATE KEY-----\nk\n-----END EC PRIVATE KEY-----\n',
    },
  );
});
