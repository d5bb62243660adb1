// HTTPS on the public listener: the certificate and key files, and what plain HTTP does beside them. Read
// and checked once at start, so a wrong file stops the balancer with the variable and the file named, not
// nginx later with an OpenSSL message. The key is a secret: its content is never logged or put in an error.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { envValue, rejectConfig } from '../lib/config-error';
import { checkedTlsPair } from '../lib/tls-files';

/** What plain HTTP gets on the public side when HTTPS is on: a 308 to HTTPS on its own port, or no listener. */
export type PublicHttp = 'redirect' | 'off';

export interface PublicTls {
  certFile: string;
  keyFile: string;
  /** `off` (the default) or `redirect`: then a plain-HTTP listener on `redirectPort` answers 308. */
  publicHttp: PublicHttp;
  redirectPort: number | undefined;
  /** The HTTPS port clients reach (a Docker published port may differ from LISTEN_PORT): the redirect's target. */
  publicHttpsPort: number;
}

/** Written into nginx's config as is: no quote, space, `;` or `$` (nginx reads a `$` in a certificate path as a variable). */
const SAFE_PATH = /^\/[A-Za-z0-9._@+/-]+$/;

function readPem(variable: string, file: string): string {
  if (!SAFE_PATH.test(file)) rejectConfig(variable, file, 'an absolute path to a PEM file, of letters, digits and . _ @ + - /');
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    return rejectConfig(variable, file, `a PEM file this process (uid ${process.getuid?.() ?? '?'}) can read (${code})`);
  }
}

function port(env: NodeJS.ProcessEnv, variable: string): number | undefined {
  const raw = envValue(env, variable);
  if (raw === undefined) return undefined;
  const value = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(value >= 1 && value <= 65535)) rejectConfig(variable, raw, 'a whole number from 1 to 65535');
  return value;
}

/**
 * UPSTREAM_CA_FILE: the CA whose certificates the replicas serve HTTPS with (the stack's, on VMs); undefined:
 * plain HTTP to the replicas. Checked to hold a readable CA certificate.
 */
export function parseUpstreamCa(env: NodeJS.ProcessEnv): string | undefined {
  const file = envValue(env, 'UPSTREAM_CA_FILE');
  if (file === undefined) return undefined;
  try {
    if (new X509Certificate(readPem('UPSTREAM_CA_FILE', file)).ca) return file;
  } catch (error) {
    if ((error as Error).name === 'ConfigError') throw error;
  }
  return rejectConfig(
    'UPSTREAM_CA_FILE',
    file,
    "a PEM file whose first certificate is a CA certificate (the one that signed the replicas')",
  );
}

/** A certificate file and its key's, checked by lib/tls-files.ts; read as nginx will (readPem). */
function checkedPair(
  cert: [string, string | undefined],
  key: [string, string | undefined],
  now: Date,
): { certFile: string; keyFile: string } {
  const pair = checkedTlsPair(cert, key, readPem, now);
  return { certFile: pair.certFile, keyFile: pair.keyFile };
}

/**
 * ADMIN_TLS_CERT_FILE and ADMIN_TLS_KEY_FILE (both or neither): HTTPS on the admin listener, for one reached
 * over a network (a VM's private address); undefined: plain HTTP.
 */
export function parseAdminTls(env: NodeJS.ProcessEnv, now = new Date()): { certFile: string; keyFile: string } | undefined {
  const certFile = envValue(env, 'ADMIN_TLS_CERT_FILE');
  const keyFile = envValue(env, 'ADMIN_TLS_KEY_FILE');
  if (certFile === undefined && keyFile === undefined) return undefined;
  return checkedPair(['ADMIN_TLS_CERT_FILE', certFile], ['ADMIN_TLS_KEY_FILE', keyFile], now);
}

/**
 * TLS_CERT_FILE and TLS_KEY_FILE (both or neither), PUBLIC_HTTP, HTTP_REDIRECT_PORT and PUBLIC_HTTPS_PORT;
 * undefined when HTTPS is off. Throws ConfigError naming the variable: the files must parse as a
 * certificate (the leaf first, a chain may follow) and its private key, the key must match the
 * certificate, and the certificate must not have expired.
 */
export function parsePublicTls(
  env: NodeJS.ProcessEnv,
  ports: { listenPort: number; adminPort: number },
  now = new Date(),
): PublicTls | undefined {
  const certFile = envValue(env, 'TLS_CERT_FILE');
  const keyFile = envValue(env, 'TLS_KEY_FILE');
  const httpOnlyVariables = ['PUBLIC_HTTP', 'HTTP_REDIRECT_PORT', 'PUBLIC_HTTPS_PORT'].filter((v) => envValue(env, v) !== undefined);
  if (certFile === undefined && keyFile === undefined) {
    if (httpOnlyVariables.length > 0)
      rejectConfig(httpOnlyVariables[0], envValue(env, httpOnlyVariables[0])!, 'it only with TLS_CERT_FILE and TLS_KEY_FILE set');
    return undefined;
  }
  const files = checkedPair(['TLS_CERT_FILE', certFile], ['TLS_KEY_FILE', keyFile], now);

  const publicHttp = envValue(env, 'PUBLIC_HTTP') ?? 'off';
  if (publicHttp !== 'redirect' && publicHttp !== 'off') rejectConfig('PUBLIC_HTTP', publicHttp, 'redirect or off');
  const redirectPort = port(env, 'HTTP_REDIRECT_PORT');
  if (publicHttp === 'redirect') {
    if (redirectPort === undefined) rejectConfig('HTTP_REDIRECT_PORT', '', 'the port of the plain-HTTP listener, as PUBLIC_HTTP=redirect');
    if (redirectPort === ports.listenPort || redirectPort === ports.adminPort)
      rejectConfig(
        'HTTP_REDIRECT_PORT',
        String(redirectPort),
        `a port other than LISTEN_PORT (${ports.listenPort}) and ADMIN_PORT (${ports.adminPort})`,
      );
  } else if (redirectPort !== undefined) {
    rejectConfig('HTTP_REDIRECT_PORT', String(redirectPort), 'it only with PUBLIC_HTTP=redirect');
  }
  return { ...files, publicHttp, redirectPort, publicHttpsPort: port(env, 'PUBLIC_HTTPS_PORT') ?? ports.listenPort };
}
