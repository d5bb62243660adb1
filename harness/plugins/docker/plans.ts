// The docker inputs a Pulumi program declares, translated into the docker CLI calls that apply them: the
// docker provider stand-in (main.ts) runs them.
// Every input is read through DeclaredInputs (declared-inputs.ts), so a program cannot declare something that
// is silently ignored. Pure: no Docker here.
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DeclaredInputs, type Inputs } from './declared-inputs';
import { planUpload, type PlannedUpload } from './uploads';

/** Pulumi's default auto-name: the resource name plus a random suffix. */
export function autoName(resourceName: string): string {
  return `${resourceName}-${randomBytes(4).toString('hex').slice(0, 7)}`;
}

/** A shell word that /bin/sh reads back as exactly `word`. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A network or a volume: `docker <kind> create` with the name last. */
interface NamedObjectPlan<K extends 'network' | 'volume'> {
  kind: K;
  name: string;
  createArgs: string[];
}

export type NetworkPlan = NamedObjectPlan<'network'>;
export type VolumePlan = NamedObjectPlan<'volume'>;

/**
 * Shared by networks and volumes: name, driver, then the kind's own flags, labels and the driver options
 * (read from `optionsKey`), in that order.
 */
function planNamedObject<K extends 'network' | 'volume'>(
  kind: K,
  typeName: string,
  resourceName: string,
  values: Inputs,
  optionsKey: string,
  ownFlags: (d: DeclaredInputs) => string[] = () => [],
): NamedObjectPlan<K> {
  const d = new DeclaredInputs(values, `docker:${typeName} "${resourceName}"`);
  const name = d.get<string>('name') ?? autoName(resourceName);
  const args: string[] = [kind, 'create'];
  const driver = d.get<string>('driver');
  if (driver) args.push('--driver', driver);
  args.push(...ownFlags(d));
  for (const label of d.items('labels')) args.push('--label', labelArg(label));
  for (const [k, v] of Object.entries(d.get<Record<string, string>>(optionsKey) ?? {})) args.push('--opt', `${k}=${v}`);
  d.done();
  return { kind, name, createArgs: [...args, name] };
}

export function planNetwork(resourceName: string, values: Inputs): NetworkPlan {
  return planNamedObject('network', 'Network', resourceName, values, 'options', (d) => [
    ...(d.get<boolean>('internal') ? ['--internal'] : []),
    ...(d.get<boolean>('attachable') ? ['--attachable'] : []),
    ...d.items('ipamConfigs').flatMap((ipam) => {
      const flags: string[] = [];
      for (const [key, flag] of [
        ['subnet', '--subnet'],
        ['gateway', '--gateway'],
        ['ipRange', '--ip-range'],
      ]) {
        const value = ipam.get<string>(key);
        if (value) flags.push(flag, value);
      }
      ipam.done();
      return flags;
    }),
  ]);
}

export function planVolume(resourceName: string, values: Inputs): VolumePlan {
  return planNamedObject('volume', 'Volume', resourceName, values, 'driverOpts');
}

function labelArg(label: DeclaredInputs): string {
  const text = `${label.get<string>('label')}=${label.get<string>('value') ?? ''}`;
  label.done();
  return text;
}

export interface ImagePlan {
  kind: 'image';
  name: string;
  buildArgs: string[];
}

/** The platform of the machine running the provider, as Go names it (`linux/` + runtime.GOARCH). */
export function hostPlatform(arch: string = process.arch): string {
  const goArch: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm' };
  return `linux/${goArch[arch] ?? arch}`;
}

