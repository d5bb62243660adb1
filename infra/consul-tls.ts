// TLS between VMs with the stack's CA, made once and kept as a secret, with openssl by infra/consul-tls.sh on
// the machine running `pulumi up` (no TLS provider can be had here): Consul's RPC (HashiCorp's production
// guidance: verify_incoming, verify_outgoing and server hostname verification), per VM a certificate for its
// agent carrying the VM's private address, a server's naming server.<dc>.consul, which clients verify; and the
// gateway's requests to the replicas, per VM a certificate the replicas there serve HTTPS with, which the
// gateway and Consul's checks verify. The same CA signs the syslog stream's certificates (infra/syslog-tls.ts).
// Gossip is encrypted by the gossip key; the HTTP API listens on the VM only.
import path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import * as command from '@pulumi/command';
import { SECRETS_DIR } from './secret-files';

/** The script, run from the repo root; the mocks recognise it (test/helpers/record-stack.ts). */
export const CONSUL_TLS_SCRIPT = 'bash infra/consul-tls.sh';

/** Consul's default datacenter and domain: a server's certificate must name server.<dc>.<domain>. */
const SERVER_NAME = 'server.dc1.consul';

/** A certificate and its private key (a secret), PEM. */
export interface CertificateAndKey {
  cert: pulumi.Output<string>;
  key: pulumi.Output<string>;
}

/** The files an agent reads, in its secrets directory, by name. */
export const TLS_FILES = { ca: 'ca.pem', cert: 'agent.pem', key: 'agent-key.pem' } as const;

/** The first certificate and the first private key of openssl's output. */
export function splitPem(text: string): { cert: string; key: string } {
  const block = (label: RegExp) =>
    new RegExp(`-----BEGIN ${label.source}-----[\\s\\S]*?-----END ${label.source}-----\\n?`).exec(text)?.[0] ?? '';
  return { cert: block(/CERTIFICATE/), key: block(/(?:EC |RSA )?PRIVATE KEY/) };
}

/** A CA (`ca`) or a certificate it signs (`agent`), made by infra/consul-tls.sh in a local command at create. */
export function certificateStep(
  name: string,
  repoRoot: string,
  mode: 'ca' | 'agent',
  environment: Record<string, pulumi.Input<string>>,
  opts?: pulumi.CustomResourceOptions,
): CertificateAndKey {
  // No triggers: it runs at create, and again only when its environment changes (pulumi-command runs create on update).
  const step = new command.local.Command(
    name,
    { create: `${CONSUL_TLS_SCRIPT} ${mode}`, dir: path.resolve(repoRoot), environment },
    { ...opts, additionalSecretOutputs: ['stdout'] },
  );
  const pem = step.stdout.apply((out) => splitPem(out ?? ''));
  return { cert: pem.apply((p) => p.cert), key: pulumi.secret(pem.apply((p) => p.key)) };
}

/** The stack's CA for Consul's RPC, made once. */
export function consulCa(repoRoot: string): CertificateAndKey {
  return certificateStep('consul-tls-ca', repoRoot, 'ca', {});
}

/**
 * A certificate signed by `ca` for `cn` and `sans` (openssl's syntax: `IP:…`, `DNS:…`), usable as server and
 * client unless `extendedKeyUsage` (openssl's names, e.g. `clientAuth`) narrows it.
 */
export function signedCertificate(
  name: string,
  args: { repoRoot: string; ca: CertificateAndKey; cn: string; sans: string[]; extendedKeyUsage?: string },
  opts: pulumi.CustomResourceOptions = {},
): CertificateAndKey {
  const eku: Record<string, string> = args.extendedKeyUsage ? { EKU: args.extendedKeyUsage } : {};
  return certificateStep(
    name,
    args.repoRoot,
    'agent',
    { CA_CERT: args.ca.cert, CA_KEY: args.ca.key, CN: args.cn, SANS: args.sans.join(','), ...eku },
    opts,
  );
}

