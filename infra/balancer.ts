// The balancer: nginx plus the TypeScript watcher that follows Consul, built from balancer/, with its public
// listener published on the bind address (plain HTTP, or HTTPS beside a redirect or nothing: infra/public-tls.ts)
// and its admin listener on adminAddress (the bind address on one host, loopback by default; a VM's private
// address).
//
// Two containers, so that replacing the balancer refuses no connection (infra/README.md, "The balancer
// hands over"): `ports` holds the network namespace, the published ports and the stack network, and is not
// replaced when the balancer is; the balancer proper (`gateway`) joins that namespace and listens with
// SO_REUSEPORT. A new gateway starts next to the old one on the same ports, the engine waits until it is
// healthy, and only then stops the old one, whose nginx stops accepting and finishes what it holds;
// net.ipv4.tcp_migrate_req hands the connections still queued on its sockets to the new one.
import { createHash } from 'node:crypto';
import * as pulumi from '@pulumi/pulumi';
import { ROLE_SETTINGS, roleOptions, stackContainer } from './container-settings';
import { hostPort, httpUrl } from '../lib/endpoints';
import { bundledImage, CONSUL_TOKEN_FILE_SETTING, type BundledRoleArgs } from './bundled-role';
import { stackRouteOwners } from './route-grants';
import { ADMIN_TOKEN_FILE, SECRETS_DIR } from './secret-files';
import { PUBLIC_TLS_FILES, type PublicTls } from './public-tls';
import { ADMIN_TLS_FILES, UPSTREAM_CA_FILE } from './consul-tls';

/** Plain HTTP: the public routes, or with TLS the redirect to HTTPS. */
const LISTEN_PORT = 8080;
/** HTTPS, with TLS only; published always, so that turning TLS on keeps the holder (and every connection). */
const HTTPS_PORT = 8443;
const ADMIN_PORT = 8081;
/** The gateway's WORK_DIR (as in balancer/Dockerfile): its health probe finds the admin socket there. */
const WORK_DIR = '/tmp/balancer';
/** Seconds a new gateway has to become healthy before the deployment fails (the old one keeps serving). */
const READY_TIMEOUT_SECONDS = 60;
/** Seconds an old gateway gets after SIGTERM: its watcher gives nginx 10 s to finish (balancer/nginx.ts stop). */
const DRAIN_SECONDS = 15;

/**
 * The namespace holder's only process: it waits, and exits at once on SIGTERM (sh as PID 1 has no default
 * handler, so the trap is what lets `docker stop` end it without waiting out the grace).
 */
const HOLD = ['sh', '-c', 'trap "exit 0" TERM INT; while :; do sleep 3600 & wait $!; done'];

export interface BalancerArgs extends BundledRoleArgs {
  bindAddress: string;
  /** Host port for the balancer, on bindAddress: plain HTTP, or with tls the redirect to HTTPS. */
  balancerPort: number;
  /** Host port for the balancer's HTTPS, on bindAddress. */
  balancerHttpsPort: number;
  /** HTTPS at the edge (its files are in the balancer's secrets), or undefined for plain HTTP. */
  tls?: PublicTls;
  /** HTTPS to the replicas, verified with the CA in its secrets (on VMs, infra/consul-tls.ts). */
  upstreamTls?: boolean;
  /** HTTPS on the admin listener, with the certificate (here for the gateway's name) in its secrets (on VMs, infra/consul-tls.ts). */
  adminTls?: { cert: pulumi.Input<string> };
  /** Where the admin listener (status, X-Upstream-Addr, the evidence page) is published; never a public address. */
  adminAddress: string;
  /** Host port for the balancer's admin listener, on adminAddress. */
  balancerAdminPort: number;
  /** Requests per second per client address on the public listener (0 = no limit): RATE_LIMIT_PER_CLIENT. */
  rateLimitPerClient: number;
}

export class Balancer extends pulumi.ComponentResource {
  /** The container that publishes the ports (and names the balancer's log file). */
  readonly containerName: string;
  /** The running balancer's container: `<prefix>-balancer-<version>`, a new name for every replacement. */
  readonly gatewayName: pulumi.Output<string>;
  readonly url: string;
  readonly adminUrl: string;

