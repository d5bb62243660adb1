// HTTPS at the edge: the certificate the balancer serves on its public HTTPS port. The operator's own
// (publicTlsCertificate and the secret publicTlsKey), or, when none is given, one the stack makes with
// openssl (infra/consul-tls.sh, as for Consul's RPC): a CA of its own, made once and kept as a secret, whose
// certificate is the stack output balancerCaCertificate for clients to trust, and a server certificate it
// signs for the public address, localhost and loopback. Lifetimes: the CA 10 years, the server certificate
// 825 days (the most Apple's clients accept); `npm run tls:renew` makes a new one (scripts/stack.sh).
import * as pulumi from '@pulumi/pulumi';
import type { StackConfig } from './config';
import { certificateStep, signedCertificate } from './consul-tls';

/** The server certificate's step: scripts/stack.sh renew-tls replaces it by this name (a top-level resource). */
export const PUBLIC_TLS_STEP = 'public-tls';

/** The balancer's files, in its secrets directory, by name. */
export const PUBLIC_TLS_FILES = { cert: 'public-cert.pem', key: 'public-key.pem' } as const;

export interface PublicTls {
  /** The certificate (chain), PEM. */
  cert: pulumi.Input<string>;
  /** Its private key, PEM, a secret. */
  key: pulumi.Input<string>;
  /** The CA that signed a certificate the stack made, PEM; undefined for the operator's own. */
  ca?: pulumi.Output<string>;
  /** What plain HTTP on balancerPort does. */
  publicHttp: StackConfig['publicHttp'];
}

/** The names a made certificate carries: the public address unless it is a wildcard one, localhost and loopback. */
export function publicTlsNames(publicAddress: string): string[] {
  const names = ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1'];
  const wildcard = publicAddress === '0.0.0.0' || publicAddress === '::';
  return wildcard || names.includes(`IP:${publicAddress}`) ? names : [`IP:${publicAddress}`, ...names];
}

/** The edge's certificate, or undefined with publicTls off. */
export function publicTls(config: StackConfig, publicAddress: string, repoRoot: string): PublicTls | undefined {
  if (config.publicTls === 'off') return undefined;
  if (config.publicTlsCertificate !== '') {
    return { cert: config.publicTlsCertificate, key: pulumi.secret(config.publicTlsKey), publicHttp: config.publicHttp };
  }
  const ca = certificateStep('public-tls-ca', repoRoot, 'ca', { CN: 'consul-nginx-pulumi public CA' });
  const names = publicTlsNames(publicAddress);
  const own = signedCertificate(PUBLIC_TLS_STEP, { repoRoot, ca, cn: names[0].replace(/^(DNS|IP):/, ''), sans: names });
  // The step's output is secret as a whole (it holds the key); the CA's certificate is not.
  return { ...own, ca: pulumi.unsecret(ca.cert), publicHttp: config.publicHttp };
}
