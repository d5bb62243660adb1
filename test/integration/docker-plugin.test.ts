// The docker provider stand-in (harness/plugins/docker/) under the REAL Pulumi engine: the CLI built into
// .tools/pulumi/bin runs a scratch TypeScript program (a network, a volume, an image built from the offline
// base, a container using all three) with harness/plugins/bin first on PATH, so pulumi-resource-docker is
// the stand-in. Each step is what a user does: up, change an env (replaced, new before old), change the
// memory (updated in place), stop the container by hand then refresh and up (the same container starts
// again), destroy (nothing of the test's is left). Every object carries the test's own prefix.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { docker, inspect, run } from '../../harness/plugins/docker/cli';
import { hostPlatform } from '../../harness/plugins/docker/plans';
import { REPO_ROOT } from '../helpers/record-stack';
import { BASE_IMAGE } from '../helpers/images';

const PULUMI_BIN = path.join(REPO_ROOT, '.tools', 'pulumi', 'bin');
const PLUGIN_BIN = path.join(REPO_ROOT, 'harness', 'plugins', 'bin');
const PREFIX = `dpt${process.pid}x${crypto.randomBytes(3).toString('hex')}`;
const IMAGE_NAME = `${PREFIX}-img:latest`;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-docker-plugin-'));
const programDir = path.join(work, 'program');
/** An `ssh` first on the CLI's PATH that records its arguments and connects nowhere (exit 255, as a failed ssh). */
const fakeSshDir = path.join(work, 'fake-ssh');
const sshLog = path.join(work, 'ssh-args.log');

const PROGRAM = `import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';

const config = new pulumi.Config();
const prefix = config.require('prefix');
const labels = [{ label: 'cnp.test', value: prefix }];
const network = new docker.Network('net', { name: \`\${prefix}-net\`, driver: 'bridge', labels });
const volume = new docker.Volume('data', { name: \`\${prefix}-data\`, labels });
const image = new docker.Image('img', { imageName: \`\${prefix}-img:latest\`, build: { context: 'app' }, skipPush: true });
const memory = config.requireNumber('memory');
// No name: the provider auto-names it, so a replacement can be created before the old copy goes.
const box = new docker.Container('box', {
  image: image.repoDigest,
  command: ['sleep', 'infinity'],
  envs: [\`GREETING=\${config.require('greeting')}\`],
  memory,
  memorySwap: memory,
  labels,
  networksAdvanced: [{ name: network.name }],
  volumes: [{ volumeName: volume.name, containerPath: '/data' }],
  destroyGraceSeconds: 1,
  // An input the stand-in does not support, only when the test asks for it.
  ...(config.getBoolean('privileged') ? { privileged: true } : {}),
});

// A container that never becomes healthy, only when the test asks for it.
if (config.getBoolean('sick')) {
  new docker.Container('sick', {
    image: image.repoDigest,
    command: ['sleep', 'infinity'],
    labels,
    healthcheck: { tests: ['CMD', 'false'], interval: '1s', retries: 1 },
    wait: true,
    waitTimeout: 3,
  });
}

// An engine on an ssh:// host, as the program's VMs have: reached through the local ssh with sshOpts first.
const sshHost = config.get('sshHost');
if (sshHost) {
  const remote = new docker.Provider('remote', { host: sshHost, sshOpts: ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=2'] });
  new docker.Network('remote-net', { name: \`\${prefix}-remote\`, labels }, { provider: remote });
}
// Files uploaded into a holder that is created and never started, read by a read-only container from the
// holder's volume (the stack's secret files, infra/secret-files.ts), only when the test asks for it.
const secret = config.getSecret('secret');
if (secret) {
  const files = new docker.Volume('files', { name: \`\${prefix}-files\`, labels });
  const holder = new docker.Container('holder', {
    image: image.repoDigest,
    labels,
    start: false,
    mustRun: false,
    volumes: [{ volumeName: files.name, containerPath: '/files' }],
    uploads: [{ file: '/files/role/token', content: secret, permissions: '0444' }],
  });
  new docker.Container('reader', {
    image: image.repoDigest,
    command: ['sleep', 'infinity'],
    labels,
    readOnly: true,
    volumes: [{ volumeName: files.name, containerPath: '/run/secrets', readOnly: true }],
    envs: [pulumi.interpolate\`HOLDER=\${holder.id}\`],
    destroyGraceSeconds: 1,
    // Uploaded into itself, only when the test asks: Docker refuses a copy into a read-only root.
    ...(config.getBoolean('uploadIntoReadOnly') ? { uploads: [{ file: '/run/secrets/more', content: 'x' }] } : {}),
  });
}
export const containerId = box.id;
export const repoDigest = image.repoDigest;
`;

