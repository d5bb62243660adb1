// Settings shared by the stack's containers: restart policy, memory limits and health probes.
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