/** The certificate of the agent at `privateAddress`, signed by `ca`; a server's also names server.dc1.consul. */
export function agentCertificate(
  name: string,
  args: { repoRoot: string; ca: CertificateAndKey; privateAddress: string; server: boolean },
  opts: pulumi.CustomResourceOptions,
): CertificateAndKey {
  const sans = [...(args.server ? [`DNS:${SERVER_NAME}`] : []), 'DNS:localhost', `IP:${args.privateAddress}`, 'IP:127.0.0.1'];
  return signedCertificate(name, { repoRoot: args.repoRoot, ca: args.ca, cn: args.server ? SERVER_NAME : 'client.dc1.consul', sans }, opts);
}

/** A replica's files, in its secrets directory, by name (TLS_CERT_FILE, TLS_KEY_FILE). */
export const REPLICA_TLS_FILES = { cert: 'tls-cert.pem', key: 'tls-key.pem' } as const;
/** The balancer's files for its admin listener on a VM (ADMIN_TLS_CERT_FILE, ADMIN_TLS_KEY_FILE). */
export const ADMIN_TLS_FILES = { cert: 'admin-cert.pem', key: 'admin-key.pem' } as const;

/**
 * A server's certificate on a VM, signed by `ca`, for its private address and loopback, usable as server and
 * client: the balancer's admin listener's (`<vm>-admin-tls`) and a broker's (`<vm>-broker-tls`; its routes
 * verify both ways).
 */
export function privateAddressCertificate(
  name: string,
  args: { repoRoot: string; ca: CertificateAndKey; privateAddress: string },
): CertificateAndKey {
  const sans = [`IP:${args.privateAddress}`, 'IP:127.0.0.1', 'DNS:localhost'];
  return signedCertificate(name, { repoRoot: args.repoRoot, ca: args.ca, cn: args.privateAddress, sans });
}

/** The replicas' file of the CA they verify the broker with (NATS_CA_FILE). */
export const NATS_CA_FILE = 'nats-ca.pem';

/** The balancer's file of the CA it verifies the replicas with (UPSTREAM_CA_FILE). */
export const UPSTREAM_CA_FILE = 'upstream-ca.pem';

/**
 * The certificate the replicas on a VM serve HTTPS with, signed by `ca`: it names each service as
 * `<service>.service.consul` (what the gateway verifies, balancer/render.ts), the VM's node name (what Consul
 * 1.8's check verifies: tlsutil OutgoingTLSConfigForCheck uses the node name) and its private address (what
 * later Consul versions verify).
 */
export function replicaCertificate(
  name: string,
  args: { repoRoot: string; ca: CertificateAndKey; privateAddress: string; nodeName: string; serviceNames: string[] },
): CertificateAndKey {
  const sans = [
    ...args.serviceNames.map((service) => `DNS:${service}.service.consul`),
    `DNS:${args.nodeName}`,
    `IP:${args.privateAddress}`,
  ];
  return signedCertificate(name, { repoRoot: args.repoRoot, ca: args.ca, cn: `${args.serviceNames[0]}.service.consul`, sans });
}

/**
 * The agent configuration that turns TLS on for its RPC, both ways, with the files in its secrets directory:
 * top-level keys before Consul 1.12, the `tls` block from 1.12 on (and for a tag that names no version).
 */
export function agentTlsHcl(version: { major: number; minor: number } | undefined): string {
  const files = `ca_file = "${SECRETS_DIR}/${TLS_FILES.ca}" cert_file = "${SECRETS_DIR}/${TLS_FILES.cert}" key_file = "${SECRETS_DIR}/${TLS_FILES.key}"`;
  // Its HTTPS checks of the replicas trust the same CA.
  const checks = 'enable_agent_tls_for_checks = true';
  if (version && (version.major < 1 || (version.major === 1 && version.minor < 12))) {
    return `${files} verify_incoming_rpc = true verify_outgoing = true verify_server_hostname = true ${checks}`;
  }
  return `tls { defaults { ${files} verify_outgoing = true } internal_rpc { verify_incoming = true verify_server_hostname = true } } ${checks}`;
}