/** docker.Image: a local build tagged imageName, never pushed. Paths resolve as the provider resolves them. */
export function planImage(resourceName: string, values: Inputs, projectDir: string): ImagePlan {
  const d = new DeclaredInputs(values, `docker:Image "${resourceName}"`);
  const imageName = d.get<string>('imageName');
  if (!imageName) throw new Error(`docker:Image "${resourceName}" has no imageName`);
  d.expect('skipPush', true, 'nothing is pushed: there is no registry here');
  d.get('buildOnPreview'); // preview-only behaviour; the stand-in takes no previews
  const build = d.nested('build');
  if (!build) throw new Error(`docker:Image "${resourceName}" has no build; only local builds are supported`);
  // The provider resolves the context and an explicit dockerfile against the program's directory (v4.1+).
  const context = path.resolve(projectDir, build.get<string>('context') ?? '.');
  const dockerfileInput = build.get<string>('dockerfile');
  const dockerfile = dockerfileInput ? path.resolve(projectDir, dockerfileInput) : path.join(context, 'Dockerfile');
  const args = ['build', '--quiet', '-t', imageName, '-f', dockerfile];
  for (const [k, v] of Object.entries(build.get<Record<string, string>>('args') ?? {})) args.push('--build-arg', `${k}=${v}`);
  const target = build.get<string>('target');
  if (target) args.push('--target', target);
  build.get('contextDigest'); // the provider's hash of the context (Check fills it in): a changed context is a diff
  build.expect('platform', hostPlatform(), 'this engine builds for its own platform only');
  // This engine has no buildx; the classic builder produces the same image from these Dockerfiles.
  build.expect('builderVersion', 'BuilderV1', 'the engine here has no BuildKit client');
  build.done();
  d.expect('registry', undefined, 'no registry');
  d.done();
  return { kind: 'image', name: imageName, buildArgs: [...args, context] };
}

export interface ContainerPlan {
  kind: 'container';
  name: string;
  createArgs: string[];
  /** Networks after the first, connected before start (the docker CLI attaches one at create). */
  moreNetworks: Array<{ name: string; aliases: string[] }>;
  start: boolean;
  waitHealthySeconds?: number;
  destroyGraceSeconds?: number;
  removeVolumes: boolean;
  /** Files written into the created container before it starts (uploads.ts). */
  uploads: PlannedUpload[];
}

/**
 * docker.Container: every input the stack may use, as `docker create` flags. Memory is in MB, as in the
 * provider. `resolveImage` maps the image the program names (a build's declared id) to the engine's.
 */
