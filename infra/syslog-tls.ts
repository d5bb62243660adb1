// TLS for the syslog stream between VMs: every VM's Docker daemon sends its containers' logs to the collector
// over `tcp+tls` with a client certificate of the stack's CA (infra/consul-tls.ts) and verifies the collector's
// certificate, which carries the collector VM's private address; the collector (collector/source-tls.conf)
// accepts only clients whose certificate chains to that CA. Docker's syslog driver reads its CA, certificate
// and key from files named by log options (moby daemon/logger/syslog/syslog.go: syslog-tls-ca-cert,
// syslog-tls-cert, syslog-tls-key), in the daemon, on the VM: so each VM gets them in a root-only directory
// (VmHost.rootFiles); the collector gets its own among its secret files (infra/secret-files.ts).
import * as pulumi from '@pulumi/pulumi';
import type * as command from '@pulumi/command';
import { signedCertificate, type CertificateAndKey } from './consul-tls';
import type { StackNaming } from './naming';
import type { VmHost } from './vm-host';

/** The collector's files in its secrets directory, by the names collector/source-tls.conf reads. */
export const COLLECTOR_TLS_FILES = { ca: 'ca.pem', cert: 'collector.pem', key: 'collector-key.pem' } as const;

/** The daemon's files on each VM, by these names in the stack's directory there. */
const DAEMON_TLS_FILES = { ca: 'ca.pem', cert: 'client.pem', key: 'client-key.pem' } as const;

/** Where every VM's daemon reads its files: one directory per stack, the same on every VM. */
export interface DaemonTlsPaths {
  dir: string;
  ca: string;
  cert: string;
  key: string;
}

export function daemonTlsPaths(naming: StackNaming): DaemonTlsPaths {
  const dir = `/etc/${naming.objectName('syslog-tls')}`;
  return { dir, ca: `${dir}/${DAEMON_TLS_FILES.ca}`, cert: `${dir}/${DAEMON_TLS_FILES.cert}`, key: `${dir}/${DAEMON_TLS_FILES.key}` };
}

/** The collector's certificate: a server's, for the private address every daemon dials. */
export function collectorCertificate(
  name: string,
  args: { repoRoot: string; ca: CertificateAndKey; privateAddress: string },
): CertificateAndKey {
  return signedCertificate(name, {
    repoRoot: args.repoRoot,
    ca: args.ca,
    cn: 'collector',
    sans: [`IP:${args.privateAddress}`],
    extendedKeyUsage: 'serverAuth',
  });
}

/**
 * A VM's daemon's client certificate (CN = the VM's name, the prefix of its containers' tags, though syslog-ng
 * 3.38 cannot tie one to the other: infra/README.md) and the step that writes it, its key and the CA's
 * certificate into the VM's root-only directory. Both are named `<vm>-…` and used by that VM's containers alone,
 * so a dead VM left behind (scripts/vm-forget.ts) takes them along.
 */
export function daemonTlsFiles(
  vm: VmHost,
  args: { vmName: string; privateAddress: string; repoRoot: string; ca: CertificateAndKey; paths: DaemonTlsPaths },
): command.remote.Command {
  const own = signedCertificate(`${args.vmName}-syslog-tls`, {
    repoRoot: args.repoRoot,
    ca: args.ca,
    cn: args.vmName,
    sans: [`IP:${args.privateAddress}`],
    extendedKeyUsage: 'clientAuth',
  });
  return vm.rootFiles(`${args.vmName}-syslog-tls-files`, args.paths.dir, {
    [DAEMON_TLS_FILES.ca]: args.ca.cert,
    [DAEMON_TLS_FILES.cert]: own.cert,
    [DAEMON_TLS_FILES.key]: own.key,
  });
}

/** The log options that make Docker's syslog driver use TLS with these files, verifying the collector. */
export function syslogTlsOptions(paths: DaemonTlsPaths): Record<string, pulumi.Input<string>> {
  // No syslog-tls-skip-verify: the driver skips verification when the key is present at all, whatever its value.
  return { 'syslog-tls-ca-cert': paths.ca, 'syslog-tls-cert': paths.cert, 'syslog-tls-key': paths.key };
}
