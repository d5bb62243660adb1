// A VM's SSH host key, as the stack trusts it. The step `<vm>-host-key` takes it at the first contact (or when
// the user accepts a new one) and keeps it in the state; on every run the program checks that the VM still
// presents it, writes it into the stack's known_hosts (the local `ssh` of the docker provider, the ACL step and
// the broker registration check against that file) and hands it to the bootstrap's remote.Command as `hostKey`
// (pulumi-command's Go client checks only that key). One key, checked by both clients.
//
//   node --import tsx infra/host-key.ts   (the step: CNP_SSH_HOST, CNP_SSH_PORT) prints the key the VM presents,
//                                          waiting for a VM that does not answer yet, as the bootstrap's dials do
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** The host as known_hosts names it: `host` on port 22, else `[host]:port` (OpenSSH's form, IPv6 too). */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** OpenSSH's fingerprint of a key (`<type> <base64>`): SHA256 of the key blob, base64 without padding. */
export function fingerprint(key: string): string {
  const blob = Buffer.from(key.split(' ')[1] ?? '', 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The key types taken, best first: the one found first is the one the stack keeps. */
const PREFERRED = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa'];

/** ssh-keyscan's `-t` name of a key type. */
const scanType = (keyType: string) => (keyType.startsWith('ecdsa') ? 'ecdsa' : keyType === 'ssh-rsa' ? 'rsa' : 'ed25519');

export interface ScanResult {
  /** The server answered with its SSH banner (ssh-keyscan prints `# host:port SSH-2.0-…` on stderr). */
  answered: boolean;
  /** The host keys it presented, `<type> <base64>`, best first. */
  keys: string[];
  stderr: string;
}

/** The host keys an SSH server presents (ssh-keyscan, `timeoutSeconds` per connection), without logging in. */
export function scanHostKeys(host: string, port: number, timeoutSeconds: number, types = 'ed25519,ecdsa,rsa'): Promise<ScanResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh-keyscan', ['-T', String(timeoutSeconds), '-p', String(port), '-t', types, host], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', () => {
      const keys = stdout
        .split('\n')
        .map((line) => line.trim().split(/\s+/))
        .filter((fields) => fields.length >= 3 && !fields[0].startsWith('#'))
        .map((fields) => `${fields[1]} ${fields[2]}`);
      const rank = (key: string) => {
        const i = PREFERRED.indexOf(key.split(' ')[0]);
        return i === -1 ? PREFERRED.length : i;
      };
      resolve({ answered: /SSH-2\.0-/.test(stderr) || keys.length > 0, keys: keys.sort((a, b) => rank(a) - rank(b)), stderr });
    });
  });
}

/** Puts `key` into known_hosts as the one key of `name` (other hosts' lines stay); mode 0600 in a 0700 folder. */
export function recordKnownHost(file: string, name: string, key: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const before = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const others = before.split('\n').filter((line) => line.trim() !== '' && line.split(' ')[0] !== name);
  const text = [...others, `${name} ${key}`].join('\n') + '\n';
  if (text !== before) fs.writeFileSync(file, text, { mode: 0o600 });
}

export interface HostKeyTarget {
  /** The VM's name, for messages. */
  vm: string;
  host: string;
  port: number;
}

/**
 * Rejects when the VM answers with another key than `recorded`: a rebuilt VM, or someone else at its address.
 * A VM that does not answer passes (the bootstrap's and the provider's own errors say so, if they need it).
 */
export async function checkHostKey(target: HostKeyTarget, recorded: string, acceptCommand: string): Promise<void> {
  const type = recorded.split(' ')[0];
  const scan = await scanHostKeys(target.host, target.port, 5, scanType(type));
  if (!scan.answered || scan.keys.includes(recorded)) return;
  const presented = scan.keys.find((key) => key.startsWith(`${type} `));
  throw new Error(
    `${target.vm} (${target.host} port ${target.port}) presents ${presented ? `the host key ${fingerprint(presented)}` : `no ${type} host key`}, ` +
      `not ${type} ${fingerprint(recorded)}, the key this stack took at its first contact. If the VM was rebuilt or its ` +
      `host keys were renewed, accept the new key (this also runs its bootstrap again): ${acceptCommand}. ` +
      'If not, something else answers at that address: find out what before you accept it.',
  );
}

/** The step: the key the VM presents, once it answers (up to `tries` scans, `timeoutSeconds` each, 5 s apart). */
export async function takeHostKey(host: string, port: number, tries = 60, timeoutSeconds = 15): Promise<string> {
  let last: ScanResult | undefined;
  for (let attempt = 1; attempt <= tries; attempt++) {
    last = await scanHostKeys(host, port, timeoutSeconds);
    if (last.keys.length > 0) return last.keys[0];
    if (attempt < tries) await new Promise((r) => setTimeout(r, 5000));
  }
  throw new Error(`host-key: ${host} port ${port} presented no SSH host key in ${tries} tries: ${last?.stderr.trim() || 'no answer'}`);
}

if (require.main === module) {
  const host = process.env.CNP_SSH_HOST ?? '';
  const port = Number(process.env.CNP_SSH_PORT ?? '22');
  takeHostKey(host, port).then(
    (key) => console.log(key),
    (error: Error) => {
      console.error(error.message);
      process.exit(1);
    },
  );
}
