// Settings shared by the stack's containers: restart policy, hardening (user, read-only root, capabilities,
// no-new-privileges, memory, CPU and process limits), logs, replacement and health probes, applied by
// stackContainer() under each role's own args. What differs per role is data: ROLE_SETTINGS.
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import type { StackNaming } from './naming';

/** Comes back after a crash or a daemon restart; stays down after an operator's `docker stop`. */
export const RESTART_POLICY = 'unless-stopped';

/** What one role's container needs to run, and no more (the CIS Docker benchmark's section 5). */
export interface RoleSettings {
  /** The process's user: a name the image resolves, or uid:gid (any base image, no user database needed). */
  user: string;
  /** Memory limit in MB (the provider's unit), swap declared equal to it (see memoryLimit). */
  memoryMb: number;
  /** CPU limit in cores (`docker run --cpus`): a hard quota, not a relative weight. */
  cpus: string;
  /**
   * The writable paths of a root filesystem that is otherwise read-only, as tmpfs mounts with their mount
   * options (sizes count against the memory limit). Data that must outlive the container is on a volume.
   */
  tmpfs: Record<string, string>;
  /** Capabilities added back after all are dropped; none of the roles needs one (no port below 1024, no chown). */
  capAdd: string[];
}

/** The numeric user the repo's own images declare (service/, balancer/, collector/ Dockerfiles: USER 10001:10001). */
export const APP_USER = '10001:10001';

/**
 * tmpfs options: not executable, no set-uid or device files, bounded size. A tmpfs mount takes the mode of
 * the image's directory but is owned by root, so a directory only its user may write (not /tmp, which is
 * 1777 in every base) is mounted owned by that user.
 */
function scratch(size: string, owner?: string): string {
  const [uid, gid] = owner?.split(':') ?? [];
  return `rw,noexec,nosuid,nodev,size=${size}${owner ? `,uid=${uid},gid=${gid}` : ''}`;
}

export const ROLE_SETTINGS = {
  // The `consul` user of the public image (uid 100), which consul/Dockerfile adds where missing and which
  // owns /consul/data (the data volume). /tmp: the consul CLI of the health check writes a probe file there.
  consul: { user: 'consul', memoryMb: 256, cpus: '1', tmpfs: { '/tmp': scratch('16m') }, capAdd: [] },
  // syslog-ng's pid file and control socket (/run/syslog-ng) and its persist file (/var/lib/syslog-ng)
  // are scratch: it reads only network sources, whose position is not kept across restarts anyway.
  collector: {
    user: APP_USER,
    memoryMb: 128,
    cpus: '0.5',
    tmpfs: { '/run/syslog-ng': scratch('1m', APP_USER), '/var/lib/syslog-ng': scratch('1m', APP_USER), '/tmp': scratch('8m') },
    capAdd: [],
  },
  replica: { user: APP_USER, memoryMb: 256, cpus: '1', tmpfs: { '/tmp': scratch('16m') }, capAdd: [] },
  // The activity service keeps its recent events in memory (ACTIVITY_KEEP) and its SSE clients' bounded queues.
  activity: { user: APP_USER, memoryMb: 256, cpus: '1', tmpfs: { '/tmp': scratch('16m') }, capAdd: [] },
  // nats-server writes only its JetStream store, which is on the broker's volume (broker/Dockerfile gives
  // /data to APP_USER); /tmp for nothing but tools. Memory: the stream's messages are on file, its index in RAM.
  broker: { user: APP_USER, memoryMb: 256, cpus: '1', tmpfs: { '/tmp': scratch('8m') }, capAdd: [] },
  // nginx's prefix (config, pid, temp files, the admin socket: the watcher's WORK_DIR) is /tmp/balancer.
  balancer: { user: APP_USER, memoryMb: 256, cpus: '1', tmpfs: { '/tmp': scratch('64m') }, capAdd: [] },
  // Holds the balancer's network namespace and published ports (infra/balancer.ts): a shell that waits.
  'balancer-ports': { user: APP_USER, memoryMb: 16, cpus: '0.1', tmpfs: {}, capAdd: [] },
} as const satisfies Record<string, RoleSettings>;

/**
 * The docker provider (5.2) has no PID limit (`--pids-limit`): RLIMIT_NPROC stands in. The kernel counts
 * it per uid across the host, not per container, so it bounds a fork bomb of all containers (and host
 * processes) of one uid together; it holds for the roles because they run unprivileged with no capability
 * (root, or CAP_SYS_RESOURCE/CAP_SYS_ADMIN, would bypass it).
 */
export const PROCESS_LIMIT = 4096;

/**
 * A memory limit with swap declared equal to it (no swap). Left undeclared, Docker 20.10 keeps the swap
 * limit it implied at create (twice the old memory), and the provider's in-place update of `memory` alone
 * (kreuzwerker resourceDockerContainerUpdate) fails once the new memory exceeds that.
 */