export function planContainer(
  resourceName: string,
  values: Inputs,
  resolveImage: (declared: string) => string = (image) => image,
): ContainerPlan {
  const d = new DeclaredInputs(values, `docker:Container "${resourceName}"`);
  const name = d.get<string>('name') ?? autoName(resourceName);
  const declaredImage = d.get<string>('image');
  if (!declaredImage) throw new Error(`docker:Container "${resourceName}" has no image`);
  const image = resolveImage(declaredImage);
  const args = ['create', '--name', name];

  for (const env of d.get<string[]>('envs') ?? []) args.push('-e', env);
  for (const label of d.items('labels')) args.push('--label', labelArg(label));
  const hostname = d.get<string>('hostname');
  if (hostname) args.push('--hostname', hostname);
  const user = d.get<string>('user');
  if (user) args.push('--user', user);
  const workingDir = d.get<string>('workingDir');
  if (workingDir) args.push('--workdir', workingDir);
  if (d.get<boolean>('init')) args.push('--init');
  if (d.get<boolean>('readOnly')) args.push('--read-only');

  const restart = d.get<string>('restart');
  const maxRetry = d.get<number>('maxRetryCount');
  if (restart) args.push('--restart', restart === 'on-failure' && maxRetry ? `on-failure:${maxRetry}` : restart);
  else if (maxRetry) throw new Error(`${d.where} sets maxRetryCount without restart=on-failure`);

  const memory = d.get<number>('memory');
  if (memory) args.push('--memory', `${memory}m`);
  const memorySwap = d.get<number>('memorySwap');
  if (memorySwap) args.push('--memory-swap', memorySwap < 0 ? '-1' : `${memorySwap}m`);
  const memoryReservation = d.get<number>('memoryReservation');
  if (memoryReservation) args.push('--memory-reservation', `${memoryReservation}m`);
  const cpus = d.get<string>('cpus');
  if (cpus) args.push('--cpus', cpus);

  // Hardening: capabilities (drops, then adds, as `docker run` applies them), security options, ulimits.
  const capabilities = d.nested('capabilities');
  if (capabilities) {
    for (const cap of capabilities.get<string[]>('drops') ?? []) args.push('--cap-drop', cap);
    for (const cap of capabilities.get<string[]>('adds') ?? []) args.push('--cap-add', cap);
    capabilities.done();
  }
  for (const option of d.get<string[]>('securityOpts') ?? []) args.push('--security-opt', option);
  for (const limit of d.items('ulimits')) {
    const name = limit.get<string>('name');
    const soft = limit.get<number>('soft');
    const hard = limit.get<number>('hard');
    limit.done();
    if (!name || soft === undefined || hard === undefined) throw new Error(`${limit.where} needs name, soft and hard`);
    args.push('--ulimit', `${name}=${soft}:${hard}`);
  }

  const stopSignal = d.get<string>('stopSignal');
  if (stopSignal) args.push('--stop-signal', stopSignal);
  const stopTimeout = d.get<number>('stopTimeout');
  if (stopTimeout !== undefined) args.push('--stop-timeout', String(stopTimeout));

  for (const port of d.items('ports')) {
    const internal = port.get<number>('internal');
    const external = port.get<number>('external');
    const ip = port.get<string>('ip');
    const protocol = port.get<string>('protocol') ?? 'tcp';
    port.done();
    const host = ip ? `${ip.includes(':') ? `[${ip}]` : ip}:${external ?? ''}` : external !== undefined ? String(external) : '';
    args.push('-p', `${host ? `${host}:` : ''}${internal}/${protocol}`);
  }

  const networks = d.items('networksAdvanced').map((n) => {
    const net = { name: n.get<string>('name')!, aliases: n.get<string[]>('aliases') ?? [] };
    n.done();
    return net;
  });
  const networkMode = d.get<string>('networkMode');
  if (networkMode && networks.length > 0) throw new Error(`${d.where} sets both networkMode and networksAdvanced`);
  if (networkMode) args.push('--network', networkMode);
  for (const [k, v] of Object.entries(d.get<Record<string, string>>('sysctls') ?? {})) args.push('--sysctl', `${k}=${v}`);
  if (networks[0]) {
    args.push('--network', networks[0].name);
    for (const alias of networks[0].aliases) args.push('--network-alias', alias);
  }

  const health = d.nested('healthcheck');
  if (health) {
    const test = health.get<string[]>('tests') ?? [];
    if (test[0] === 'NONE') args.push('--no-healthcheck');
    else if (test[0] === 'CMD-SHELL') args.push('--health-cmd', test.slice(1).join(' '));
    // The CLI takes a shell string only: an exec-form test becomes the same words, shell-quoted.
    else if (test[0] === 'CMD') args.push('--health-cmd', test.slice(1).map(shellQuote).join(' '));
    else throw new Error(`${health.where}.tests must start with CMD, CMD-SHELL or NONE, got ${JSON.stringify(test)}`);
    const flags: Array<[string, string]> = [
      ['interval', '--health-interval'],
      ['timeout', '--health-timeout'],
      ['startPeriod', '--health-start-period'],
      ['startInterval', '--health-start-interval'],
    ];
    for (const [key, flag] of flags) {
      const value = health.get<string>(key);
      if (value) args.push(flag, value);
    }
    const retries = health.get<number>('retries');
    if (retries !== undefined) args.push('--health-retries', String(retries));
    health.done();
  }

  const logDriver = d.get<string>('logDriver');
  if (logDriver) args.push('--log-driver', logDriver);
  for (const [k, v] of Object.entries(d.get<Record<string, string>>('logOpts') ?? {})) args.push('--log-opt', `${k}=${v}`);

  for (const v of d.items('volumes')) {
    const source = v.get<string>('volumeName') ?? v.get<string>('hostPath');
    const target = v.get<string>('containerPath');
    const ro = v.get<boolean>('readOnly');
    const from = v.get<string>('fromContainer');
    v.done();
    if (from) args.push('--volumes-from', from);
    else if (!target) throw new Error(`${v.where} has no containerPath`);
    else args.push('-v', `${source ? `${source}:` : ''}${target}${ro ? ':ro' : ''}`);
  }
  for (const m of d.items('mounts')) {
    const parts = [`type=${m.get<string>('type')}`, `target=${m.get<string>('target')}`];
    const source = m.get<string>('source');
    if (source) parts.push(`source=${source}`);
    if (m.get<boolean>('readOnly')) parts.push('readonly');
    m.done();
    args.push('--mount', parts.join(','));
  }
  for (const [mountPath, options] of Object.entries(d.get<Record<string, string>>('tmpfs') ?? {})) {
    args.push('--tmpfs', options ? `${mountPath}:${options}` : mountPath);
  }

  const entrypoint = d.get<string[]>('entrypoints');
  const command = d.get<string[]>('command') ?? [];
  // `--entrypoint` takes one word; the rest of an exec-form entrypoint goes first in the arguments.
  if (entrypoint) args.push('--entrypoint', entrypoint[0], image, ...entrypoint.slice(1), ...command);
  else args.push(image, ...command);

  const start = d.get<boolean>('start') ?? true;
  // A container that is never started (a holder of uploaded files) declares mustRun false with start false.
  d.expect('mustRun', start, 'a created container is expected to run, unless it is never started');
  d.expect('attach', false, 'containers run detached');
  d.expect('rm', false, 'the stack removes containers itself');
  d.expect('logs', false, 'no log capture at create');
  const wait = d.get<boolean>('wait');
  const waitTimeout = d.get<number>('waitTimeout');
  const plan: ContainerPlan = {
    kind: 'container',
    name,
    createArgs: args,
    moreNetworks: networks.slice(1),
    start,
    waitHealthySeconds: wait ? (waitTimeout ?? 60) : undefined,
    destroyGraceSeconds: d.get<number>('destroyGraceSeconds'),
    removeVolumes: d.get<boolean>('removeVolumes') ?? true,
    uploads: d.items('uploads').map(planUpload),
  };
  d.done();
  return plan;
}

