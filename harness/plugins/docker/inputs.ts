// The one table of what the docker provider does with each input the program may declare, read from the
// real providers' source: pulumi-docker v5 (docker.Image, a native resource) and the kreuzwerker
// terraform-provider-docker v4.5.0 it bridges (docker_container, docker_network, docker_volume). The
// stand-in's Check refuses any input not listed here, and its Diff is computed from it.
import { isDeepStrictEqual } from 'node:util';
import { isEmpty, type Inputs } from './declared-inputs';

/**
 * - replace: a new object (kreuzwerker's schema marks the field ForceNew);
 * - update: changed in place, the object keeps its id (a container's `docker update`, an image's rebuild);
 * - state: kept in the state only; it steers what the provider does at create, refresh or delete;
 * - unapplied: neither ForceNew nor updated, so the edit is reported and saved but the running container
 *   keeps its old setting (the program's `replaceOnChanges` turns it into a replace).
 */
export type InputEffect = 'replace' | 'update' | 'state' | 'unapplied';

export interface InputRule {
  effect: InputEffect;
  /** The provider file the rule is read from. */
  source: string;
  /** What Check puts in when the program leaves the input unset, as the real provider's Check does. */
  filledByCheck?: string;
  /** What a refresh (Read) does to it. */
  onRefresh?: string;
}

export const CONTAINER = 'docker:index/container:Container';
export const IMAGE = 'docker:index/image:Image';
export const NETWORK = 'docker:index/network:Network';
export const VOLUME = 'docker:index/volume:Volume';
export const PROVIDER = 'pulumi:providers:docker';

export type DockerResourceType = typeof CONTAINER | typeof IMAGE | typeof NETWORK | typeof VOLUME;

const KW = 'kreuzwerker/terraform-provider-docker v4.5.0 internal/provider/';
const CONTAINER_SCHEMA = `${KW}resource_docker_container.go (ForceNew)`;
const CONTAINER_UPDATE = `${KW}resource_docker_container_funcs.go resourceDockerContainerUpdate`;
const CONTAINER_CREATE = `${KW}resource_docker_container_funcs.go resourceDockerContainerCreate`;
const CONTAINER_DELETE = `${KW}resource_docker_container_funcs.go resourceDockerContainerDelete`;
const CONTAINER_NEITHER = `${KW}resource_docker_container.go (not ForceNew) and not in resourceDockerContainerUpdate`;
const IMAGE_DIFF = 'pulumi-docker v5 provider/provider.go Diff (no replace keys; Update rebuilds under the same resource)';

const replace = (source = CONTAINER_SCHEMA): InputRule => ({ effect: 'replace', source });
const update: InputRule = { effect: 'update', source: CONTAINER_UPDATE };
const unapplied: InputRule = { effect: 'unapplied', source: CONTAINER_NEITHER };
const state = (source: string): InputRule => ({ effect: 'state', source });

const CONTAINER_RULES: Record<string, InputRule> = {
  name: { ...replace(), filledByCheck: 'the resource name plus a random suffix (the bridge auto-names)' },
  image: replace(),
  entrypoints: replace(),
  command: replace(),
  envs: replace(),
  labels: replace(),
  hostname: replace(),
  user: replace(),
  workingDir: replace(),
  readOnly: replace(),
  stopSignal: replace(),
  stopTimeout: replace(),
  ports: replace(),
  networksAdvanced: replace(),
  networkMode: replace(),
  sysctls: replace(),
  volumes: replace(),
  mounts: replace(),
  logDriver: replace(),
  logOpts: replace(),
  cpus: replace(),
  capabilities: replace(),
  securityOpts: replace(),
  ulimits: replace(),
  uploads: replace(),
  restart: update,
  maxRetryCount: update,
  memory: update,
  memorySwap: update,
  memoryReservation: update,
  wait: state(`${CONTAINER_CREATE} (waits for healthy after start)`),
  waitTimeout: state(`${CONTAINER_CREATE} (default 60 s)`),
  destroyGraceSeconds: state(`${CONTAINER_DELETE} (stop with this grace, then remove)`),
  mustRun: {
    ...state(`${CONTAINER_UPDATE} (must_run false -> true starts the same container)`),
    filledByCheck: 'true (the schema default)',
    onRefresh: `false when the container is stopped (${KW}resource_docker_container_funcs.go resourceDockerContainerRead)`,
  },
  removeVolumes: state(`${CONTAINER_DELETE} (default true)`),
  attach: state(CONTAINER_CREATE),
  logs: state(CONTAINER_CREATE),
  rm: state(CONTAINER_CREATE),
  healthcheck: unapplied,
  init: unapplied,
  tmpfs: unapplied,
  start: unapplied,
};

