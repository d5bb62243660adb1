// A server's certificate and key given as files (TLS_CERT_FILE, TLS_KEY_FILE): read and checked once at start,
// so a wrong file stops the process with the variable and the file named. The key is a secret: its content is
// never logged or put in an error.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { envValue, readSecretFile, rejectConfig } from './config-error';

export interface TlsPair {
  /** The certificate, PEM, its chain after it. */
  cert: string;
  /** Its private key, PEM. */
  key: string;
}

/**
 * TLS_CERT_FILE and TLS_KEY_FILE, both or neither (undefined: plain HTTP). Throws ConfigError naming the variable:
 * the certificate must parse and be valid now, the key must be its key.
 */
export function readTlsPair(
  env: NodeJS.ProcessEnv,
  readFile: (file: string) => string = (file) => readFileSync(file, 'utf8'),
  now = new Date(),
): TlsPair | undefined {
  const certFile = envValue(env, 'TLS_CERT_FILE');
  const keyFile = envValue(env, 'TLS_KEY_FILE');
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined) return rejectConfig('TLS_CERT_FILE', '', `the certificate's file, as TLS_KEY_FILE is set`);
  if (keyFile === undefined) return rejectConfig('TLS_KEY_FILE', '', `the private key's file, as TLS_CERT_FILE is set`);
  const cert = readSecretFile('TLS_CERT_FILE', certFile, 'a PEM certificate', readFile);
  const key = readSecretFile('TLS_KEY_FILE', keyFile, 'a PEM private key', readFile);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    return rejectConfig('TLS_CERT_FILE', certFile, 'a PEM certificate (the leaf first)');
  }
  let keyObject;
  try {
    keyObject = createPrivateKey(key);
  } catch {
    return rejectConfig('TLS_KEY_FILE', keyFile, 'an unencrypted PEM private key');
  }
  if (!x509.checkPrivateKey(keyObject)) rejectConfig('TLS_KEY_FILE', keyFile, `the private key of the certificate in ${certFile}`);
  if (new Date(x509.validTo) < now || new Date(x509.validFrom) > now)
    rejectConfig('TLS_CERT_FILE', certFile, `a certificate valid now (this one: ${x509.validFrom} to ${x509.validTo})`);
  return { cert: `${cert}\n`, key: `${key}\n` };
}
