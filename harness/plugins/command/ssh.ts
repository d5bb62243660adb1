// remote.Command's SSH client, told to OpenSSH. pulumi-command v1.2.1 dials with golang.org/x/crypto/ssh
// (provider/pkg/provider/remote/connection.go, SSHConfig and Dial): it reads no ~/.ssh, authenticates with the
// given privateKey and the agent at SSH_AUTH_SOCK if any, checks the host key only against `hostKey`, gives each
// dial perDialTimeout seconds and retries a failed dial (connect, handshake or auth) up to dialErrorLimit times.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONNECTION } from './behaviour';
import { runProcess, type ProcessResult } from './process';

export interface RemoteConnection {
  host: string;
  port: number;
  user: string;
  privateKey?: string;
  /** The expected host key (authorized_keys format); without it the client ignores the host key. */
  hostKey?: string;
  /** Seconds per dial attempt; 0 = no maximum. */
  perDialTimeout: number;
  /** Failed dials tolerated before giving up; -1 = unlimited. */
  dialErrorLimit: number;
}

export type ConnectionInputs = Partial<RemoteConnection> & { host: string };

/** A connection with the provider's defaults (connection.go Annotate) where an input is absent. */
export function remoteConnection(given: ConnectionInputs): RemoteConnection {
  return {
    host: given.host,
    port: given.port ?? (CONNECTION.port.default as number),
    user: given.user ?? (CONNECTION.user.default as string),
    privateKey: given.privateKey,
    hostKey: given.hostKey,
    perDialTimeout: given.perDialTimeout ?? (CONNECTION.perDialTimeout.default as number),
    dialErrorLimit: given.dialErrorLimit ?? (CONNECTION.dialErrorLimit.default as number),
  };
}

/**
 * The ssh command line (before the remote command) for `connection`; key and known_hosts files go in `dir`.
 * `sendEnv` names variables of ssh's own environment to pass on (session.Setenv; sshd keeps only those its AcceptEnv lists).
 */
export function remoteSshArgs(connection: RemoteConnection, dir: string, sendEnv: string[] = []): string[] {
  const args = ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'PasswordAuthentication=no'];
  if (connection.privateKey) {
    // With an IdentityFile given, OpenSSH adds none of ~/.ssh/id_*, and still offers the agent's keys, as the Go client does.
    const keyFile = path.join(dir, 'key');
    fs.writeFileSync(keyFile, connection.privateKey.endsWith('\n') ? connection.privateKey : `${connection.privateKey}\n`, {
      mode: 0o600,
    });
    args.push('-i', keyFile);
  } else {
    // Only the agent. `none` leaves OpenSSH no key file (OpenSSH 9.2: `ssh -G -o IdentityFile=none` lists none).
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
  for (const name of sendEnv) args.push('-o', `SendEnv=${name}`);
  args.push('-p', String(connection.port), '-l', connection.user, '--', connection.host);
  return args;
}

/** ssh's own failures before the session (exit 255 with one of these): what the Go client's Dial retries. */
const DIAL_FAILURE =
  /(Connection refused|Connection timed out|Connection reset|No route to host|kex_exchange_identification|Connection closed by .* port|banner exchange|Permission denied|Host key verification failed|Could not resolve hostname)/;

export function isDialFailure(result: ProcessResult): boolean {
  return result.code === 255 && DIAL_FAILURE.test(result.stderr);
}

/** The wait before dial `attempt` + 1: retry.Until's 100 ms, times 1.5 each time, at most 5 s (pulumi sdk/go/common/util/retry). */
export function dialDelayMs(attempt: number): number {
  return Math.min(100 * 1.5 ** (attempt - 1), 5000);
}

export interface SshRunOptions {
  stdin?: string;
  /** Variables to set in the session (SendEnv); sshd drops those it does not accept, and the run goes on. */
  env?: Record<string, string>;
  timeoutMs: number;
  /** Told of each failed dial that will be retried. */
  onRetry?: (attempt: number, limit: number) => void;
}

/**
 * Runs `command` in one session on the host (session.Run: the remote user's shell runs it). Resolves with
 * how it ended, whatever its exit code; rejects once dialling has failed more than dialErrorLimit times.
 */
export async function runOverSsh(connection: RemoteConnection, command: string, options: SshRunOptions): Promise<ProcessResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-remote-'));
  try {
    const env = options.env ?? {};
    const args = [...remoteSshArgs(connection, dir, Object.keys(env)), command];
    const limit = connection.dialErrorLimit;
    for (let attempt = 1; ; attempt++) {
      const result = await runProcess(['ssh', ...args], {
        env: { ...process.env, ...env },
        stdin: options.stdin,
        timeoutMs: options.timeoutMs,
      });
      if (!isDialFailure(result)) return result;
      // connection.go reachedDialingErrorLimit: dials > limit, so limit failures are tolerated and one more tried.
      if (limit !== -1 && attempt > limit) {
        // ssh's last line says why (above it, a changed host key's banner says nothing the Go client would).
        const reason = result.stderr.trim().split('\n').pop()?.trim();
        throw new Error(`after ${attempt - 1} failed attempts: ssh ${connection.user}@${connection.host}:${connection.port}: ${reason}`);
      }
      options.onRetry?.(attempt, limit);
      await new Promise((resolve) => setTimeout(resolve, dialDelayMs(attempt)));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The provider's message for a remote command that failed: ssh.ExitError, the command and its output. */
export function remoteFailure(result: ProcessResult, command: string): Error {
  const status = result.code === null ? `Process killed by signal ${result.signal}` : `Process exited with status ${result.code}`;
  return new Error(`${status}: running ${JSON.stringify(command)}:\n${result.combined}`);
}
