// The service replicas: one image built from service/ and `replicas` containers. A replica's name and
// SERVICE_ID are its number plus the short id of the image it runs, so changing the count adds or removes
// the highest-numbered containers and leaves the others untouched, and a new image (a code deploy)
// replaces every replica create-before-delete: the new ones start next to the old ones, the engine waits
// until each is in Consul's passing set (what the balancer follows), and only at the end of the
// deployment does it stop the old ones, which deregister and drain within their grace.
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import { REPLICA_DRAIN_SECONDS, roleOptions, stackContainer } from './container-settings';
import { bundledImage, type BundledRoleArgs } from './bundled-role';
import { replicaPort } from './vm-ports';

const SERVICE_PORT = 8080;

/**
 * The engine's readiness gate (`wait`): Docker's health check runs service/readiness-probe.ts, healthy
 * only once this replica answers /health and Consul lists it as passing. Probed every 2 s; the new
 * replica's start-up failures do not count for 60 s.
 */
const READINESS_CHECK: docker.types.input.ContainerHealthcheck = {
  tests: ['CMD', 'node', '/app/readiness-probe.js'],
  interval: '2s',
  timeout: '3s',
  retries: 3,
  startPeriod: '60s',
};
/** Seconds the engine waits for a new replica to become ready before the deployment fails. */
const READY_TIMEOUT_SECONDS = 120;

export interface ServiceReplicasArgs extends BundledRoleArgs {
  /** The replicas' numbers (1..N on one host; on a VM, those placed on it). */
  indices: number[];
  /**
   * On a VM: its private address. Replica n then listens on and publishes replicaPort(n) there and
   * advertises that address and port to Consul, which is how the balancer on another VM reaches it.
   */
  publishOn?: string;
}

export class ServiceReplicas extends pulumi.ComponentResource {
  /** Container names, which are also the replicas' SERVICE_IDs in Consul. */
  readonly names: pulumi.Output<string[]>;

  constructor(name: string, args: ServiceReplicasArgs, opts?: pulumi.ComponentResourceOptions) {
    const { component, dependsOn } = roleOptions(opts);
    super('cnp:infra:ServiceReplicas', name, {}, component);
    const { naming, collector } = args;

    const image = bundledImage(`${name}-image`, 'service', args, this);

    const names: pulumi.Output<string>[] = [];
    for (const index of args.indices) {
      const containerName = image.repoDigest.apply((id) => naming.versionedName(`replica-${index}`, id));
      const port = args.publishOn === undefined ? SERVICE_PORT : replicaPort(index);
      stackContainer(
        `${name}-${index}`,
        { naming, role: 'replica', extraLabels: { replica: String(index) }, logs: collector },
        {
          name: containerName,
          image: image.repoDigest,
          // On one host SERVICE_ADDRESS stays unset: the service advertises its own address on the stack network.
          envs: [
            `SERVICE_NAME=${args.serviceName}`,
            pulumi.interpolate`SERVICE_ID=${containerName}`,
            `CONSUL_HTTP_ADDR=${args.consulHttpAddr}`,
            `PORT=${port}`,
            'HOST=0.0.0.0',
            ...(args.publishOn === undefined ? [] : [`SERVICE_ADDRESS=${args.publishOn}`]),
          ],
          ...(args.publishOn === undefined ? {} : { ports: [{ internal: port, external: port, ip: args.publishOn, protocol: 'tcp' }] }),
          networksAdvanced: [{ name: args.networkName, aliases: [`replica-${index}`] }],
          healthcheck: READINESS_CHECK,
          wait: true,
          waitTimeout: READY_TIMEOUT_SECONDS,
          // The provider force-removes a container unless this is set: give it time to deregister and drain.
          destroyGraceSeconds: REPLICA_DRAIN_SECONDS,
          stopSignal: 'SIGTERM',
        },
        // On one host not deleted before replaced: the name changes with the image, so old and new coexist
        // until the old is deleted. On a VM the published port is the replica's and cannot be bound twice.
        { parent: this, deleteBeforeReplace: args.publishOn !== undefined, dependsOn },
      );
      names.push(containerName);
    }
    this.names = pulumi.all(names);

    this.registerOutputs({ names: this.names });
  }
}