function writeProgram(): void {
  fs.mkdirSync(path.join(programDir, 'app'), { recursive: true });
  fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(programDir, 'node_modules'));
  fs.writeFileSync(
    path.join(programDir, 'Pulumi.yaml'),
    'name: dockerplugin\nruntime:\n  name: nodejs\n  options:\n    typescript: true\n',
  );
  fs.writeFileSync(path.join(programDir, 'package.json'), JSON.stringify({ name: 'dockerplugin', main: 'index.ts' }));
  const { compilerOptions } = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'tsconfig.json'), 'utf8')) as {
    compilerOptions: Record<string, unknown>;
  };
  fs.writeFileSync(path.join(programDir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['index.ts'] }));
  fs.writeFileSync(path.join(programDir, 'index.ts'), PROGRAM);
  fs.writeFileSync(path.join(programDir, 'app', 'Dockerfile'), `FROM ${BASE_IMAGE}\nCOPY hello.txt /hello.txt\n`);
  fs.writeFileSync(path.join(programDir, 'app', 'hello.txt'), 'hello\n');
  fs.mkdirSync(fakeSshDir);
  fs.writeFileSync(path.join(fakeSshDir, 'ssh'), `#!/bin/sh\nprintf '%s\\n' "$@" >> '${sshLog}'\nexit 255\n`, { mode: 0o755 });
}

/** The real CLI, offline, with its own state and home in the test's folder and the stand-ins first on PATH. */
function pulumi(...args: string[]): Promise<string> {
  return run(path.join(PULUMI_BIN, 'pulumi'), [...args, '--non-interactive'], {
    cwd: programDir,
    timeoutMs: 120_000,
    env: {
      ...process.env,
      PATH: [fakeSshDir, PLUGIN_BIN, PULUMI_BIN, process.env.PATH ?? ''].join(path.delimiter),
      PULUMI_SKIP_UPDATE_CHECK: 'true',
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: 'true',
      PULUMI_BACKEND_URL: `file://${work}`,
      PULUMI_HOME: path.join(work, 'home'),
      PULUMI_CONFIG_PASSPHRASE: 'x',
    },
  });
}

/** Every image id the stack reported: the provider never deletes images, so the test removes them. */
const builtImages = new Set<string>();
async function reportedImage(): Promise<string> {
  const id = JSON.parse(await pulumi('stack', 'output', 'repoDigest', '--json')) as string;
  builtImages.add(id);
  return id;
}
const containerId = async () => JSON.parse(await pulumi('stack', 'output', 'containerId', '--json')) as string;
const testContainers = async () =>
  (await docker(['ps', '-a', '--filter', `label=cnp.test=${PREFIX}`, '--format', '{{.ID}}'])).split('\n').filter(Boolean);

/** The state's resource of a type, as `pulumi stack export` shows it. */
interface StateResource {
  urn: string;
  type: string;
  initErrors?: string[];
  id: string;
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown>;
}
async function stateOf(type: string, name?: string): Promise<StateResource | undefined> {
  const exported = JSON.parse(await pulumi('stack', 'export')) as { deployment: { resources: StateResource[] } };
  return exported.deployment.resources.find((r) => r.type === type && (name === undefined || r.urn.endsWith(`::${name}`)));
}

test.before(async () => {
  if (!fs.existsSync(path.join(PULUMI_BIN, 'pulumi-language-nodejs'))) {
    throw new Error(`no Pulumi CLI and language host in ${PULUMI_BIN}: build them with bash scripts/pulumi-tools.sh`);
  }
  // The offline base image: built once (about a minute cold), a no-op when current.
  await run('bash', [path.join(REPO_ROOT, 'scripts', 'images.sh')], { timeoutMs: 600_000 });
  writeProgram();
  await pulumi('stack', 'init', 'test');
  await pulumi('config', 'set', 'prefix', PREFIX);
  await pulumi('config', 'set', 'greeting', 'hello');
  await pulumi('config', 'set', 'memory', '64');
});

