// The docker provider stand-in's table (harness/plugins/docker/inputs.ts) against the real program: every
// docker input the program declares, on one host and on VMs, passes the stand-in's Check; an input the
// table does not know is refused by name; the diff is the table's.
import test from 'ava';
import { CONTAINER, IMAGE, INPUT_RULES, NETWORK, PROVIDER_CONFIG_RULES, VOLUME } from '../../harness/plugins/docker/inputs';
import { hostPlatform } from '../../harness/plugins/docker/plans';
import { dockerStandIn } from '../../harness/plugins/docker/provider';
import { recordStack, REPO_ROOT, type RecordedResource } from '../helpers/record-stack';

const provider = dockerStandIn(REPO_ROOT);
const SSH_KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n';
const ONE_VM = [
  {
    name: 'vm1',
    ssh: { host: '127.0.0.1', port: 2201, user: 'root' },
    privateAddress: '172.31.0.11',
    roles: ['discovery', 'balancer', 'collector', 'replicas', 'broker', 'activity'],
  },
];

const records = Promise.all([recordStack(), recordStack({ config: { vms: ONE_VM }, secrets: { sshPrivateKey: SSH_KEY } })]);

async function check(resource: RecordedResource) {
  if (resource.type === 'pulumi:providers:docker') return provider.checkConfig(resource.inputs);
  return provider.resources[resource.type].check(resource.inputs, {}, resource.name);
}

test('every docker input the program declares, on one host and on VMs, passes Check', async (t) => {
  const docker = (await records).flatMap((r) => r.resources).filter((r) => r.custom && r.type.startsWith('docker:'));
  const providers = (await records).flatMap((r) => r.resources).filter((r) => r.type === 'pulumi:providers:docker');
  t.deepEqual([...new Set(docker.map((r) => r.type))].sort(), [CONTAINER, IMAGE, NETWORK, VOLUME].sort());
  t.true(providers.some((p) => typeof p.inputs.host === 'string' && p.inputs.host.startsWith('ssh://') && p.inputs.sshOpts !== undefined));
  for (const resource of [...docker, ...providers]) {
    const { failures } = await check(resource);
    t.deepEqual(failures, [], `${resource.type} ${resource.name}`);
  }
});

test('an input the table does not know is refused in Check, by name', async (t) => {
  const declared = (await records)[0].resources;
  for (const type of [CONTAINER, IMAGE, NETWORK, VOLUME]) {
    const resource = declared.find((r) => r.type === type)!;
    const { failures } = await check({ ...resource, inputs: { ...resource.inputs, privileged: true } });
    t.is(failures.length, 1, type);
    t.is(failures[0].property, 'privileged');
    t.regex(failures[0].reason, /does not support docker:\w+ input "privileged"/);
  }
  t.deepEqual(
    provider.checkConfig({ host: 'ssh://root@h', certPath: '/c' }).failures.map((f) => f.property),
    ['certPath'],
  );
  // A known input with a value nothing applies is refused too, by the plan.
  const image = declared.find((r) => r.type === IMAGE)!;
  const { failures } = await check({ ...image, inputs: { ...image.inputs, skipPush: false } });
  t.regex(failures[0].reason, /skipPush=false/);
});

test('every rule names the provider source it is read from', (t) => {
  for (const rules of [...Object.values(INPUT_RULES), PROVIDER_CONFIG_RULES]) {
    for (const [input, rule] of Object.entries(rules)) t.regex(rule.source, /pulumi-docker v5|kreuzwerker.*v4\.5\.0|pulumi\/pulumi/, input);
  }
  t.regex(INPUT_RULES[CONTAINER].mustRun.onRefresh!, /false when the container is stopped/);
});

test("Check fills in an image's platform from the machine running it, and a container's mustRun and name", async (t) => {
  t.is(hostPlatform('x64'), 'linux/amd64');
  t.is(hostPlatform('arm64'), 'linux/arm64');
  const image = (await records)[0].resources.find((r) => r.type === IMAGE)!;
  const { inputs } = await check(image);
  t.like(inputs, { buildOnPreview: false, build: { platform: hostPlatform() } });
  t.regex((inputs.build as { contextDigest: string }).contextDigest, /^[0-9a-f]{64}$/);
  const checked = await provider.resources[CONTAINER].check({ image: 'sha256:a' }, {}, 'web');
  t.like(checked.inputs, { mustRun: true });
  t.regex(String(checked.inputs.name), /^web-[0-9a-f]{7}$/);
  const again = await provider.resources[CONTAINER].check({ image: 'sha256:b' }, checked.inputs, 'web');
  t.is(again.inputs.name, checked.inputs.name, 'an auto-name is kept while the container is');
});

test("an image's explicit platform (a VM's, from its bootstrap) is kept; another CPU's is refused, as this engine cannot build it", async (t) => {
  const vmImage = (await records)[1].resources.find((r) => r.type === IMAGE)!;
  t.like(vmImage.inputs, { build: { platform: 'linux/amd64' } }, 'the program sets it on a VM');
  const withPlatform = (platform: string) => ({
    ...vmImage,
    inputs: { ...vmImage.inputs, build: { ...(vmImage.inputs.build as object), platform } },
  });
  const kept = await check(withPlatform(hostPlatform()));
  t.deepEqual(kept.failures, []);
  t.like(kept.inputs, { build: { platform: hostPlatform() } });
  const other = hostPlatform() === 'linux/arm64' ? 'linux/amd64' : 'linux/arm64';
  const { failures } = await check(withPlatform(other));
  t.is(failures.length, 1);
  t.regex(failures[0].reason, /platform.*this engine builds for its own platform only/);
});

test('the diff follows the table: env replaces, memory updates in place, healthcheck is reported only, mustRun back to true updates', async (t) => {
  const diff = (olds: Record<string, unknown>, news: Record<string, unknown>) =>
    provider.resources[CONTAINER].diff('id', { image: 'i', mustRun: true, ...olds }, { image: 'i', mustRun: true, ...news });
  t.deepEqual(await diff({ envs: ['A=1'] }, { envs: ['A=2'] }), { changed: ['envs'], replaces: ['envs'] });
  t.deepEqual(await diff({ memory: 64 }, { memory: 96 }), { changed: ['memory'], replaces: [] });
  t.deepEqual(await diff({ healthcheck: { tests: ['CMD', 'a'] } }, { healthcheck: { tests: ['CMD', 'b'] } }), {
    changed: ['healthcheck'],
    replaces: [],
  });
  t.deepEqual(await diff({ mustRun: false }, {}), { changed: ['mustRun'], replaces: [] });
  t.deepEqual(await diff({ labels: [] }, {}), { changed: [], replaces: [] }, 'an empty list is no input');
  t.deepEqual(await provider.resources[NETWORK].diff('id', { name: 'n' }, { name: 'n', internal: true }), {
    changed: ['internal'],
    replaces: ['internal'],
  });
  t.deepEqual(await provider.resources[IMAGE].diff('id', { imageName: 'a' }, { imageName: 'b' }), { changed: ['imageName'], replaces: [] });
  // A provider's new host re-configures it; nothing it manages is replaced.
  t.deepEqual(provider.diffConfig({ host: 'ssh://root@a' }, { host: 'ssh://root@b', sshOpts: ['-p', '22'] }), {
    changed: ['host', 'sshOpts'],
    replaces: [],
  });
});