export function memoryLimit(mb: number): { memory: number; memorySwap: number } {
  return { memory: mb, memorySwap: mb };
}

/** The hardening inputs of a role's container (see RoleSettings). */
export function hardening(settings: RoleSettings): Partial<docker.ContainerArgs> {
  return {
    user: settings.user,
    readOnly: true,
    tmpfs: { ...settings.tmpfs },
    capabilities: { drops: ['ALL'], ...(settings.capAdd.length > 0 ? { adds: [...settings.capAdd] } : {}) },
    securityOpts: ['no-new-privileges:true'],
    ...memoryLimit(settings.memoryMb),
    cpus: settings.cpus,
    ulimits: [{ name: 'nproc', soft: PROCESS_LIMIT, hard: PROCESS_LIMIT }],
  };
}

/** Docker log settings that send a container's stdout/stderr somewhere else than its local log. */
export interface LogSettings {
  logDriver: string;
  logOpts: Record<string, pulumi.Input<string>>;
}

/** Where a container's logs go (the stack's collector), and what must be there first. */
export interface LogDestination {
  logSettingsFor(tag: pulumi.Input<string>): LogSettings;
  /** The collector's container, which must listen, and on a VM the files its daemon's log driver reads. */
  dependsOn: pulumi.Resource[];
}

/** The role a container plays, which picks its defaults. */
export interface ContainerRole {
  naming: StackNaming;
  role: keyof typeof ROLE_SETTINGS;
  /** Labels beyond the stack's and the role's, e.g. a replica's number. */
  extraLabels?: Record<string, string>;
  /** Absent for the collector itself, which cannot log to itself. */
  logs?: LogDestination;
  /** The name its logs are filed under; the container's name unless set. */
  logTag?: pulumi.Input<string>;
}

/**
 * A container of the stack: the stack's defaults spread under the role's own args and options, so a role
 * overrides any default by setting it (as pulumi-awsx spreads its defaults under the caller's args).
 * `dependsOn` is added to instead: a container that logs to the collector is created after it, so its
 * log driver finds the collector listening.
 */
export function stackContainer(
  name: string,
  role: ContainerRole,
  args: docker.ContainerArgs & { name: pulumi.Input<string> },
  opts: pulumi.CustomResourceOptions,
): docker.Container {
  const { naming, logs } = role;
  return new docker.Container(
    name,
    {
      restart: RESTART_POLICY,
      ...hardening(ROLE_SETTINGS[role.role]),
      labels: naming.labels(role.role, role.extraLabels),
      ...(logs ? logs.logSettingsFor(role.logTag ?? args.name) : {}),
      ...args,
    },
    {
      // A fixed name or a published port cannot exist twice: the old container goes before the new one
      // (the replicas and the balancer's gateway, whose names change with their image, turn this off).
      deleteBeforeReplace: true,
      // The provider reports a `healthcheck` or `tmpfs` edit but never applies it (the bridged
      // docker_container neither forces a new container nor updates it), so such an edit replaces.
      replaceOnChanges: ['healthcheck', 'tmpfs'],
      ...opts,
      dependsOn: [...(logs ? logs.dependsOn : []), ...dependsOnList(opts.dependsOn)],
    },
  );
}

/**
 * A role component's options split in two: what the component itself gets, and the `dependsOn` that
 * orders its containers. Only the containers wait: the role's image builds while what it depends on starts.
 */
export function roleOptions(opts: pulumi.ComponentResourceOptions = {}): {
  component: pulumi.ComponentResourceOptions;
  dependsOn: pulumi.Input<pulumi.Resource>[];
} {
  const { dependsOn, ...component } = opts;
  return { component, dependsOn: dependsOnList(dependsOn) };
}

function dependsOnList(dependsOn: pulumi.ResourceOptions['dependsOn']): pulumi.Input<pulumi.Resource>[] {
  if (dependsOn === undefined) return [];
  if (Array.isArray(dependsOn)) return dependsOn;
  if (pulumi.Resource.isInstance(dependsOn)) return [dependsOn];
  throw new Error('dependsOn of a stack container is not allowed as an Output or a Promise: use a resource or a list of resources');
}

/** Seconds a replica gets between SIGTERM and removal: enough to deregister and finish requests. */
export const REPLICA_DRAIN_SECONDS = 15;

/**
 * A health check that GETs a URL inside the container with Node (every image built from this repo
 * runs Node; slim bases have no curl).
 */
export function httpHealthcheck(url: string): docker.types.input.ContainerHealthcheck {
  const script = `fetch(${JSON.stringify(url)}).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`;
  return {
    tests: ['CMD', 'node', '-e', script],
    interval: '5s',
    timeout: '3s',
    retries: 3,
    startPeriod: '10s',
  };
}
