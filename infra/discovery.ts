// Discovery: one Consul server. Entrypoint, arguments and data path are given explicitly so the
// container runs the same from hashicorp/consul and from a local image without an entrypoint.
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import { roleOptions, stackContainer } from './container-settings';
import { httpUrl } from '../lib/endpoints';
import type { LogCollector } from './collector';
import type { StackNaming } from './naming';

const CONSUL_HTTP_PORT = 8500;
const CONSUL_DATA_DIR = '/consul/data';

export interface DiscoveryArgs {
  naming: StackNaming;
  networkName: pulumi.Input<string>;
  collector: LogCollector;
  consulImage: string;
  bindAddress: string;
  /** Host port for Consul's HTTP API and UI, on bindAddress. */
  consulUiPort: number;
  /** Gossip encryption key (a secret; infra/gossip-key.ts). */
  gossipKey: pulumi.Input<string>;
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

  constructor(name: string, args: DiscoveryArgs, opts?: pulumi.ComponentResourceOptions) {
    const { component, dependsOn } = roleOptions(opts);
    super('cnp:infra:Discovery', name, {}, component);
    const { naming, collector } = args;
    this.containerName = naming.objectName('consul');
    this.httpAddr = `http://${this.containerName}:${CONSUL_HTTP_PORT}`;
    this.uiUrl = `${httpUrl(args.bindAddress, args.consulUiPort)}/ui/`;

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
        image: args.consulImage,
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
          `-node=${this.containerName}`,
          // No calls home to HashiCorp's update checker.
          '-hcl=disable_update_check = true',
          // Production raft timing: a single server elects itself in about a second instead of seven.
          '-hcl=performance { raft_multiplier = 1 }',
          ...gossipEncryption(args.gossipKey),
        ],
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

    this.registerOutputs({ containerName: this.containerName, httpAddr: this.httpAddr, uiUrl: this.uiUrl });
  }
}
