// What every Consul agent of the stack shares, on one host and on VMs (consul-agent.ts):
// the image (consulImage plus a `consul` user owning the data directory, consul/Dockerfile), the data
// volume, the hardening flags (no update check, production raft timing, request limits, ACLs, gossip
// encryption) and the server's health check.
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import { consulLimitArgs } from '../lib/consul-limits';
import { agentAclArgument } from './consul-acl';
import { localImage } from './local-image';
import type { StackNaming } from './naming';

export const CONSUL_DATA_DIR = '/consul/data';

/**
 * Consul's flags for encrypted gossip. Without a keyring file the agent takes `-encrypt` at every start, so a
 * changed key takes effect when the agents are replaced (with a keyring file, Consul would ignore the new key).
 */
function gossipEncryption(key: pulumi.Input<string>): pulumi.Input<string>[] {
  return [pulumi.interpolate`-encrypt=${key}`, '-disable-keyring-file'];
}

export interface AgentStorageArgs {
  naming: StackNaming;
  repoRoot: string;
  /** The Consul image the stack's own is built on (consul/Dockerfile's BASE_IMAGE). */
  consulImage: string;
  /** The platform the image is built for (a VM's, from its bootstrap); unset on one host (local-image.ts). */
  platform?: pulumi.Input<string>;
}

/** The agent's image, built on the engine that runs it, and its data volume (the node's identity and state). */
export function agentImageAndData(
  name: string,
  args: AgentStorageArgs,
  parent: pulumi.Resource,
): { image: docker.Image; data: docker.Volume } {
  const { naming, repoRoot, consulImage, platform } = args;
  const image = localImage(`${name}-image`, { naming, repoRoot, folder: 'consul', baseImage: consulImage, platform }, parent);
  const data = new docker.Volume(`${name}-data`, { name: naming.objectName('consul-data'), labels: naming.labels('consul') }, { parent });
  return { image, data };
}

export interface SecureAgentArgs {
  nodeName: string;
  consulImage: string;
  /** The initial management token (a secret); only a server's config holds it. */
  managementToken: pulumi.Output<string>;
  server: boolean;
  gossipKey: pulumi.Input<string>;
}

/** The flags every agent ends with: no update check, production raft timing, limits, ACLs, encrypted gossip. */
export function secureAgentFlags(args: SecureAgentArgs): pulumi.Input<string>[] {
  return [
    // No calls home to HashiCorp's update checker.
    '-hcl=disable_update_check = true',
    // Production raft timing: a single server elects itself in about a second instead of seven.
    '-hcl=performance { raft_multiplier = 1 }',
    // Per-client connection cap and value size, so one client cannot lock the agent up (lib/consul-limits.ts).
    ...consulLimitArgs(),
    // ACLs on, default deny, with this node's agent token and, on a server, the management token (consul-acl.ts).
    agentAclArgument(args.managementToken, args.nodeName, args.consulImage, { server: args.server }),
    ...gossipEncryption(args.gossipKey),
  ];
}

/**
 * A server is healthy once the cluster has a leader: the raft peers, listed with the management token
 * (CONSUL_HTTP_TOKEN in its environment; with default deny the CLI needs one). The only command both the
 * public and the offline image have is consul.
 */
export function serverHealthcheck(httpPort: number, retries: number): docker.types.input.ContainerHealthcheck {
  return {
    tests: ['CMD', 'consul', 'operator', 'raft', 'list-peers', `-http-addr=127.0.0.1:${httpPort}`],
    interval: '5s',
    timeout: '3s',
    retries,
    startPeriod: '10s',
  };
}
