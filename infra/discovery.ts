// Discovery: one Consul server. Entrypoint, arguments and data path are given explicitly so the
// container runs the same from hashicorp/consul and from a local image without an entrypoint. It runs
// consulImage plus a `consul` user owning the data directory (consul/Dockerfile), as that user: giving the
// entrypoint directly skips the public image's own switch to it (its docker-entrypoint.sh).
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import { roleOptions, stackContainer } from './container-settings';
import { consulLimitArgs } from '../lib/consul-limits';
import { httpUrl } from '../lib/endpoints';
import { CONSUL_TOKEN_ENV } from '../lib/consul-address';
import { agentAclArgument } from './consul-acl';
import type { LogCollector } from './collector';
import type { StackNaming } from './naming';
import { localImage } from './local-image';

const CONSUL_HTTP_PORT = 8500;
const CONSUL_DATA_DIR = '/consul/data';

export interface DiscoveryArgs {
  naming: StackNaming;
  networkName: pulumi.Input<string>;
  collector: LogCollector;
  /** The Consul image the stack's own is built on (consul/Dockerfile's BASE_IMAGE). */
  consulImage: string;
  repoRoot: string;
  bindAddress: string;
  /** Host port for Consul's HTTP API and UI, on bindAddress. */
  consulUiPort: number;
  /** Gossip encryption key (a secret; infra/gossip-key.ts). */
  gossipKey: pulumi.Input<string>;
  /** The initial management token (a Pulumi secret): ACLs are on, default deny. */
  managementToken: pulumi.Output<string>;
}

/**
 * Consul's flags for encrypted gossip. Without a keyring file the agent takes `-encrypt` at every start, so a
 * changed key takes effect when the agents are replaced (with a keyring file, Consul would ignore the new key).
 */
export function gossipEncryption(key: pulumi.Input<string>): pulumi.Input<string>[] {
  return [pulumi.interpolate`-encrypt=${key}`, '-disable-keyring-file'];
}

export class Discovery extends pulumi.ComponentResource {
  readonly containerName: string;
  /** Consul's HTTP address as seen from containers on the stack network. */
  readonly httpAddr: string;
  readonly uiUrl: string;
  readonly container: docker.Container;
  /** The data volume: a new one holds no ACL state, so the ACL init step runs again. */
  readonly dataVolume: docker.Volume;
  /** The agent's node name, which its ACL token is for. */
  readonly nodeName: string;

  constructor(name: string, args: DiscoveryArgs, opts?: pulumi.ComponentResourceOptions) {
    const { component, dependsOn } = roleOptions(opts);
    super('cnp:infra:Discovery', name, {}, component);
    const { naming, collector } = args;
    this.containerName = naming.objectName('consul');
    this.httpAddr = `http://${this.containerName}:${CONSUL_HTTP_PORT}`;
    this.uiUrl = `${httpUrl(args.bindAddress, args.consulUiPort)}/ui/`;

    const image = localImage(`${name}-image`, { naming, repoRoot: args.repoRoot, folder: 'consul', baseImage: args.consulImage }, this);

    this.nodeName = this.containerName;
    const data = new docker.Volume(
      `${name}-data`,
      { name: naming.objectName('consul-data'), labels: naming.labels('consul') },
      { parent: this },
    );

    this.container = stackContainer(
      `${name}-consul`,
      { naming, role: 'consul', logs: collector },
      {
        name: this.containerName,
        image: image.repoDigest,
        entrypoints: ['consul'],
        command: [
          'agent',
          '-server',
          '-bootstrap-expect=1',
          '-ui',
          '-client=0.0.0.0',
          '-bind=0.0.0.0',
          `-data-dir=${CONSUL_DATA_DIR}`,
          // A stable node name: the data volume outlives the container.
          `-node=${this.nodeName}`,
          // No calls home to HashiCorp's update checker.
          '-hcl=disable_update_check = true',
          // Production raft timing: a single server elects itself in about a second instead of seven.
          '-hcl=performance { raft_multiplier = 1 }',
          // Per-client connection cap and value size, so one client cannot lock the agent up.
          ...consulLimitArgs(),
          // ACLs on, default deny, with the management and agent tokens (infra/consul-acl.ts).
          agentAclArgument(args.managementToken, this.nodeName, args.consulImage),
          ...gossipEncryption(args.gossipKey),
        ],
        // For the health check's CLI (and an operator's `docker exec ... consul`): with default deny,
        // listing the raft peers needs a token; the agent itself reads none from its environment.
        envs: [pulumi.interpolate`${CONSUL_TOKEN_ENV}=${args.managementToken}`],
        ports: [{ internal: CONSUL_HTTP_PORT, external: args.consulUiPort, ip: args.bindAddress, protocol: 'tcp' }],
        networksAdvanced: [{ name: args.networkName, aliases: ['consul'] }],
        volumes: [{ volumeName: data.name, containerPath: CONSUL_DATA_DIR }],
        // Healthy once a leader is elected (the only command both the public and the offline image have is consul).
        healthcheck: {
          tests: ['CMD', 'consul', 'operator', 'raft', 'list-peers', `-http-addr=127.0.0.1:${CONSUL_HTTP_PORT}`],
          interval: '5s',
          timeout: '3s',
          retries: 12,
          startPeriod: '10s',
        },
        wait: true,
        waitTimeout: 120,
        destroyGraceSeconds: 10,
      },
      { parent: this, dependsOn },
    );

    this.dataVolume = data;
    this.registerOutputs({ containerName: this.containerName, httpAddr: this.httpAddr, uiUrl: this.uiUrl });
  }
}