  constructor(name: string, args: BalancerArgs, opts?: pulumi.ComponentResourceOptions) {
    const { component, dependsOn } = roleOptions(opts);
    super('cnp:infra:Balancer', name, {}, component);
    const { naming, collector } = args;
    this.containerName = naming.objectName('balancer');
    this.url = args.tls ? `https://${hostPort(args.bindAddress, args.balancerHttpsPort)}` : httpUrl(args.bindAddress, args.balancerPort);
    this.adminUrl = args.adminTls
      ? `https://${hostPort(args.adminAddress, args.balancerAdminPort)}`
      : httpUrl(args.adminAddress, args.balancerAdminPort);

    const image = bundledImage(`${name}-image`, 'balancer', args, this);

    const ports = stackContainer(
      `${name}-ports`,
      { naming, role: 'balancer-ports', logs: collector },
      {
        name: this.containerName,
        // Any image with sh will do; the balancer's is at hand on every engine. Its changes are ignored
        // (below): the holder runs nothing of it, and replacing it would close the ports.
        image: image.repoDigest,
        command: HOLD,
        healthcheck: { tests: ['NONE'] },
        // The admin port is published on adminAddress only (loopback by default, a VM's private address), like Consul's UI.
        ports: [
          { internal: LISTEN_PORT, external: args.balancerPort, ip: args.bindAddress, protocol: 'tcp' },
          { internal: HTTPS_PORT, external: args.balancerHttpsPort, ip: args.bindAddress, protocol: 'tcp' },
          { internal: ADMIN_PORT, external: args.balancerAdminPort, ip: args.adminAddress, protocol: 'tcp' },
        ],
        networksAdvanced: [{ name: args.networkName, aliases: ['balancer'] }],
        // Connections queued on a closing listener move to another of its SO_REUSEPORT group instead of being
        // reset (Linux 5.14+). Per network namespace: set here for the balancer's own, not for the host.
        sysctls: { 'net.ipv4.tcp_migrate_req': '1' },
        destroyGraceSeconds: 10,
      },
      // The one container the balancer had before it was split in two: an existing stack's becomes this holder
      // (a replacement, the old one deleted first, as its ports cannot be published twice).
      { parent: this, ignoreChanges: ['image'], aliases: [{ name: `${name}-container` }] },
    );

    const settings = [
      `CONSUL_HTTP_ADDR=${args.consulHttpAddr}`,
      // No SERVICE_NAME: the gateway follows every service that asks for a route (balancer/README.md), and
      // serves it only the paths the deploy grants it.
      `ROUTE_OWNERS=${stackRouteOwners(args.serviceName)}`,
      `RATE_LIMIT_PER_CLIENT=${args.rateLimitPerClient}`,
      ...(args.tls
        ? [
            `LISTEN_PORT=${HTTPS_PORT}`,
            `TLS_CERT_FILE=${SECRETS_DIR}/${PUBLIC_TLS_FILES.cert}`,
            `TLS_KEY_FILE=${SECRETS_DIR}/${PUBLIC_TLS_FILES.key}`,
            `PUBLIC_HTTPS_PORT=${args.balancerHttpsPort}`,
            `PUBLIC_HTTP=${args.tls.publicHttp}`,
            ...(args.tls.publicHttp === 'redirect' ? [`HTTP_REDIRECT_PORT=${LISTEN_PORT}`] : []),
          ]
        : [`LISTEN_PORT=${LISTEN_PORT}`]),
      'LISTEN_ADDRESS=0.0.0.0',
      `ADMIN_PORT=${ADMIN_PORT}`,
      'ADMIN_ADDRESS=0.0.0.0',
      'REUSE_PORT=true',
      `WORK_DIR=${WORK_DIR}`,
      // Every admin path asks for the stack's balancerAdminToken (balancer/README.md, "Admin login").
      `ADMIN_TOKEN_FILE=${SECRETS_DIR}/${ADMIN_TOKEN_FILE}`,
      ...(args.upstreamTls ? [`UPSTREAM_CA_FILE=${SECRETS_DIR}/${UPSTREAM_CA_FILE}`] : []),
      ...(args.adminTls
        ? [`ADMIN_TLS_CERT_FILE=${SECRETS_DIR}/${ADMIN_TLS_FILES.cert}`, `ADMIN_TLS_KEY_FILE=${SECRETS_DIR}/${ADMIN_TLS_FILES.key}`]
        : []),
    ];
    // Old and new run side by side, so the name changes with whatever replaces the container: the image, the
    // settings, the role's hardening and its certificates (nginx reads them at start: a renewed one takes a new
    // gateway). The secrets stay out of it (the token is fixed for the stack's life; a key changes with its
    // certificate).
    this.gatewayName = pulumi.all([image.repoDigest, args.tls?.cert ?? '', args.adminTls?.cert ?? '']).apply(
      ([id, ...certs]) =>
        `${this.containerName}-${createHash('sha256')
          .update(JSON.stringify([id, settings, ROLE_SETTINGS.balancer, ...certs.filter(Boolean)]))
          .digest('hex')
          .slice(0, 12)}`,
    );
    stackContainer(
      `${name}-gateway`,
      // Every version logs under the holder's fixed name: one file for the balancer across replacements.
      { naming, role: 'balancer', logs: collector, logTag: this.containerName },
      {
        name: this.gatewayName,
        image: image.repoDigest,
        envs: [...settings, CONSUL_TOKEN_FILE_SETTING],
        volumes: [args.secrets],
        // The holder's namespace: its ports, its stack-network address and alias, its DNS.
        networkMode: pulumi.interpolate`container:${ports.id}`,
        healthcheck: {
          tests: ['CMD', 'node', '/app/health-probe.js'],
          interval: '2s',
          timeout: '3s',
          retries: 3,
          startPeriod: '30s',
        },
        wait: true,
        waitTimeout: READY_TIMEOUT_SECONDS,
        destroyGraceSeconds: DRAIN_SECONDS,
      },
      // Created before the old one is deleted: both listen on the ports while the new one starts.
      { parent: this, deleteBeforeReplace: false, dependsOn },
    );

    this.registerOutputs({ containerName: this.containerName, gatewayName: this.gatewayName, url: this.url, adminUrl: this.adminUrl });
  }
}