const imageRule = (filledByCheck?: string): InputRule => ({
  effect: 'update',
  source: IMAGE_DIFF,
  ...(filledByCheck ? { filledByCheck } : {}),
});

const IMAGE_RULES: Record<string, InputRule> = {
  imageName: imageRule(),
  build: imageRule(
    'platform: linux/<arch of the machine running the provider>; context, dockerfile resolved; contextDigest: a hash of the ' +
      'context (pulumi-docker v5 provider/provider.go Check)',
  ),
  skipPush: imageRule(),
  registry: imageRule(),
  buildOnPreview: imageRule('false (pulumi-docker v5 provider/provider.go Check, marshalBuildOnPreview)'),
};

// docker_network and docker_volume: every argument is ForceNew.
const NETWORK_RULES: Record<string, InputRule> = Object.fromEntries(
  ['name', 'driver', 'labels', 'internal', 'attachable', 'ipamConfigs', 'options'].map((k) => [
    k,
    replace(`${KW}resource_docker_network.go (ForceNew)`),
  ]),
);
const VOLUME_RULES: Record<string, InputRule> = Object.fromEntries(
  ['name', 'driver', 'labels', 'driverOpts'].map((k) => [k, replace(`${KW}resource_docker_volume.go (ForceNew)`)]),
);

export const INPUT_RULES: Readonly<Record<DockerResourceType, Readonly<Record<string, InputRule>>>> = {
  [CONTAINER]: CONTAINER_RULES,
  [IMAGE]: IMAGE_RULES,
  [NETWORK]: { ...NETWORK_RULES, name: { ...NETWORK_RULES.name, filledByCheck: 'the resource name plus a random suffix' } },
  [VOLUME]: { ...VOLUME_RULES, name: { ...VOLUME_RULES.name, filledByCheck: 'the resource name plus a random suffix' } },
};

/**
 * The provider's own config. A changed host or sshOpts is an update of the provider: the bridge's DiffConfig
 * replaces only for a key marked ForcesProviderReplace, and pulumi-docker marks none, so its resources stay
 * and the provider is configured anew. `version` and `pluginDownloadURL` only pick the plugin binary.
 */
const CONFIG_DIFF = 'pulumi-terraform-bridge v3.133.0 (pulumi-docker v5.1.0 go.mod) pkg/tfbridge/provider.go configDiffer.DiffConfig';
export const PROVIDER_CONFIG_RULES: Readonly<Record<string, InputRule>> = {
  host: {
    effect: 'update',
    source: `${CONFIG_DIFF}; pulumi-docker v5 provider/provider.go Configure (DOCKER_HOST unless ssh://)`,
    // The real CheckConfig fills it in (provider/resources.go: DOCKER_HOST, else the OS's socket); the
    // stand-in leaves it out, and the docker CLI without -H reads DOCKER_HOST or that same socket.
    filledByCheck: 'not by the stand-in (the real one: DOCKER_HOST, else unix:///var/run/docker.sock)',
  },
  sshOpts: {
    effect: 'update',
    source: `${CONFIG_DIFF}; pulumi-docker v5 provider/image.go configureDockerClient (connhelper with sshOpts)`,
  },
  version: { effect: 'state', source: 'pulumi/pulumi: the plugin version the SDK asks for' },
  pluginDownloadURL: { effect: 'state', source: 'pulumi/pulumi: where the plugin would be downloaded from' },
};

/** Declared inputs the table has no rule for (empty values count as undeclared: the SDK drops them). */
export function unknownInputs(rules: Readonly<Record<string, InputRule>>, inputs: Inputs): string[] {
  return Object.keys(inputs).filter((k) => !(k in rules) && !isEmpty(inputs[k]));
}

export interface InputsDiff {
  changed: string[];
  replaces: string[];
}

/** Absent, null and empty collections are the same input (the SDK drops them). */
export const normalInput = (value: unknown): unknown => (isEmpty(value) ? undefined : value);

/** The inputs whose value differs between `olds` and `news`, and those of them that replace the object. */
export function diffByRules(rules: Readonly<Record<string, InputRule>>, olds: Inputs, news: Inputs): InputsDiff {
  const changed = Object.keys(rules)
    .filter((k) => !isDeepStrictEqual(normalInput(olds[k]), normalInput(news[k])))
    .sort();
  return { changed, replaces: changed.filter((k) => rules[k].effect === 'replace') };
}
