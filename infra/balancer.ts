// The balancer: nginx plus the TypeScript watcher that follows Consul, built from balancer/, with
// its public listener published on the bind address and its admin listener on adminAddress (the bind
// address on one host, loopback by default; a VM's private address).
import * as pulumi from '@pulumi/pulumi';
import { httpHealthcheck, roleOptions, stackContainer } from './container-settings';
import { httpUrl } from '../lib/endpoints';
import { bundledImage, consulTokenEnv, type BundledRoleArgs } from './bundled-role';

const LISTEN_PORT = 8080;
const ADMIN_PORT = 8081;

export interface BalancerArgs extends BundledRoleArgs {
  bindAddress: string;
  /** Host port for the balancer, on bindAddress. */
  balancerPort: number;
  /** Where the admin listener (status, X-Upstream-Addr, the evidence page) is published; never a public address. */
  adminAddress: string;
  /** Host port for the balancer's admin listener, on adminAddress. */
  balancerAdminPort: number;
  /** Requests per second per client address on the public listener (0 = no limit): RATE_LIMIT_PER_CLIENT. */
  rateLimitPerClient: number;
}

export class Balancer extends pulumi.ComponentResource {
  readonly containerName: string;
  readonly url: string;
  readonly adminUrl: string;

  constructor(name: string, args: BalancerArgs, opts?: pulumi.ComponentResourceOptions) {
    const { component, dependsOn } = roleOptions(opts);
    super('cnp:infra:Balancer', name, {}, component);
    const { naming, collector } = args;
    this.containerName = naming.objectName('balancer');
    this.url = httpUrl(args.bindAddress, args.balancerPort);
    this.adminUrl = httpUrl(args.adminAddress, args.balancerAdminPort);

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
          // No SERVICE_NAME: the gateway follows every service that asks for a route (balancer/README.md).
          `RATE_LIMIT_PER_CLIENT=${args.rateLimitPerClient}`,
          `LISTEN_PORT=${LISTEN_PORT}`,
          'LISTEN_ADDRESS=0.0.0.0',
          `ADMIN_PORT=${ADMIN_PORT}`,
          'ADMIN_ADDRESS=0.0.0.0',
        ],
        // The admin port is published on adminAddress only (loopback by default, a VM's private address), like Consul's UI.
        ports: [
          { internal: LISTEN_PORT, external: args.balancerPort, ip: args.bindAddress, protocol: 'tcp' },
          { internal: ADMIN_PORT, external: args.balancerAdminPort, ip: args.adminAddress, protocol: 'tcp' },
        ],
        networksAdvanced: [{ name: args.networkName, aliases: ['balancer'] }],
        healthcheck: httpHealthcheck(`http://127.0.0.1:${ADMIN_PORT}/_balancer/status`),
        destroyGraceSeconds: 10,
      },
      { parent: this, dependsOn },
    );

    this.registerOutputs({ containerName: this.containerName, url: this.url, adminUrl: this.adminUrl });
  }
}
