// HTTPS for the tools and tests: a CA to trust (BALANCER_CA_FILE), and a throwaway CA with a server
// certificate for 127.0.0.1 made by openssl, as the tests and the bench need one.
import { execFileSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';

/** The variable naming a PEM file of CA certificates the tools trust for an https:// balancer, beside the system's. */
export const CA_FILE_VARIABLE = 'BALANCER_CA_FILE';

const trusted = new Map<string, tls.SecureContext>();

/**
 * What an https request trusts: Node's own roots plus the certificates in BALANCER_CA_FILE, as one TLS
 * context made once per file (a `ca` list given per request would parse every root again for each
 * connection); {} (Node's defaults, NODE_EXTRA_CA_CERTS included) when it is unset.
 */
export function trustOptions(env: NodeJS.ProcessEnv = process.env): { secureContext?: tls.SecureContext } {
  const file = env[CA_FILE_VARIABLE]?.trim();
  if (!file) return {};
  if (!trusted.has(file)) {
    let pem: string;
    try {
      pem = readFileSync(file, 'utf8');
    } catch (error) {
      throw new Error(`${CA_FILE_VARIABLE} = ${JSON.stringify(file)} cannot be read: ${(error as Error).message}`, { cause: error });
    }
    if (!pem.includes('-----BEGIN CERTIFICATE-----'))
      throw new Error(`${CA_FILE_VARIABLE} = ${JSON.stringify(file)} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    trusted.set(file, tls.createSecureContext({ ca: [...tls.rootCertificates, pem] }));
  }
  return { secureContext: trusted.get(file) };
}

export interface TestCertificates {
  dir: string;
  /** The CA's certificate: what a client trusts. */
  caFile: string;
  /** The server's certificate (IP SAN 127.0.0.1, DNS SAN localhost), signed by the CA, and its key. */
  certFile: string;
  keyFile: string;
  /** Removes the directory. */
  remove(): Promise<void>;
}

/**
 * A fresh CA and a server certificate for 127.0.0.1 and localhost, and the `names` given (openssl's
 * subjectAltName syntax, e.g. DNS:hello.service.consul), ECDSA P-256, valid one day, in a temp dir, by openssl.
 */
export async function makeTestCertificates(names: string[] = []): Promise<TestCertificates> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cnp-tls-'));
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.pem'),
    '-days',
    '1',
    '-subj',
    '/CN=cnp test CA',
    '-addext',
    'basicConstraints=critical,CA:true',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  openssl('req', ...ec, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=127.0.0.1');
  await fs.writeFile(
    file('server.ext'),
    `subjectAltName=${['IP:127.0.0.1', 'DNS:localhost', ...names].join(',')}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:false\n`,
  );
  openssl(
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.pem'),
    '-CAkey',
    file('ca.key'),
    '-set_serial',
    String(Date.now()),
    '-days',
    '1',
    '-extfile',
    file('server.ext'),
    '-out',
    file('server.pem'),
  );
  await fs.chmod(file('server.key'), 0o600);
  return {
    dir,
    caFile: file('ca.pem'),
    certFile: file('server.pem'),
    keyFile: file('server.key'),
    remove: () => fs.rm(dir, { recursive: true, force: true }),
  };
}
