// Discovery: one Consul server. Entrypoint, arguments and data path are given explicitly so the
// container runs the same from hashicorp/consul and from a local image without an entrypoint. It runs
// consulImage plus a `consul` user owning the data directory (consul/Dockerfile), as that user: giving the
// entrypoint directly skips the public image's own switch to it (its docker-entrypoint.sh).
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import { roleOptions, stackContainer } from './container-settings';
import { httpUrl } from '../lib/endpoints';
import { CONSUL_TOKEN_ENV } from '../lib/consul-address';
import { agentImageAndData, CONSUL_DATA_DIR, secureAgentFlags, serverHealthcheck } from './consul-agent-settings';
import type { LogCollector } from './collector';
import type { StackNaming } from './naming';

const CONSUL_HTTP_PORT = 8500;

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

    this.nodeName = this.containerName;
    const { image, data } = agentImageAndData(name, args, this);

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
          ...secureAgentFlags({ ...args, nodeName: this.nodeName, server: true }),
        ],
        // For the health check's CLI (and an operator's `docker exec ... consul`): with default deny,
        // listing the raft peers needs a token; the agent itself reads none from its environment.
        envs: [pulumi.interpolate`${CONSUL_TOKEN_ENV}=${args.managementToken}`],
        ports: [{ internal: CONSUL_HTTP_PORT, external: args.consulUiPort, ip: args.bindAddress, protocol: 'tcp' }],
        networksAdvanced: [{ name: args.networkName, aliases: ['consul'] }],
        volumes: [{ volumeName: data.name, containerPath: CONSUL_DATA_DIR }],
        healthcheck: serverHealthcheck(CONSUL_HTTP_PORT, 12),
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
