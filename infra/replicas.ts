// The replicas of a service: one image built from the service's folder and one container per replica number
// (hello's from service/, the activity service's from activity/; ReplicaKind says what differs). A
// replica's name and SERVICE_ID are its number plus the short id of the image it runs, so changing the
// count adds or removes the highest-numbered containers and leaves the others untouched, and a new image (a
// code deploy) replaces every replica create-before-delete: the new ones start next to the old ones, the
// engine waits until each is healthy (for hello: in Consul's passing set, what the balancer follows), and
// only at the end of the deployment does it stop the old ones, which deregister and drain within their grace.
// On a VM the same: the replicas run in the VM's network and each listens on the first free port of its
// service's range (infra/vm-ports.ts), so an old replica and its successor never want the same port.
import { createHash } from 'node:crypto';
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import { REPLICA_DRAIN_SECONDS, roleOptions, stackContainer } from './container-settings';
import { bundledImage, CONSUL_TOKEN_FILE_SETTING, type BundledRoleArgs } from './bundled-role';
import { ACTIVITY_PORTS, portRangeText, REPLICA_PORTS } from './vm-ports';
import { BROKER_SERVICE_NAME } from '../lib/service-name';

const SERVICE_PORT = 8080;

/**
 * The engine's readiness gate (`wait`): Docker's health check runs replica/readiness-probe.ts (bundled into
 * both services' images), healthy only once Consul lists the replica as passing under its SERVICE_NAME and it
 * answers /health on the port it registered there. Probed every 2 s; the new replica's start-up failures do
 * not count for 60 s.
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

/** What differs between the services' replicas; everything else (names, hardening, logs, drain) is shared. */
export interface ReplicaKind {
  /** The folder its image is built from (a bundle made by `npm run build`), also the image's short name. */
  folder: 'service' | 'activity';
  /** Its containers' role: their label and hardening (ROLE_SETTINGS). */
  role: 'replica' | 'activity';
  /** The component's name: `replicas` or `activity` on one host, `<vm>-replicas` or `<vm>-activity` on VMs. */
  group: 'replicas' | 'activity';
  /** Replica n's container is `<prefix>-<stem>-<n>-<image id>`, with the network alias `<stem>-<n>` on one host. */
  stem: string;
  /** On a VM every replica of the service listens on the first free one of these ports. */
  vmPorts: readonly number[];
}

export const HELLO_REPLICAS: ReplicaKind = {
  folder: 'service',
  role: 'replica',
  group: 'replicas',
  stem: 'replica',
  vmPorts: REPLICA_PORTS,
};

export const ACTIVITY_REPLICAS: ReplicaKind = {
  folder: 'activity',
  role: 'activity',
  group: 'activity',
  stem: 'activity',
  vmPorts: ACTIVITY_PORTS,
};

export interface ServiceReplicasArgs extends BundledRoleArgs {
  /** The service's own settings (`NAME=value`), beside those every replica gets. */
  settings?: string[];
  /** What else it reads at start and is named after: its certificate on a VM, so a renewed one rolls the replicas. */
  certificate?: pulumi.Input<string>;
  /** Which service's replicas (default hello's). */
  kind?: ReplicaKind;
  /** The replicas' numbers (1..N on one host; on a VM, those placed on it). */
  indices: number[];
  /**
   * On a VM: its private address. The replicas then run in the VM's network, each listening there on the
   * first free port of kind.vmPorts, and advertise that address and port to Consul, which is how the
   * balancer on another VM reaches them.
   */
  vmAddress?: string;
}

/** What a replica's name is versioned by: its image's id, or with settings of its own an id made of both. */
export function replicaVersion(imageId: string, settings: readonly string[]): string {
  if (settings.length === 0) return imageId;
  return `sha256:${createHash('sha256')
    .update(JSON.stringify([imageId, settings]))
    .digest('hex')}`;
}

export class ServiceReplicas extends pulumi.ComponentResource {
  /** Container names, which are also the replicas' SERVICE_IDs in Consul. */
  readonly names: pulumi.Output<string[]>;

  constructor(name: string, args: ServiceReplicasArgs, opts?: pulumi.ComponentResourceOptions) {
    const { component, dependsOn } = roleOptions(opts);
    super('cnp:infra:ServiceReplicas', name, {}, component);
    const { naming, collector } = args;
    const kind = args.kind ?? HELLO_REPLICAS;

    const image = bundledImage(`${name}-image`, kind.folder, args, this);

    // Old and new run side by side (create before delete), so the name changes with whatever replaces the
    // container: the image, and the service's own settings and certificate when it has any.
    const version = pulumi
      .all([image.repoDigest, args.certificate ?? ''])
      .apply(([id, certificate]) => replicaVersion(id, [...(args.settings ?? []), ...(certificate ? [certificate] : [])]));
    const names: pulumi.Output<string>[] = [];
    for (const index of args.indices) {
      const containerName = version.apply((id) => naming.versionedName(`${kind.stem}-${index}`, id));
      const onVm = args.vmAddress !== undefined;
      stackContainer(
        `${name}-${index}`,
        { naming, role: kind.role, extraLabels: { replica: String(index) }, logs: collector },
        {
          name: containerName,
          image: image.repoDigest,
          // SERVICE_ADDRESS stays unset: the service advertises HOST on a VM, and its own address on the stack
          // network on one host.
          envs: [
            `SERVICE_NAME=${args.serviceName}`,
            pulumi.interpolate`SERVICE_ID=${containerName}`,
            `CONSUL_HTTP_ADDR=${args.consulHttpAddr}`,
            CONSUL_TOKEN_FILE_SETTING,
            // Both services find the broker in Consul under this name (hello's outbox relay publishes, activity subscribes).
            `NATS_SERVICE=${BROKER_SERVICE_NAME}`,
            `PORT=${onVm ? portRangeText(kind.vmPorts) : SERVICE_PORT}`,
            `HOST=${args.vmAddress ?? '0.0.0.0'}`,
            ...(args.settings ?? []),
          ],
          // On a VM no port is published: the replica binds one on the private address itself, in the VM's network.
          ...(onVm ? { networkMode: 'host' } : { networksAdvanced: [{ name: args.networkName, aliases: [`${kind.stem}-${index}`] }] }),
          volumes: [args.secrets],
          healthcheck: READINESS_CHECK,
          wait: true,
          waitTimeout: READY_TIMEOUT_SECONDS,
          // The provider force-removes a container unless this is set: give it time to deregister and drain.
          destroyGraceSeconds: REPLICA_DRAIN_SECONDS,
          stopSignal: 'SIGTERM',
        },
        // Not deleted before replaced: the name changes with the image and the port is not fixed (one host: none
        // published; a VM: the first free one), so old and new coexist until the old is deleted.
        { parent: this, deleteBeforeReplace: false, dependsOn },
      );
      names.push(containerName);
    }
    this.names = pulumi.all(names);

    this.registerOutputs({ names: this.names });
  }
}
