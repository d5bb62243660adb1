// A replica's readiness probe, run by Docker's health check inside its container (infra/replicas.ts).
// Healthy means ready for traffic: Consul lists the replica among the passing instances of its service,
// which is the set the balancer follows, and it answers /health on the port it registered there. The
// engine's `wait` on a new replica ends only then, so old replicas are removed after their successors can
// be reached through the balancer.
// It reads the same environment as the service (Docker runs health checks with the container's env).
import https from 'node:https';
import os from 'node:os';
import { httpUrl } from '../lib/endpoints';
import { probeAddress } from '../lib/listen-address';
import { parseConfig, type ServiceConfig } from './config';

const TIMEOUT_MS = 2000;

type Fetch = (
  url: string,
  init: { signal: AbortSignal; headers?: Record<string, string> },
) => Promise<{ ok: boolean; status: number; json(): Promise<unknown> }>;

/**
 * Why the replica is not ready yet, or undefined when it is. The port to probe is the one the replica
 * registered: with a PORT range (on a VM) only the replica knows which port it bound.
 */
export async function notReadyReason(config: ServiceConfig, fetchFn: Fetch = fetch): Promise<string | undefined> {
  const url = `${config.consul.url}/v1/health/service/${encodeURIComponent(config.serviceName)}?passing`;
  const headers: Record<string, string> = config.consulToken !== undefined ? { 'X-Consul-Token': config.consulToken } : {};
  const answer = await fetchFn(url, { signal: AbortSignal.timeout(TIMEOUT_MS), headers });
  if (!answer.ok) return `Consul answered ${answer.status}`;
  const entries = (await answer.json()) as Array<{ Service?: { ID?: string; Port?: number } }>;
  const own = Array.isArray(entries) ? entries.find((entry) => entry?.Service?.ID === config.serviceId) : undefined;
  const port = own?.Service?.Port;
  if (port === undefined) return `${config.serviceId} is not passing in Consul yet`;
  const healthUrl = `${httpUrl(probeAddress(config.host), port)}/health`;
  const health = config.tls
    ? await ownHttpsStatus(healthUrl.replace(/^http:/, 'https:'))
    : await fetchFn(healthUrl, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  return health.ok ? undefined : `/health answered ${health.status}`;
}

/**
 * A GET of the replica's own HTTPS port on loopback. Its certificate is not checked: the container holds no
 * CA, and the peer is this replica itself (the gateway and Consul check it, with the stack's CA).
 */
function ownHttpsStatus(url: string): Promise<{ ok: boolean; status: number }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { rejectUnauthorized: false, timeout: TIMEOUT_MS }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      resolve({ ok: status >= 200 && status < 300, status });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
  });
}

if (require.main === module) {
  const config = parseConfig(process.env, { hostname: os.hostname(), interfaces: os.networkInterfaces() });
  notReadyReason(config).then(
    (reason) => {
      if (reason) process.stdout.write(`not ready: ${reason}\n`);
      process.exit(reason ? 1 : 0);
    },
    (error: unknown) => {
      process.stdout.write(`not ready: ${String(error)}\n`);
      process.exit(1);
    },
  );
}