test.after.always(async () => {
  try {
    await pulumi('destroy', '--yes');
  } catch {
    // whatever the engine could not remove goes below
  }
  const removals = [
    ...(await testContainers()).map((id) => ['rm', '-f', '-v', id]),
    ['network', 'rm', `${PREFIX}-net`],
    ['volume', 'rm', `${PREFIX}-data`],
    ['volume', 'rm', `${PREFIX}-files`],
    ['image', 'rm', IMAGE_NAME],
    ...[...builtImages].map((id) => ['image', 'rm', id]),
  ];
  for (const args of removals) await docker(args).catch(() => undefined);
  fs.rmSync(work, { recursive: true, force: true });
});

test.serial('pulumi up creates the network, the volume, the image and a running container using them', async (t) => {
  await pulumi('up', '--yes');
  const id = await containerId();
  const container = (await inspect('container', id))!;
  t.true(container.State.Running);
  t.deepEqual(Object.keys(container.NetworkSettings.Networks ?? {}), [`${PREFIX}-net`]);
  t.deepEqual(
    container.Mounts.map((m) => m.Name),
    [`${PREFIX}-data`],
  );
  t.truthy(await inspect('volume', `${PREFIX}-data`));
  const repoDigest = await reportedImage();
  t.regex(repoDigest, /^sha256:[0-9a-f]{64}$/);
  t.is((await inspect('image', IMAGE_NAME))?.Id, repoDigest, 'repoDigest is the local image id');
  const image = await stateOf('docker:index/image:Image');
  t.is(image?.id, IMAGE_NAME);
  t.like(image?.inputs, { build: { platform: hostPlatform() } }, "Check filled in the machine's platform");
});

test.serial('a changed env replaces the container: a new one is created before the old one is deleted', async (t) => {
  const before = await containerId();
  await pulumi('config', 'set', 'greeting', 'bye');
  const output = await pulumi('up', '--yes');
  const after = await containerId();
  t.not(after, before);
  t.is(await inspect('container', before), undefined);
  t.true((await inspect('container', after))!.Config.Env?.includes('GREETING=bye'));
  const created = output.indexOf('created replacement');
  t.true(created >= 0 && created < output.indexOf('deleted original'), output);
});

test.serial('a changed file of the build context rebuilds the image under the same resource, and replaces its container', async (t) => {
  const digest = await reportedImage();
  const before = await containerId();
  fs.writeFileSync(path.join(programDir, 'app', 'hello.txt'), 'hello again\n');
  const output = await pulumi('up', '--yes');
  t.regex(output, /docker:index:Image img updated/);
  const rebuilt = await reportedImage();
  t.not(rebuilt, digest);
  t.is((await inspect('image', IMAGE_NAME))?.Id, rebuilt);
  t.not(await containerId(), before);
});

test.serial('a changed memory is updated in place: the same container', async (t) => {
  const before = await containerId();
  await pulumi('config', 'set', 'memory', '96');
  await pulumi('up', '--yes');
  t.is(await containerId(), before);
  const container = (await inspect('container', before))!;
  t.is(container.HostConfig.Memory, 96 * 1024 * 1024);
  t.true(container.State.Running);
});

test.serial('a container stopped by hand: refresh sets mustRun false, and up starts the same container', async (t) => {
  const id = await containerId();
  await docker(['stop', '-t', '0', id]);
  await pulumi('refresh', '--yes');
  t.like((await stateOf('docker:index/container:Container', 'box'))?.outputs, { mustRun: false });
  await pulumi('up', '--yes');
  t.is(await containerId(), id);
  t.true((await inspect('container', id))!.State.Running);
});

test.serial('a container removed by hand leaves the state at refresh, and up creates it again', async (t) => {
  const id = await containerId();
  await docker(['rm', '-f', id]);
  await pulumi('refresh', '--yes');
  t.is(await stateOf('docker:index/container:Container', 'box'), undefined, 'refresh dropped it');
  await pulumi('up', '--yes');
  const again = await containerId();
  t.not(again, id);
  t.true((await inspect('container', again))!.State.Running);
});

