// The broker: a NATS server with JetStream (the user events' stream), built from broker/ on natsImage,
// its store on a named volume, and the step that registers it in Consul, which nats-server cannot do
// itself. Services find it there as `nats` (NATS_SERVICE) among the passing instances. Three broker VMs
// run one each, routed to each other as one JetStream cluster (BrokerArgs.cluster).
import fs from 'node:fs';
import path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import * as command from '@pulumi/command';
import { roleOptions, stackContainer, type LogDestination } from './container-settings';
import { clusterFlags } from '../lib/broker-service';
import { CONSUL_TOKEN_ENV } from '../lib/consul-address';
import { hostPort } from '../lib/endpoints';
import { localImage } from './local-image';
import { SECRETS_DIR } from './secret-files';
import type { StackNaming } from './naming';
import { hashSources } from '../lib/sources';
import { NATS_CLIENT_PORT, NATS_CLUSTER_PORT, NATS_MONITOR_PORT } from './vm-ports';

/** Where broker/Dockerfile gives the unprivileged user a directory; the volume is mounted there. */
const STORE_DIR = '/data';
/** Where broker/Dockerfile puts broker/nats-server.conf. */
const CONFIG_FILE = '/etc/cnp/nats-server.conf';

export interface BrokerArgs {
  naming: StackNaming;
  networkName: pulumi.Input<string>;
  collector: LogDestination;
  repoRoot: string;
  /** The image broker/Dockerfile builds on (BASE_IMAGE): nats:2.9-alpine, or cnp-nats:2.9 offline. */
  natsImage: string;
  /**
   * On a VM: its private address, where the client and monitoring ports are published (the other VMs'
   * services and this VM's Consul agent reach it there). On one host nothing is published.
   */
  publishOn?: string;
  /** The platform its image is built for (a VM's, from its bootstrap); unset on one host (local-image.ts). */
  platform?: pulumi.Input<string>;
  /** With three broker VMs: this one's member name and the other brokers' private addresses. */
  cluster?: BrokerCluster;
  /**
   * On VMs: its secret files (brokerTlsFiles), mounted read-only: nats-server then reads BROKER_TLS_FILES.config,
   * which turns TLS on for its clients (and its routes, in a cluster).
   */
  tlsSecrets?: docker.types.input.ContainerVolume;
  /** A digest of those files: nats-server reads them at start, so new ones restart it. */
  filesVersion?: pulumi.Input<string>;
}

/** The broker's secret files on a VM, by name (its secrets directory, infra/secret-files.ts). */
export const BROKER_TLS_FILES = { config: 'nats.conf', ca: 'ca.pem', cert: 'tls-cert.pem', key: 'tls-key.pem' } as const;

/**
 * The broker's configuration with TLS: broker/nats-server.conf (its bounds) and TLS for its clients on 4222,
 * with the broker's certificate, and, in a cluster, for its routes on 6222, both ways (each member presents
 * its certificate and verifies its peer's with the stack's CA). The monitoring port stays plain HTTP: health
 * and counters, no event.
 */
export function brokerTlsConfig(repoRoot: string, secretsDir: string, cluster: boolean): string {
  const files = (indent: string) =>
    [
      `${indent}cert_file: "${secretsDir}/${BROKER_TLS_FILES.cert}"`,
      `${indent}key_file: "${secretsDir}/${BROKER_TLS_FILES.key}"`,
      `${indent}ca_file: "${secretsDir}/${BROKER_TLS_FILES.ca}"`,
      `${indent}timeout: 5`,
    ].join('\n');
  return [
    fs.readFileSync(path.join(repoRoot, 'broker', 'nats-server.conf'), 'utf8').trimEnd(),
    '',
    "# TLS with the stack's CA (infra/broker.ts brokerTlsConfig): clients verify the broker's certificate.",
    'tls {',
    files('  '),
    '}',
    ...(cluster
      ? [
          'cluster {',
          "  # Routes: both ends present a certificate of the stack and verify the other's.",
          '  tls {',
          files('    '),
          '    verify: true',
          '  }',
          '}',
        ]
      : []),
    '',
  ].join('\n');
}

export interface BrokerCluster {
  /** The cluster's name, the same on every member. */
  name: string;
  /** This member's name, unique in the cluster (JetStream's Raft groups know their peers by it). */
  serverName: string;
  /** The other members' private addresses: this one routes to each on NATS_CLUSTER_PORT. */
  peers: string[];
}

/**
 * A broker VM's cluster flags (lib/broker-service.ts clusterFlags): it listens for routes on every address and
 * advertises the VM's private one (its own, on the stack network, means nothing on another VM).
 */
function vmClusterFlags(cluster: BrokerCluster, privateAddress: string): string[] {
  return clusterFlags({
    name: cluster.name,
    listen: hostPort('0.0.0.0', NATS_CLUSTER_PORT),
    advertise: hostPort(privateAddress, NATS_CLUSTER_PORT),
    routes: cluster.peers.map((peer) => hostPort(peer, NATS_CLUSTER_PORT)),
  });
}

export class Broker extends pulumi.ComponentResource {
  readonly containerName: string;
  readonly container: docker.Container;
  readonly dataVolume: docker.Volume;
  /** Where clients and the Consul agent's check reach it: the container name on the stack network, or the VM's private address. */
  readonly address: string;

