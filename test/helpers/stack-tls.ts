// A certificate and its key made by the stack's own script (infra/consul-tls.sh), as the stack makes them: `ca`,
// or `agent` signed by CA_CERT and CA_KEY for CN and SANS (EKU: serverAuth, clientAuth, or both).
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { splitPem } from '../../infra/consul-tls';
import { REPO_ROOT } from './record-stack';

export function stackTls(mode: 'ca' | 'agent', env: Record<string, string> = {}): { cert: string; key: string } {
  const out = execFileSync('bash', [path.join(REPO_ROOT, 'infra', 'consul-tls.sh'), mode], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return splitPem(out);
}