/** `docker update` flags for a container's in-place inputs, as the provider sends them (memory in MB). */
export function updateArgs(inputs: Record<string, unknown>): string[] {
  const args: string[] = [];
  const restart = inputs.restart as string | undefined;
  const maxRetry = inputs.maxRetryCount as number | undefined;
  if (restart) args.push('--restart', restart === 'on-failure' && maxRetry ? `on-failure:${maxRetry}` : restart);
  const memory = inputs.memory as number | undefined;
  if (memory) args.push('--memory', `${memory}m`);
  // Only a declared swap limit is sent; otherwise Docker keeps the one it implied at create.
  const memorySwap = inputs.memorySwap as number | undefined;
  if (memorySwap) args.push('--memory-swap', memorySwap < 0 ? '-1' : `${memorySwap}m`);
  const reservation = inputs.memoryReservation as number | undefined;
  if (reservation) args.push('--memory-reservation', `${reservation}m`);
  return args;
}

/**
 * A docker provider (`pulumi:providers:docker`): which engine its resources go to. No host: the local
 * engine (the provider honours DOCKER_HOST, as the CLI does). `ssh://user@host:port`: the provider runs the
 * local `ssh` through docker/cli's connection helper, with `sshOpts` as that ssh's first arguments.
 */
export interface ProviderPlan {
  name: string;
  host?: string;
  sshOpts: string[];
}

export function planDockerProvider(resourceName: string, values: Inputs): ProviderPlan {
  const d = new DeclaredInputs(values, `pulumi:providers:docker "${resourceName}"`);
  const host = d.get<string>('host');
  // The sshOpts input arrives JSON-encoded, as every non-string provider input does (pulumi-docker
  // provider/image.go configureDockerClient json.Unmarshal's configs["sshOpts"]).
  const raw = d.get<string[] | string>('sshOpts');
  const sshOpts = typeof raw === 'string' ? (JSON.parse(raw) as string[]) : (raw ?? []);
  if (!Array.isArray(sshOpts) || sshOpts.some((o) => typeof o !== 'string')) {
    throw new Error(`${d.where} sshOpts must be a list of strings, got ${JSON.stringify(raw)}`);
  }
  if (host !== undefined && !/^(ssh|unix):\/\//.test(host)) {
    throw new Error(`${d.where} host=${host}; only ssh:// and unix:// hosts (or none: the local engine) are supported`);
  }
  if (sshOpts.length > 0 && !host?.startsWith('ssh://')) {
    throw new Error(`${d.where} sets sshOpts without an ssh:// host; the provider would not use them`);
  }
  d.get('version'); // the plugin version: which provider binary runs, nothing it applies
  d.get('pluginDownloadURL');
  d.done();
  return { name: resourceName, host, sshOpts };
}