test.serial('a container that does not become healthy within waitTimeout stays in the state with an initialization error', async (t) => {
  await pulumi('config', 'set', 'sick', 'true');
  try {
    const error = await t.throwsAsync(pulumi('up', '--yes'));
    t.regex(error.message, /failed to be in healthy state within 3 s/);
    const sick = await stateOf('docker:index/container:Container', 'sick');
    t.deepEqual(sick?.initErrors?.length, 1);
    t.truthy(await inspect('container', sick!.id), 'the container is kept');
  } finally {
    await pulumi('config', 'rm', 'sick');
  }
  await pulumi('up', '--yes');
  t.is(await stateOf('docker:index/container:Container', 'sick'), undefined);
});

test.serial('an input the stand-in does not support fails the preview, named', async (t) => {
  await pulumi('config', 'set', 'privileged', 'true');
  try {
    const error = await t.throwsAsync(pulumi('preview'));
    t.regex(error.message, /does not support docker:Container input "privileged"/);
  } finally {
    await pulumi('config', 'rm', 'privileged');
  }
});

test.serial("on an ssh:// host the docker CLI goes through the local ssh, with the provider's sshOpts first", async (t) => {
  await pulumi('config', 'set', 'sshHost', 'ssh://deploy@127.0.0.1:2222');
  try {
    await t.throwsAsync(pulumi('up', '--yes'));
  } finally {
    await pulumi('config', 'rm', 'sshHost');
  }
  const args = fs.readFileSync(sshLog, 'utf8').split('\n').filter(Boolean);
  t.log(`ssh ${args.join(' ')}`);
  t.deepEqual(args.slice(0, 4), ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=2']);
  t.deepEqual(args.slice(args.indexOf('--') - 4, args.indexOf('--') + 2), ['-l', 'deploy', '-p', '2222', '--', '127.0.0.1']);
});

test.serial(
  'uploads go into a created container before it would start: a holder never started fills a volume a read-only container reads; a read-only container of its own is refused',
  async (t) => {
    const marker = `token-${crypto.randomBytes(8).toString('hex')}`;
    await run(path.join(PULUMI_BIN, 'pulumi'), ['config', 'set', '--secret', 'secret', marker, '--non-interactive'], {
      cwd: programDir,
      env: { ...process.env, PULUMI_BACKEND_URL: `file://${work}`, PULUMI_HOME: path.join(work, 'home'), PULUMI_CONFIG_PASSPHRASE: 'x' },
    });
    t.teardown(() =>
      pulumi('config', 'rm', 'secret')
        .then(() => pulumi('up', '--yes'))
        .catch(() => undefined),
    );
    await pulumi('up', '--yes');
    const holder = (await stateOf('docker:index/container:Container', 'holder'))!;
    const reader = (await stateOf('docker:index/container:Container', 'reader'))!;
    t.is((await inspect('container', holder.id))!.State.Status, 'created', 'the holder never ran');
    t.is((await docker(['exec', reader.id, 'cat', '/run/secrets/role/token'])).trim(), marker);
    t.is(
      (await docker(['exec', reader.id, 'stat', '-c', '%a %u:%g', '/run/secrets/role/token'])).trim(),
      '444 0:0',
      'mode 0444, owned by root',
    );
    for (const id of [holder.id, reader.id])
      t.false(JSON.stringify(await inspect('container', id)).includes(marker), 'not in docker inspect');
    // A second up changes nothing: the never-started holder stays as it is.
    t.regex(await pulumi('preview', '--diff'), /unchanged/);

    await pulumi('config', 'set', 'uploadIntoReadOnly', 'true');
    t.teardown(() => pulumi('config', 'rm', 'uploadIntoReadOnly').catch(() => undefined));
    const refused = await t.throwsAsync(pulumi('up', '--yes'));
    t.regex(refused.message, /read-only/);
    await pulumi('config', 'rm', 'uploadIntoReadOnly');
  },
);

test.serial("pulumi destroy leaves no container, network or volume of the test's", async (t) => {
  await pulumi('destroy', '--yes');
  t.deepEqual(await testContainers(), []);
  t.is(await inspect('network', `${PREFIX}-net`), undefined);
  t.is(await inspect('volume', `${PREFIX}-data`), undefined);
});
