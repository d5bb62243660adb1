// The log collector: syslog-ng built from collector/, a volume for its files, and the syslog port
// published on the engine host's loopback, because Docker's log driver runs in the daemon, outside the network.
// On VMs the port is on the collector VM's private address and speaks TLS only (infra/syslog-tls.ts).
import net from 'node:net';
import * as pulumi from '@pulumi/pulumi';
import * as docker from '@pulumi/docker';
import { roleOptions, stackContainer, type LogDestination, type LogSettings } from './container-settings';
import { hostPort } from '../lib/endpoints';
import type { StackNaming } from './naming';
import { localImage } from './local-image';
import { SECRETS_DIR, SecretFiles } from './secret-files';
import { COLLECTOR_TLS_FILES, syslogTlsOptions, type DaemonTlsPaths } from './syslog-tls';

/** Where syslog-ng listens and writes inside its container (set by collector/Dockerfile). */
export const COLLECTOR_SYSLOG_PORT = 5514;
export const COLLECTOR_LOG_DIR = '/var/log/stack';
const CONTROL_SOCKET = '/run/syslog-ng/collector.ctl';
/** The listener with TLS and client certificates, in the image (collector/Dockerfile, syslog-ng.conf). */
const TLS_SOURCE = '/etc/syslog-ng/collector/source-tls.conf';

/**
 * Where the syslog port is published on one host: always the loopback address of the bind address's
 * family, never bindAddress itself. Every sender is the local daemon's log driver, which reaches loopback;
 * a bindAddress that exposes the balancer (0.0.0.0, a LAN address) must not expose an unauthenticated
 * syslog listener with it, where anyone who reaches it can write lines under any container's name.
 * On VMs it is the collector VM's private address (hosts.ts), never a wildcard.
 */
export function collectorPublishAddress(bindAddress: string): string {
  return net.isIPv6(bindAddress) ? '::1' : '127.0.0.1';
}

export interface LogCollectorArgs {
  naming: StackNaming;
  networkName: pulumi.Input<string>;
  repoRoot: string;
  baseImage: string;
  /** Where the syslog port is published: loopback on one host (collectorPublishAddress), the private address on a VM. */
  publishAddress: string;
  /** Host port for the syslog listener, on publishAddress. */
  collectorPort: number;
  /** Set when the engine is remote, so the logs command reaches the right daemon. */
  dockerHost: string;
  /** The platform its image is built for (a VM's, from its bootstrap); unset on one host (local-image.ts). */
  platform?: pulumi.Input<string>;
  /**
   * On VMs: TLS only, client certificates required (infra/syslog-tls.ts): the CA's certificate, the collector's
   * own certificate and key, and where every VM's daemon reads its client files.
   */
  tls?: { ca: pulumi.Input<string>; cert: pulumi.Input<string>; key: pulumi.Input<string>; daemonFiles: DaemonTlsPaths };
}

export class LogCollector extends pulumi.ComponentResource implements LogDestination {
  readonly containerName: string;
  readonly container: docker.Container;
  /** Other containers depend on it, so the log driver finds the collector listening. */
  readonly dependsOn: pulumi.Resource[];
  readonly logVolumeName: pulumi.Output<string>;
  /** A shell command that follows the combined log. */
  readonly logsCommand: string;
  private readonly syslogAddress: string;
  private readonly daemonFiles?: DaemonTlsPaths;

  constructor(name: string, args: LogCollectorArgs, opts?: pulumi.ComponentResourceOptions) {
    const { component, dependsOn } = roleOptions(opts);
    super('cnp:infra:LogCollector', name, {}, component);
    const { naming } = args;
    this.containerName = naming.objectName('collector');
    const { publishAddress, tls } = args;
    this.syslogAddress = `${tls ? 'tcp+tls' : 'tcp'}://${hostPort(publishAddress, args.collectorPort)}`;
    this.daemonFiles = tls?.daemonFiles;

    const image = localImage(
      `${name}-image`,
      { naming, repoRoot: args.repoRoot, folder: 'collector', baseImage: args.baseImage, platform: args.platform },
      this,
    );

    const volume = new docker.Volume(
      `${name}-logs`,
      { name: naming.objectName('logs'), labels: naming.labels('collector') },
      { parent: this },
    );
    this.logVolumeName = volume.name;

    // Its certificate and key reach it as files of its own role (the host's other holder belongs to its Consul
    // agent, which is declared after the collector, since it logs here).
    const secrets = tls
      ? new SecretFiles(
          `${name}-secrets`,
          {
            naming,
            image: image.repoDigest,
            holderName: 'collector-secrets',
            files: {
              collector: { [COLLECTOR_TLS_FILES.ca]: tls.ca, [COLLECTOR_TLS_FILES.cert]: tls.cert, [COLLECTOR_TLS_FILES.key]: tls.key },
            },
          },
          { parent: this },
        )
      : undefined;

    // No `logs`: the collector cannot log to itself.
    this.container = stackContainer(
      `${name}-container`,
      { naming, role: 'collector' },
      {
        name: this.containerName,
        image: image.repoDigest,
        ports: [{ internal: COLLECTOR_SYSLOG_PORT, external: args.collectorPort, ip: publishAddress, protocol: 'tcp' }],
        networksAdvanced: [{ name: args.networkName, aliases: ['collector'] }],
        volumes: [{ volumeName: volume.name, containerPath: COLLECTOR_LOG_DIR }, ...(secrets ? [secrets.volumeFor('collector')] : [])],
        ...(secrets
          ? {
              envs: [
                `COLLECTOR_SOURCE=${TLS_SOURCE}`,
                `COLLECTOR_TLS_DIR=${SECRETS_DIR}`,
                // syslog-ng reads its files at start: new files replace it.
                pulumi.interpolate`SECRET_FILES_VERSION=${secrets.versionOf('collector')}`,
              ],
            }
          : {}),
        healthcheck: {
          tests: ['CMD', 'syslog-ng-ctl', 'stats', `--control=${CONTROL_SOCKET}`],
          interval: '5s',
          timeout: '3s',
          retries: 3,
          startPeriod: '5s',
        },
        // Other containers' log drivers connect when they start: wait until syslog-ng answers.
        wait: true,
        waitTimeout: 60,
        // Its own (small) log stays local and bounded.
        logDriver: 'json-file',
        logOpts: { 'max-size': '10m', 'max-file': '3' },
        destroyGraceSeconds: 5,
      },
      // After the holder has written the files it reads.
      { parent: this, dependsOn: [...dependsOn, ...(secrets ? [secrets.holder] : [])] },
    );
    this.dependsOn = [this.container];

    const dockerCli = args.dockerHost ? `docker -H ${args.dockerHost}` : 'docker';
    // all.log is a link to today's combined file (collector/syslog-ng.conf): -F follows it to the next day's.
    this.logsCommand = `${dockerCli} exec ${this.containerName} tail -n 100 -F ${COLLECTOR_LOG_DIR}/all.log`;
    this.registerOutputs({
      containerName: this.containerName,
      logVolumeName: this.logVolumeName,
      logsCommand: this.logsCommand,
    });
  }

  /** Log settings for a container whose logs should land in `<tag>.log` and `all.log`. */
  logSettingsFor(tag: pulumi.Input<string>): LogSettings {
    return {
      logDriver: 'syslog',
      logOpts: {
        'syslog-address': this.syslogAddress,
        'syslog-format': 'rfc5424',
        tag,
        // A collector outage must not block the container's writes to stdout.
        mode: 'non-blocking',
        ...(this.daemonFiles ? syslogTlsOptions(this.daemonFiles) : {}),
      },
    };
  }
}
