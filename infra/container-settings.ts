// Settings shared by the stack's containers: restart policy, memory limits and health probes.
import type * as pulumi from '@pulumi/pulumi';
import type * as docker from '@pulumi/docker';

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

/**
 * Options every container gets. The provider reports a `healthcheck` edit but never applies it (the
 * bridged docker_container neither forces a new container nor updates it), so such an edit replaces.
 */
export function containerOptions(opts: pulumi.CustomResourceOptions): pulumi.CustomResourceOptions {
  return { ...opts, replaceOnChanges: ['healthcheck'] };
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
