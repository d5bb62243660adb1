// What every Consul agent of the stack shares, on one host and on VMs (consul-agent.ts):
// the image (consulImage plus a `consul` user owning the data directory, consul/Dockerfile), the data
// volume, the hardening flags (no update check, production raft timing, request limits, ACLs, gossip
// encryption) and the server's health check.
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import { consulLimitArgs } from '../lib/consul-limits';
import { agentAclConfig } from './consul-acl';
import { agentTlsHcl, TLS_FILES } from './consul-tls';
import { consulVersionOfImage } from '../lib/consul-acl';
import { SECRETS_DIR } from './secret-files';
import { localImage } from './local-image';
import type { StackNaming } from './naming';

export const CONSUL_DATA_DIR = '/consul/data';

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
  /** On VMs: TLS for the agent's RPC (consul-tls.ts), its CA's certificate and its own certificate and key. */
  tls?: { ca: pulumi.Input<string>; cert: pulumi.Input<string>; key: pulumi.Input<string> };
}

/** The agent's secret configuration file in its secrets directory (infra/secret-files.ts). */
export const AGENT_SECRETS_FILE = 'agent.hcl';
/** A server's management token, for its health check's CLI (CONSUL_HTTP_TOKEN_FILE). */
export const MANAGEMENT_TOKEN_FILE = 'management-token';

/**
 * The agent's secret files: its configuration with the gossip key and the ACL settings and tokens
 * (consul-acl.ts), and on a server the management token alone, for its health check.
 */
export function agentSecretFiles(args: SecureAgentArgs): Record<string, pulumi.Input<string>> {
  const acl = agentAclConfig(args.managementToken, args.nodeName, args.consulImage, { server: args.server });
  const tls = args.tls ? `${agentTlsHcl(consulVersionOfImage(args.consulImage))}\n` : '';
  return {
    [AGENT_SECRETS_FILE]: pulumi.secret(pulumi.interpolate`encrypt = "${args.gossipKey}"\n${acl}\n${tls}`),
    ...(args.server ? { [MANAGEMENT_TOKEN_FILE]: args.managementToken } : {}),
    ...(args.tls ? { [TLS_FILES.ca]: args.tls.ca, [TLS_FILES.cert]: args.tls.cert, [TLS_FILES.key]: args.tls.key } : {}),
  };
}

/** The flags every agent ends with: no update check, production raft timing, limits, and its secret configuration. */
export function secureAgentFlags(): string[] {
  return [
    // No calls home to HashiCorp's update checker.
    '-hcl=disable_update_check = true',
    // Production raft timing: a single server elects itself in about a second instead of seven.
    '-hcl=performance { raft_multiplier = 1 }',
    // Per-client connection cap and value size, so one client cannot lock the agent up (lib/consul-limits.ts).
    ...consulLimitArgs(),
    // ACLs on, default deny, with this node's agent token (consul-acl.ts), and encrypted gossip. Without a
    // keyring file the agent takes the configured key at every start, so a changed key takes effect when the
    // agents are replaced (with a keyring file, Consul would ignore the new key).
    `-config-file=${SECRETS_DIR}/${AGENT_SECRETS_FILE}`,
    '-disable-keyring-file',
  ];
}

/**
 * A server is healthy once the cluster has a leader: the raft peers, listed with the management token
 * (CONSUL_HTTP_TOKEN_FILE in its environment names the file; with default deny the CLI needs one). The only command both the
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
