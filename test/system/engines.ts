// How the realizer reaches the engines the program's docker providers name, and the hosts its
// remote.Commands name: over ssh, as the real providers do, each through its own client's rules.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from './docker';
import type { RemoteConnection } from './plans';

export { Engines, LOCAL_ENGINE } from '../../harness/plugins/docker/engines';

/**
 * The ssh command line for a remote.Command: the provider's own SSH client (golang.org/x/crypto/ssh;
 * pulumi-command v1 provider/pkg/provider/remote/connection.go, SSHConfig and Dial) reads no ~/.ssh: it
 * authenticates with the given privateKey (and the agent at SSH_AUTH_SOCK, if any), checks the host key
 * only against `hostKey` and otherwise ignores it, and times each dial out after perDialTimeout seconds.
 * Here OpenSSH is told the same: no config file, only that key, this run's known_hosts or none.
 */
export function remoteSshArgs(connection: RemoteConnection, dir: string): string[] {
  const args = ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'PasswordAuthentication=no'];
  if (connection.privateKey) {
    const keyFile = path.join(dir, 'key');
    fs.writeFileSync(keyFile, connection.privateKey.endsWith('\n') ? connection.privateKey : `${connection.privateKey}\n`, {
      mode: 0o600,
    });
    args.push('-i', keyFile, '-o', 'IdentitiesOnly=yes');
  } else {
    // No key given: the provider's client has only the agent (pulumi-command
    // provider/pkg/provider/remote/connection.go: a signer from privateKey if set, else the agent socket).
    // OpenSSH would also try ~/.ssh/id_*; `none` leaves it no key file (OpenSSH 9.2: `ssh -G -o IdentityFile=none` lists none).
    args.push('-o', 'IdentityFile=none');
  }
  if (connection.hostKey) {
    const knownHosts = path.join(dir, 'known_hosts');
    const where = connection.port === 22 ? connection.host : `[${connection.host}]:${connection.port}`;
    fs.writeFileSync(knownHosts, `${where} ${connection.hostKey.trim()}\n`);
    args.push('-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes');
  } else {
    args.push('-o', 'UserKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=no', '-o', 'LogLevel=ERROR');
  }
  if (connection.perDialTimeout > 0) args.push('-o', `ConnectTimeout=${connection.perDialTimeout}`);
  args.push('-p', String(connection.port), '-l', connection.user, '--', connection.host);
  return args;
}

/** ssh's own failures to connect (exit 255), which the provider's Dial retries; a command's exit is not one. */
const DIAL_FAILURE =
  /(Connection refused|Connection timed out|Connection reset|No route to host|kex_exchange_identification|Connection closed by .* port|banner exchange)/;

/**
 * Runs one of a remote.Command's scripts on its host: one session whose command is the script
 * (session.Run; the remote user's shell runs it), stdin from `stdin`. A failed dial is retried up to
 * dialErrorLimit times (-1: without limit), as Dial's retry.Until does.
 */
export async function runRemote(connection: RemoteConnection, script: string, stdin?: string, timeoutMs = 300_000): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-remote-'));
  try {
    const args = remoteSshArgs(connection, dir);
    for (let dial = 1; ; dial++) {
      try {
        return await run('ssh', [...args, script], { input: stdin ?? '', timeoutMs });
      } catch (error) {
        const limit = connection.dialErrorLimit;
        if (!/failed \(255\)/.test(String(error)) || !DIAL_FAILURE.test(String(error)) || (limit !== -1 && dial >= limit)) throw error;
        await new Promise((r) => setTimeout(r, Math.min(1000 * dial, 5000)));
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
