// The balancer: nginx plus the TypeScript watcher that follows Consul, built from balancer/, with
// its listener published on the bind address.
import * as pulumi from '@pulumi/pulumi';
import { httpHealthcheck, roleOptions, stackContainer } from './container-settings';
import { httpUrl } from '../lib/endpoints';
import { bundledImage, consulTokenEnv, type BundledRoleArgs } from './bundled-role';

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
    const { component, dependsOn } = roleOptions(opts);
    super('cnp:infra:Balancer', name, {}, component);
    const { naming, collector } = args;
    this.containerName = naming.objectName('balancer');
    this.url = httpUrl(args.bindAddress, args.balancerPort);

    const image = bundledImage(`${name}-image`, 'balancer', args, this);

    stackContainer(
      `${name}-container`,
      { naming, role: 'balancer', logs: collector },
      {
        name: this.containerName,
        image: image.repoDigest,
        envs: [
          `CONSUL_HTTP_ADDR=${args.consulHttpAddr}`,
          ...consulTokenEnv(args),
          `SERVICE_NAME=${args.serviceName}`,
          `LISTEN_PORT=${LISTEN_PORT}`,
          'LISTEN_ADDRESS=0.0.0.0',
        ],
        ports: [{ internal: LISTEN_PORT, external: args.balancerPort, ip: args.bindAddress, protocol: 'tcp' }],
        networksAdvanced: [{ name: args.networkName, aliases: ['balancer'] }],
        healthcheck: httpHealthcheck(`http://127.0.0.1:${LISTEN_PORT}/_balancer/status`),
        destroyGraceSeconds: 10,
      },
      { parent: this, dependsOn },
    );

    this.registerOutputs({ containerName: this.containerName, url: this.url });
  }
}
