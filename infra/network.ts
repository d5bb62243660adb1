// The stack's private network: containers find each other by name on it.
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import type { StackNaming } from './naming';

export interface StackNetworkArgs {
  naming: StackNaming;
}

export class StackNetwork extends pulumi.ComponentResource {
  /** The Docker network's name, for containers' `networksAdvanced`. */
  readonly networkName: pulumi.Output<string>;

  constructor(name: string, args: StackNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super('cnp:infra:StackNetwork', name, {}, opts);
    const network = new docker.Network(
      `${name}-bridge`,
      {
        name: args.naming.objectName('net'),
        driver: 'bridge',
        labels: args.naming.labels('network'),
      },
      { parent: this },
    );
    this.networkName = network.name;
    this.registerOutputs({ networkName: this.networkName });
  }
}
