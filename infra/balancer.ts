// The balancer: nginx plus the TypeScript watcher that follows Consul, built from balancer/, with
// its listener published on the bind address.
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import { MEMORY_MB, RESTART_POLICY, containerOptions, memoryLimit, httpHealthcheck } from './container-settings';
import { httpUrl } from '../lib/endpoints';
import { bundledImage, type BundledRoleArgs } from './local-image';

const LISTEN_PORT = 8080;

export interface BalancerArgs extends BundledRoleArgs {
  bindAddress: string;
  /** Host port for the balancer, on bindAddress. */
  balancerPort: number;
}

export class Balancer extends pulumi.ComponentResource {
  readonly containerName: string;
  readonly url: string;

  constructor(name: string, args: BalancerArgs, opts?: pulumi.ComponentResourceOptions) {
    super('cnp:infra:Balancer', name, {}, opts);
    const { naming, collector } = args;
    this.containerName = naming.objectName('balancer');
    this.url = httpUrl(args.bindAddress, args.balancerPort);

    const image = bundledImage(`${name}-image`, 'balancer', args, this);

    new docker.Container(
      `${name}-container`,
      {
        name: this.containerName,
        image: image.repoDigest,
        envs: [
          `CONSUL_HTTP_ADDR=${args.consulHttpAddr}`,
          `SERVICE_NAME=${args.serviceName}`,
          `LISTEN_PORT=${LISTEN_PORT}`,
          'LISTEN_ADDRESS=0.0.0.0',
        ],
        ports: [{ internal: LISTEN_PORT, external: args.balancerPort, ip: args.bindAddress, protocol: 'tcp' }],
        networksAdvanced: [{ name: args.networkName, aliases: ['balancer'] }],
        healthcheck: httpHealthcheck(`http://127.0.0.1:${LISTEN_PORT}/_balancer/status`),
        restart: RESTART_POLICY,
        ...memoryLimit(MEMORY_MB.balancer),
        labels: naming.labels('balancer'),
        destroyGraceSeconds: 10,
        ...collector.logSettingsFor(this.containerName),
      },
      containerOptions({ parent: this, deleteBeforeReplace: true, dependsOn: [collector.container, ...args.dependsOn] }),
    );

    this.registerOutputs({ containerName: this.containerName, url: this.url });
  }
}
