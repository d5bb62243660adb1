// A server's certificate and key given as files (TLS_CERT_FILE, TLS_KEY_FILE, and the balancer's own pairs):
// read and checked once at start, so a wrong file stops the process with the variable and the file named. The
// key is a secret: its content is never logged or put in an error.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { envValue, readSecretFile, rejectConfig } from './config-error';

export interface TlsPair {
  /** The certificate, PEM, its chain after it. */
  cert: string;
  /** Its private key, PEM. */
  key: string;
}

/**
 * A certificate file and its key's, given as [variable, file] and read by `read(variable, file)`: both set, the
 * certificate readable and not expired, the key unencrypted and the certificate's. Throws ConfigError naming
 * the variable at fault.
 */
export function checkedTlsPair(
  [certVariable, certFile]: [string, string | undefined],
  [keyVariable, keyFile]: [string, string | undefined],
  read: (variable: string, file: string) => string,
  now = new Date(),
): TlsPair & { certFile: string; keyFile: string } {
  if (certFile === undefined) return rejectConfig(certVariable, '', `the certificate's file, as ${keyVariable} is set`);
  if (keyFile === undefined) return rejectConfig(keyVariable, '', `the private key's file, as ${certVariable} is set`);
  const certPem = read(certVariable, certFile);
  const keyPem = read(keyVariable, keyFile);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (error) {
    return rejectConfig(
      certVariable,
      certFile,
      `a PEM certificate (-----BEGIN CERTIFICATE-----), the server's first (${(error as Error).message})`,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (error) {
    // OpenSSL's message says what it could not decode, never the key itself.
    return rejectConfig(keyVariable, keyFile, `an unencrypted PEM private key (${(error as Error).message})`);
  }
  if (!cert.checkPrivateKey(key)) rejectConfig(keyVariable, keyFile, `the private key of the certificate in ${certFile} (${cert.subject})`);
  if (new Date(cert.validTo) < now) rejectConfig(certVariable, certFile, `a certificate still valid (this one expired ${cert.validTo})`);
  if (new Date(cert.validFrom) > now)
    rejectConfig(certVariable, certFile, `a certificate valid now (this one is valid from ${cert.validFrom})`);
  return { cert: certPem, key: keyPem, certFile, keyFile };
}

/** TLS_CERT_FILE and TLS_KEY_FILE, both or neither (undefined: plain HTTP): a replica's HTTPS. */
export function readTlsPair(
  env: NodeJS.ProcessEnv,
  readFile: (file: string) => string = (file) => readFileSync(file, 'utf8'),
  now = new Date(),
): TlsPair | undefined {
  const certFile = envValue(env, 'TLS_CERT_FILE');
  const keyFile = envValue(env, 'TLS_KEY_FILE');
  if (certFile === undefined && keyFile === undefined) return undefined;
  const read = (variable: string, file: string) => `${readSecretFile(variable, file, 'a PEM file', readFile)}\n`;
  const { cert, key } = checkedTlsPair(['TLS_CERT_FILE', certFile], ['TLS_KEY_FILE', keyFile], read, now);
  return { cert, key };
}