  constructor(name: string, args: BrokerArgs, opts?: pulumi.ComponentResourceOptions) {
    const { component, dependsOn } = roleOptions(opts);
    super('cnp:infra:Broker', name, {}, component);
    const { naming, collector } = args;
    this.containerName = naming.objectName('nats');
    this.address = args.publishOn ?? this.containerName;

    const image = localImage(
      `${name}-image`,
      { naming, repoRoot: args.repoRoot, folder: 'broker', baseImage: args.natsImage, platform: args.platform },
      this,
    );

    // The stream outlives the container: a new broker (a new image, a restart) finds its events there.
    this.dataVolume = new docker.Volume(
      `${name}-data`,
      { name: naming.objectName('nats-data'), labels: naming.labels('broker') },
      { parent: this },
    );

    const published = (port: number) => ({ internal: port, external: port, ip: args.publishOn!, protocol: 'tcp' });
    const cluster = args.cluster;
    if (cluster && args.publishOn === undefined) throw new Error('a broker cluster member runs on a VM: publishOn is its private address');
    this.container = stackContainer(
      `${name}-container`,
      { naming, role: 'broker', logs: collector },
      {
        name: this.containerName,
        image: image.repoDigest,
        entrypoints: ['nats-server'],
        command: [
          // Memory and disk bounds of JetStream (broker/nats-server.conf); the flags below win over it.
          `--config=${args.tlsSecrets ? `${SECRETS_DIR}/${BROKER_TLS_FILES.config}` : CONFIG_FILE}`,
          '--jetstream',
          `--store_dir=${STORE_DIR}`,
          `--port=${NATS_CLIENT_PORT}`,
          `--http_port=${NATS_MONITOR_PORT}`,
          // A stable name in its logs and monitoring output (the default is a new random id per start).
          `--server_name=${cluster?.serverName ?? this.containerName}`,
          ...(cluster ? vmClusterFlags(cluster, args.publishOn!) : []),
        ],
        ...(args.publishOn === undefined
          ? {}
          : { ports: [NATS_CLIENT_PORT, NATS_MONITOR_PORT, ...(cluster ? [NATS_CLUSTER_PORT] : [])].map(published) }),
        networksAdvanced: [{ name: args.networkName, aliases: ['nats'] }],
        volumes: [{ volumeName: this.dataVolume.name, containerPath: STORE_DIR }, ...(args.tlsSecrets ? [args.tlsSecrets] : [])],
        ...(args.filesVersion ? { envs: [pulumi.interpolate`SECRET_FILES_VERSION=${args.filesVersion}`] } : {}),
        // /healthz answers 200 once the server and JetStream are up (in a cluster: once it follows a metadata
        // leader, which takes two members, and its streams are current); wget is in the image (broker/Dockerfile).
        healthcheck: {
          tests: ['CMD', 'wget', '-q', '-T', '2', '-O', '/dev/null', `http://127.0.0.1:${NATS_MONITOR_PORT}/healthz`],
          interval: '5s',
          timeout: '3s',
          retries: 3,
          startPeriod: '10s',
        },
        wait: true,
        // A cluster member is healthy only once a second member is up: the VMs' brokers start in parallel, but
        // each after its own VM's image build.
        waitTimeout: cluster ? 180 : 60,
        // nats-server shuts down on SIGTERM, flushing the store.
        destroyGraceSeconds: 10,
      },
      { parent: this, dependsOn },
    );

    this.registerOutputs({ containerName: this.containerName, address: this.address });
  }
}

export interface BrokerRegistrationArgs {
  repoRoot: string;
  /** The HTTP API of the Consul agent on the broker's host, as this machine reaches it (or, with `ssh`, as that host does). */
  consulHttpAddr: string;
  /** The broker role's token (lib/consul-acl.ts brokerRole): the agent keeps it with the service. */
  token: pulumi.Output<string>;
  /** Broker.address. */
  brokerAddress: string;
  /** Re-run when these change: a new agent container or data volume has lost its local services. */
  agentIdentity: pulumi.Input<string>[];
  /** On VMs: through an SSH local forward to the broker's VM (lib/ssh-tunnel.ts), as the ACL init step does. */
  ssh?: { user: string; host: string; port: number; opts: string[] };
}

/** The files the registration runs (all of lib/, as the bundles count it); a change re-runs it. */
const REGISTRATION_SOURCES = ['infra/register-broker.ts', 'lib'];

/**
 * The step that registers the broker as agent service `nats` on the agent of its host, with an HTTP check
 * on its /healthz: a local.Command running infra/register-broker.ts with tsx on the machine that runs
 * `pulumi up`, after the ACL init step (which creates the token it registers with). Registering again
 * replaces the same service ID, so a re-run changes nothing. The agent keeps API-registered services in
 * its data directory across restarts.
 */
export function brokerRegistration(name: string, args: BrokerRegistrationArgs, opts: pulumi.CustomResourceOptions): command.local.Command {
  return new command.local.Command(
    name,
    {
      create: 'node --import tsx infra/register-broker.ts',
      dir: path.resolve(args.repoRoot),
      environment: {
        CONSUL_HTTP_ADDR: args.consulHttpAddr,
        [CONSUL_TOKEN_ENV]: args.token,
        BROKER_ADDRESS: args.brokerAddress,
        BROKER_PORT: String(NATS_CLIENT_PORT),
        BROKER_MONITOR_PORT: String(NATS_MONITOR_PORT),
        ...(args.ssh
          ? {
              ACL_SSH_TARGET: `${args.ssh.user}@${args.ssh.host}`,
              ACL_SSH_PORT: String(args.ssh.port),
              ACL_SSH_OPTS: JSON.stringify(args.ssh.opts),
            }
          : {}),
      },
      triggers: [hashSources(args.repoRoot, REGISTRATION_SOURCES), ...args.agentIdentity],
    },
    opts,
  );
}
