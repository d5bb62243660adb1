// An SSH local forward for the steps that talk to Consul from the machine running `pulumi up` (the ACL
// init step, infra/acl-init.ts, and the broker's registration, infra/register-broker.ts) on VMs, where Consul's HTTP API listens
// only on the VM's loopback: the local `ssh` with the docker provider's options (SshAccess.sshOpts: key
// file, the stack's known_hosts), a free local port, and a clear error when the tunnel does not come up.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { envValue } from './config-error';
import type { ConsulAddress } from './consul-address';
import { hostPort } from './endpoints';

export interface SshTunnelSettings {
  /** user@host */
  target: string;
  port: number;
  /** Options before the forward, as the docker provider passes them to ssh. */
  opts: string[];
}

/** What ACL_SSH_* must be, in words. */
const SSH_ENV_ALLOWED = 'ACL_SSH_TARGET = user@host, ACL_SSH_PORT = 1-65535, ACL_SSH_OPTS = a JSON array of strings (all three, or none)';

/** The tunnel's settings from ACL_SSH_TARGET, ACL_SSH_PORT, ACL_SSH_OPTS; undefined when none is set. */
export function parseSshTunnelEnv(env: NodeJS.ProcessEnv): SshTunnelSettings | undefined {
  const target = envValue(env, 'ACL_SSH_TARGET');
  const portText = envValue(env, 'ACL_SSH_PORT');
  const optsText = envValue(env, 'ACL_SSH_OPTS');
  if (target === undefined && portText === undefined && optsText === undefined) return undefined;
  const port = Number(portText);
  let opts: unknown;
  try {
    opts = JSON.parse(optsText ?? '');
  } catch {
    opts = undefined;
  }
  if (
    target === undefined ||
    !/^[^@\s]+@[^@\s]+$/.test(target) ||
    !Number.isInteger(port) ||
    port < 1 ||
    port > 65535 ||
    !Array.isArray(opts) ||
    !opts.every((o) => typeof o === 'string')
  ) {
    throw new Error(
      `ACL_SSH_TARGET = ${JSON.stringify(target ?? '')}, ACL_SSH_PORT = ${JSON.stringify(portText ?? '')}, ` +
        `ACL_SSH_OPTS = ${JSON.stringify(optsText ?? '')} are not allowed: use ${SSH_ENV_ALLOWED}`,
    );
  }
  return { target, port, opts };
}

/** A port on 127.0.0.1 free right now (ssh binds it a moment later; ExitOnForwardFailure catches a race). */
function freeLocalPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

export interface SshTunnel {
  localPort: number;
  close(): void;
}

/**
 * `ssh <opts> -p PORT -N -o ExitOnForwardFailure=yes -L 127.0.0.1:LOCAL:<remote> user@host`, resolved
 * once 127.0.0.1:LOCAL accepts. Rejects with ssh's own stderr when ssh exits first or nothing listens
 * within `timeoutMs` (ssh's ConnectTimeout, among the opts, bounds a dead host sooner).
 */
export async function openSshTunnel(settings: SshTunnelSettings, remote: string, timeoutMs = 60_000): Promise<SshTunnel> {
  const localPort = await freeLocalPort();
  const args = [
    ...settings.opts,
    // Never a prompt: a password or passphrase question would hang the deployment.
    '-o',
    'BatchMode=yes',
    '-p',
    String(settings.port),
    '-N',
    '-o',
    'ExitOnForwardFailure=yes',
    '-L',
    `127.0.0.1:${localPort}:${remote}`,
    settings.target,
  ];
  const child = spawn('ssh', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = signal ?? `exit ${code}`));
  child.once('error', (error) => (exited = error.message));
  const close = () => {
    if (exited === undefined) child.kill('SIGTERM');
  };
  const what = `the ssh tunnel to ${settings.target} port ${settings.port} (forwarding 127.0.0.1:${localPort} to ${remote})`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited !== undefined) throw new Error(`${what} did not come up: ssh ended (${exited}): ${stderr.trim() || 'no output'}`);
    if (await accepts(localPort)) return { localPort, close };
    if (Date.now() > deadline) {
      close();
      throw new Error(`${what} did not come up within ${timeoutMs / 1000} s: ${stderr.trim() || 'ssh printed nothing'}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Runs `use` with the URL of Consul's HTTP API at `address`: directly, or with `ssh`, through a tunnel to
 * that host, where `address` is the API as that host reaches it (only http is forwarded). The tunnel is
 * always closed afterwards.
 */
export async function withConsulApi(
  address: ConsulAddress,
  ssh: SshTunnelSettings | undefined,
  log: (line: string) => void,
  use: (url: string) => Promise<void>,
): Promise<void> {
  if (ssh === undefined) return use(address.url);
  if (address.secure)
    throw new Error(`CONSUL_HTTP_ADDR = ${JSON.stringify(address.url)} is https: through ACL_SSH_TARGET only http is forwarded`);
  const tunnel = await openSshTunnel(ssh, hostPort(address.host, address.port));
  try {
    log(`through ssh ${ssh.target} port ${ssh.port}: ${address.url} on that host is 127.0.0.1:${tunnel.localPort} here`);
    await use(`http://127.0.0.1:${tunnel.localPort}`);
  } finally {
    tunnel.close();
  }
}
