import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BalancerStatus } from '../balancer/status';
import { CONSUL_TOKEN_ENV } from '../lib/consul-address';
import { freshBundle } from './bundles';
import type { ConsulEndpoint } from './consul';
import { getJson } from './load';
import { freePorts } from './ports';
import { requireOnPath, startProcess, waitFor, type Managed } from './processes';

export const BALANCER_BUNDLE = path.resolve(__dirname, '../balancer/dist/main.js');

/** GET /_balancer/status as JSON: the watcher's own type. */
export type BalancerStatusJson = BalancerStatus;

/** The upstreams nginx serves for `service` ([] when it is not routed). */
export function upstreamsOf(status: BalancerStatusJson, service: string): string[] {
  return status.services[service]?.upstreams ?? [];
}

export interface RunningBalancer extends Managed {
  port: number;
  /** The public listener, as a client of the service sees it. */
  url: string;
  adminPort: number;
  /** The admin listener: /_balancer/status, and answers that carry X-Upstream-Addr. */
  adminUrl: string;
  workDir: string;
  /** With `adminLogin`: the token the admin listener asks for (ADMIN_TOKEN_FILE); else undefined (an open listener). */
  adminToken: string | undefined;
  /** The headers an admin request needs: the Bearer token with `adminLogin`, none without. */
  adminHeaders: Record<string, string>;
  status(): Promise<BalancerStatusJson>;
  /** The upstreams nginx serves for `service` now. */
  upstreams(service: string): Promise<string[]>;
  /** Waits until the status satisfies `check`; resolves to that status. */
  waitForStatus(what: string, check: (status: BalancerStatusJson) => boolean, timeoutMs?: number): Promise<BalancerStatusJson>;
  /** Waits until nginx serves `count` upstreams for `service`; resolves to them. */
  waitForUpstreams(service: string, count: number, timeoutMs?: number): Promise<string[]>;
  /** The watcher's own last `lines` log lines (nginx's access and error lines left out), for a failed test's log. */
  logTail(lines: number): string;
  /** Stops the balancer (SIGTERM) and removes its working directory. */
  cleanup(): Promise<void>;
}

export interface BalancerOptions {
  /** Give the admin listener a fresh random token (ADMIN_TOKEN_FILE, a file in a temp dir of its own). */
  adminLogin?: boolean;
}

/**
 * Starts the balancer (the gateway to every routed service) as a plain process on free loopback ports
 * (public and admin), from the bundle `npm run build` makes, with its nginx working files in a fresh temp
 * dir and the balancer token; resolves once its status page answers.
 */
export async function startBalancer(
  consul: ConsulEndpoint,
  env: NodeJS.ProcessEnv = {},
  options: BalancerOptions = {},
): Promise<RunningBalancer> {
  requireOnPath(env.NGINX_BIN ?? 'nginx');
  const [port, adminPort] = await freePorts(2);
  const token = await consul.roleToken('balancer');
  const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'balancer-test-'));
  const secretDir = options.adminLogin ? await fs.mkdtemp(path.join(os.tmpdir(), 'balancer-admin-')) : undefined;
  const adminToken = secretDir ? randomBytes(32).toString('base64url') : undefined;
  if (secretDir) await fs.writeFile(path.join(secretDir, 'admin-token'), `${adminToken}\n`, { mode: 0o600 });
  const adminHeaders: Record<string, string> = adminToken ? { authorization: `Bearer ${adminToken}` } : {};
  const proc = startProcess(process.execPath, [freshBundle('balancer')], {
    CONSUL_HTTP_ADDR: consul.httpAddr,
    ...(token !== undefined ? { [CONSUL_TOKEN_ENV]: token } : {}),
    LISTEN_ADDRESS: '127.0.0.1',
    LISTEN_PORT: String(port),
    ADMIN_ADDRESS: '127.0.0.1',
    ADMIN_PORT: String(adminPort),
    WORK_DIR: workDir,
    ...(secretDir ? { ADMIN_TOKEN_FILE: path.join(secretDir, 'admin-token') } : {}),
    ...env,
  });
  // With TLS_CERT_FILE in `env` the public listener speaks HTTPS (the certificate must name 127.0.0.1).
  const url = `${env.TLS_CERT_FILE ? 'https' : 'http'}://127.0.0.1:${port}`;
  // With ADMIN_TLS_CERT_FILE the admin listener speaks HTTPS (verified as the requests are: BALANCER_CA_FILE).
  const adminUrl = `${env.ADMIN_TLS_CERT_FILE ? 'https' : 'http'}://127.0.0.1:${adminPort}`;
  const status = () => getJson<BalancerStatusJson>(`${adminUrl}/_balancer/status`, adminHeaders);
  const upstreams = async (service: string) => upstreamsOf(await status(), service);
  const balancer: RunningBalancer = Object.assign(proc, {
    port,
    url,
    adminPort,
    adminUrl,
    workDir,
    adminToken,
    adminHeaders,
    status,
    upstreams,
    waitForStatus: (what: string, check: (status: BalancerStatusJson) => boolean, timeoutMs = 15_000) =>
      waitFor(
        what,
        async () => {
          const now = await status();
          return check(now) ? now : undefined;
        },
        timeoutMs,
        25,
      ),
    async waitForUpstreams(service: string, count: number, timeoutMs = 20_000) {
      let last: string[] = [];
      await waitFor(
        `${count} upstream(s) of ${service} in the balancer`,
        async () => (last = await upstreams(service)).length === count,
        timeoutMs,
        25,
      );
      return last;
    },
    logTail: (lines: number) =>
      proc
        .output()
        .split('\n')
        .filter((l) => !l.includes('"source":"nginx"'))
        .slice(-lines)
        .join('\n'),
    async cleanup() {
      await proc.stop(5000);
      await fs.rm(workDir, { recursive: true, force: true });
      if (secretDir) await fs.rm(secretDir, { recursive: true, force: true });
    },
  });
  try {
    await waitFor(
      'the balancer status page',
      async () => {
        if (proc.child.exitCode !== null) throw new Error(`balancer exited: ${proc.output()}`);
        // The status page can answer a moment before the watcher has finished starting; wait for both.
        return proc.output().includes('"msg":"balancer started"') && (await status()).reloads !== undefined;
      },
      15_000,
      50,
    );
  } catch (error) {
    await balancer.cleanup();
    throw error;
  }
  return balancer;
}
