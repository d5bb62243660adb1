// Settings shared by the stack's containers: restart policy, memory limits, logs, replacement and
// health probes, applied by stackContainer() under each role's own args.
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import type { StackNaming } from './naming';

/** Comes back after a crash or a daemon restart; stays down after an operator's `docker stop`. */
export const RESTART_POLICY = 'unless-stopped';

/** Memory limits in MB (the provider's unit). */
export const MEMORY_MB = {
  consul: 256,
  collector: 128,
  replica: 256,
  balancer: 256,
} as const;

/**
 * A memory limit with swap declared equal to it (no swap). Left undeclared, Docker 20.10 keeps the swap
 * limit it implied at create (twice the old memory), and the provider's in-place update of `memory` alone
 * (kreuzwerker resourceDockerContainerUpdate) fails once the new memory exceeds that.
 */
export function memoryLimit(mb: number): { memory: number; memorySwap: number } {
  return { memory: mb, memorySwap: mb };
}

/** Docker log settings that send a container's stdout/stderr somewhere else than its local log. */
export interface LogSettings {
  logDriver: string;
  logOpts: Record<string, pulumi.Input<string>>;
}

/** Where a container's logs go (the stack's collector), and the container that must listen first. */
export interface LogDestination {
  logSettingsFor(tag: pulumi.Input<string>): LogSettings;
  container: pulumi.Resource;
}

/** The role a container plays, which picks its defaults. */
export interface ContainerRole {
  naming: StackNaming;
  role: keyof typeof MEMORY_MB;
  /** Labels beyond the stack's and the role's, e.g. a replica's number. */
  extraLabels?: Record<string, string>;
  /** Absent for the collector itself, which cannot log to itself. */
  logs?: LogDestination;
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
      ...memoryLimit(MEMORY_MB[role.role]),
      labels: naming.labels(role.role, role.extraLabels),
      ...(logs ? logs.logSettingsFor(args.name) : {}),
      ...args,
    },
    {
      // A fixed name or a published port cannot exist twice: the old container goes before the new one.
      deleteBeforeReplace: true,
      // The provider reports a `healthcheck` edit but never applies it (the bridged docker_container
      // neither forces a new container nor updates it), so such an edit replaces.
      replaceOnChanges: ['healthcheck'],
      ...opts,
      dependsOn: [...(logs ? [logs.container] : []), ...dependsOnList(opts.dependsOn)],
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
