// The stack's private network: containers find each other by name on it.
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import type { StackNaming } from './naming';

export interface StackNetworkArgs {
  naming: StackNaming;
  /**
   * On a VM: an explicit subnet and its gateway, where the VM's Consul agent listens for the containers
   * (Docker would otherwise pick a subnet, which may overlap the VMs' own network).
   */
  ipam?: { subnet: string; gateway: string };
}

export class StackNetwork extends pulumi.ComponentResource {
  /** The Docker network's name, for containers' `networksAdvanced`. */
  readonly networkName: pulumi.Output<string>;
  readonly network: docker.Network;

  constructor(name: string, args: StackNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super('cnp:infra:StackNetwork', name, {}, opts);
    const network = new docker.Network(
      `${name}-bridge`,
      {
        name: args.naming.objectName('net'),
        driver: 'bridge',
        labels: args.naming.labels('network'),
        ...(args.ipam ? { ipamConfigs: [args.ipam] } : {}),
      },
      { parent: this },
    );
    this.network = network;
    this.networkName = network.name;
    this.registerOutputs({ networkName: this.networkName });
  }
}
