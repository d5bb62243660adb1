// One VM as the stack sees it: a bootstrap over SSH that leaves a running Docker engine, and the docker
// provider that reaches that engine through the local `ssh` binary once the bootstrap is done.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import * as command from '@pulumi/command';
import * as docker from '@pulumi/docker';
import type { VmConfig } from './config';
import { hostPort } from '../lib/endpoints';

/** The bootstrap script (also run on its own by tests of its OS detection and idempotency). */
export const BOOTSTRAP_SCRIPT_PATH = path.join(__dirname, 'vm-bootstrap.sh');

/** `ssh://user@host:port`, the docker provider's host for a VM (IPv6 in brackets). */
export function sshUrl(vm: VmConfig): string {
  return `ssh://${vm.ssh.user}@${hostPort(vm.ssh.host, vm.ssh.port)}`;
}

export interface SshAccessArgs {
  /** Where the stack keeps its ssh files: `<repo>/.pulumi/ssh/<stack>` (git-ignored, next to the state). */
  dir: string;
  /** The private key (a Pulumi secret), or undefined to use the user's ssh-agent (SSH_AUTH_SOCK). */
  privateKey?: pulumi.Output<string>;
}

/**
 * What every SSH connection of the stack needs. The docker provider runs the local `ssh`, which can take a
 * key only from a file: a local.Command writes the secret to `<dir>/id` with mode 0600 (umask 077) on create
 * and on a key change, and removes it on destroy. The folder also holds the stack's own known_hosts, so the
 * user's ~/.ssh/known_hosts is left alone; a VM's host key is accepted the first time and checked after
 * (StrictHostKeyChecking=accept-new). remote.Command has its own SSH client and gets the key as an input.
 */
export class SshAccess extends pulumi.ComponentResource {
  readonly files: command.local.Command;
  readonly privateKey?: pulumi.Output<string>;
  readonly sshOpts: string[];

  constructor(name: string, args: SshAccessArgs, opts?: pulumi.ComponentResourceOptions) {
    super('cnp:infra:SshAccess', name, {}, opts);
    const identity = path.join(args.dir, 'id');
    this.privateKey = args.privateKey;
    this.files = new command.local.Command(
      `${name}-files`,
      {
        create:
          'umask 077 && mkdir -p "$CNP_SSH_DIR" && if [ -n "${CNP_SSH_PRIVATE_KEY:-}" ]; then ' +
          'printf \'%s\\n\' "$CNP_SSH_PRIVATE_KEY" > "$CNP_SSH_DIR/id.tmp" && mv "$CNP_SSH_DIR/id.tmp" "$CNP_SSH_DIR/id"; fi',
        delete: 'rm -f "$CNP_SSH_DIR/id"',
        environment: {
          CNP_SSH_DIR: args.dir,
          ...(args.privateKey ? { CNP_SSH_PRIVATE_KEY: args.privateKey.apply((key) => key.trim()) } : {}),
        },
      },
      { parent: this },
    );
    this.sshOpts = [
      ...(args.privateKey ? ['-i', identity, '-o', 'IdentitiesOnly=yes'] : []),
      '-o',
      'StrictHostKeyChecking=accept-new',
      '-o',
      `UserKnownHostsFile=${path.join(args.dir, 'known_hosts')}`,
      '-o',
      'ConnectTimeout=15',
      '-o',
      'ServerAliveInterval=15',
    ];
    this.registerOutputs({ sshOpts: this.sshOpts });
  }
}

export interface VmHostArgs {
  vm: VmConfig;
  ssh: SshAccess;
}

export class VmHost extends pulumi.ComponentResource {
  readonly bootstrap: command.remote.Command;
  /** Every docker resource on this VM names this provider. */
  readonly provider: docker.Provider;
  /** `ssh://user@host:port`. */
  readonly dockerHost: string;

  constructor(name: string, args: VmHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super('cnp:infra:VmHost', name, {}, opts);
    const { vm, ssh } = args;
    const script = fs.readFileSync(BOOTSTRAP_SCRIPT_PATH, 'utf8');
    this.bootstrap = new command.remote.Command(
      `${name}-bootstrap`,
      {
        connection: {
          host: vm.ssh.host,
          port: vm.ssh.port,
          user: vm.ssh.user,
          ...(ssh.privateKey ? { privateKey: ssh.privateKey } : {}),
          // A VM just created may take minutes to answer SSH: dial up to 60 times, 15 s each at most.
          dialErrorLimit: 60,
          perDialTimeout: 15,
        },
        // Through POSIX sh whatever the user's login shell, the script on standard input.
        create: 'sh -s',
        stdin: script,
        // Re-run only when the script changes (an unchanged script is no change at all).
        triggers: [crypto.createHash('sha256').update(script).digest('hex')],
      },
      { parent: this },
    );
    this.dockerHost = sshUrl(vm);
    this.provider = new docker.Provider(
      `${name}-docker`,
      { host: this.dockerHost, sshOpts: ssh.sshOpts },
      // Connecting before the engine is there fails; the key file must exist before the local ssh runs.
      { parent: this, dependsOn: [this.bootstrap, ssh.files] },
    );
    this.registerOutputs({ dockerHost: this.dockerHost });
  }
}
