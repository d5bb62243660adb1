// The service replicas: one image built from service/ and `replicas` containers. A replica's name,
// SERVICE_ID and every input derive from its number alone, so changing the count adds or removes
// the highest-numbered containers and leaves the others untouched.
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import { MEMORY_MB, REPLICA_DRAIN_SECONDS, RESTART_POLICY, httpHealthcheck } from './container-settings';
import { bundledImage, type BundledRoleArgs } from './local-image';

const SERVICE_PORT = 8080;

export interface ServiceReplicasArgs extends BundledRoleArgs {
  replicas: number;
}

export class ServiceReplicas extends pulumi.ComponentResource {
  readonly names: string[];

  constructor(name: string, args: ServiceReplicasArgs, opts?: pulumi.ComponentResourceOptions) {
    super('cnp:infra:ServiceReplicas', name, {}, opts);
    const { naming, collector } = args;

    const image = bundledImage(`${name}-image`, 'service', args, this);

    this.names = [];
    for (let index = 1; index <= args.replicas; index++) {
      const containerName = naming.objectName(`replica-${index}`);
      new docker.Container(
        `${name}-${index}`,
        {
          name: containerName,
          image: image.repoDigest,
          // SERVICE_ADDRESS stays unset: the service advertises its own address on the stack network.
          envs: [
            `SERVICE_NAME=${args.serviceName}`,
            `SERVICE_ID=${containerName}`,
            `CONSUL_HTTP_ADDR=${args.consulHttpAddr}`,
            `PORT=${SERVICE_PORT}`,
            'HOST=0.0.0.0',
          ],
          networksAdvanced: [{ name: args.networkName, aliases: [`replica-${index}`] }],
          healthcheck: httpHealthcheck(`http://127.0.0.1:${SERVICE_PORT}/health`),
          restart: RESTART_POLICY,
          memory: MEMORY_MB.replica,
          labels: naming.labels('replica', { replica: String(index) }),
          // The provider force-removes a container unless this is set: give it time to deregister and drain.
          destroyGraceSeconds: REPLICA_DRAIN_SECONDS,
          stopSignal: 'SIGTERM',
          ...collector.logSettingsFor(containerName),
        },
        { parent: this, deleteBeforeReplace: true, dependsOn: [collector.container, ...args.dependsOn] },
      );
      this.names.push(containerName);
    }

    this.registerOutputs({ names: this.names });
  }
}
