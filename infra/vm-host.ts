// One VM as the stack sees it: its SSH host key (infra/host-key.ts), a bootstrap over SSH that leaves a running
// Docker engine and reports the VM's CPU, and the docker provider that reaches that engine through the local
// `ssh` binary once the bootstrap is done.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import * as command from '@pulumi/command';
import * as docker from '@pulumi/docker';
import type { VmConfig } from './config';
import { checkHostKey, knownHostsName, recordKnownHost } from './host-key';
import { configProblem } from '../lib/config-error';
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
  /** The private key (the secret config value), or '' to use the user's ssh-agent (SSH_AUTH_SOCK). */
  privateKey: string;
}

/**
 * What every SSH connection of the stack needs. The docker provider runs the local `ssh`, which can take a
 * key only from a file: the program writes the secret to `<dir>/id` (0600 in a 0700 folder) at every run, once
 * the local.Command `<name>-files` (which makes the folder, and removes the key and the known_hosts beside it on
 * destroy) is in the state, so the file is there whenever a provider needs it, also on another checkout, and no
 * resource changes for it. That known_hosts is the stack's own (the user's ~/.ssh/known_hosts is left alone),
 * written from the host keys the stack keeps in its state (VmHost): ssh accepts only those
 * (StrictHostKeyChecking=yes). remote.Command has its own SSH client and gets the key and the host key as inputs.
 */
export class SshAccess extends pulumi.ComponentResource {
  readonly files: command.local.Command;
  /** The key as a Pulumi secret, for remote.Command; undefined with the agent. */
  readonly privateKey?: pulumi.Output<string>;
  readonly sshOpts: string[];
  readonly knownHostsFile: string;
  /** Resolves once the key file is written: everything that connects waits for it. */
  readonly filesWritten: pulumi.Output<void>;

  constructor(name: string, args: SshAccessArgs, opts?: pulumi.ComponentResourceOptions) {
    super('cnp:infra:SshAccess', name, {}, opts);
    const identity = path.join(args.dir, 'id');
    this.knownHostsFile = path.join(args.dir, 'known_hosts');
    this.privateKey = args.privateKey === '' ? undefined : pulumi.secret(args.privateKey);
    this.files = new command.local.Command(
      `${name}-files`,
      {
        create: 'umask 077 && mkdir -p "$CNP_SSH_DIR" && echo "ssh files in $CNP_SSH_DIR"',
        delete: 'rm -f "$CNP_SSH_DIR/id" "$CNP_SSH_DIR/known_hosts"',
        environment: { CNP_SSH_DIR: args.dir },
      },
      { parent: this },
    );
    // Under the mocks the step reports nothing, and the program writes nothing into the checkout.
    this.filesWritten = this.files.stdout.apply((stdout) => {
      if (stdout.trim() !== '' && args.privateKey !== '') writeIdentity(identity, args.privateKey);
    });
    this.sshOpts = [
      ...(args.privateKey ? ['-i', identity, '-o', 'IdentitiesOnly=yes'] : []),
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      `UserKnownHostsFile=${this.knownHostsFile}`,
      '-o',
      'ConnectTimeout=15',
      '-o',
      'ServerAliveInterval=15',
    ];
    this.registerOutputs({ sshOpts: this.sshOpts });
  }
}

/** Writes the key file when it is missing or holds another key (mode 0600, folder 0700). */
function writeIdentity(file: string, key: string): void {
  const text = `${key.trim()}\n`;
  if (fs.existsSync(file) && fs.readFileSync(file, 'utf8') === text) return;
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.tmp`;
  fs.writeFileSync(temporary, text, { mode: 0o600 });
  fs.renameSync(temporary, file);
}

/** What `uname -m` may say on a VM, and the platform of the images built for it. */
export const VM_PLATFORMS: Readonly<Record<string, string>> = {
  x86_64: 'linux/amd64',
  amd64: 'linux/amd64',
  aarch64: 'linux/arm64',
  arm64: 'linux/arm64',
};

/**
 * The image platform of a VM, from the last line of its bootstrap (`vm-bootstrap: architecture <uname -m>`).
 * Known only once the bootstrap ran: a VM the stack cannot serve stops the deployment before any image is built.
 */
export function imagePlatform(vmName: string, bootstrapOutput: string): string {
  const architecture = /^vm-bootstrap: architecture (\S+)$/m.exec(bootstrapOutput)?.[1] ?? '';
  if (Object.hasOwn(VM_PLATFORMS, architecture)) return VM_PLATFORMS[architecture];
  const allowed = Object.entries(VM_PLATFORMS)
    .map(([arch, p]) => `${arch} (${p})`)
    .join(', ');
  throw new Error(
    configProblem(`${vmName}'s architecture (uname -m, reported by its bootstrap)`, architecture, `a VM with one of ${allowed}`),
  );
}

export interface VmHostArgs {
  vm: VmConfig;
  ssh: SshAccess;
}

export class VmHost extends pulumi.ComponentResource {
  /** Takes the VM's host key at the first contact; its stdout (in the state) is the key the stack trusts. */
  readonly hostKeyStep: command.local.Command;
  readonly bootstrap: command.remote.Command;
  /** Every docker resource on this VM names this provider. */
  readonly provider: docker.Provider;
  /** `ssh://user@host:port`. */
  readonly dockerHost: string;
  /** The platform of every image built for this VM (`linux/amd64`, `linux/arm64`), from its bootstrap. */
  readonly platform: pulumi.Output<string>;
  /** How this VM's remote.Commands reach it: its SSH address, the stack's key and the host key it took. */
  private readonly connection: command.types.input.remote.ConnectionArgs;

  constructor(name: string, args: VmHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super('cnp:infra:VmHost', name, {}, opts);
    const { vm, ssh } = args;
    const script = fs.readFileSync(BOOTSTRAP_SCRIPT_PATH, 'utf8');
    this.hostKeyStep = new command.local.Command(
      `${name}-host-key`,
      {
        // In the project folder (the provider's working directory): no absolute path in the state.
        create: 'node --import tsx infra/host-key.ts',
        environment: { CNP_SSH_HOST: vm.ssh.host, CNP_SSH_PORT: String(vm.ssh.port) },
      },
      { parent: this, dependsOn: [ssh.files] },
    );
    // At every run, before anything connects: the VM still presents the key taken (else a clear error naming
    // the way to accept a new one), and the stack's known_hosts holds it. Under the mocks the step prints nothing.
    const hostKey = pulumi.all([this.hostKeyStep.stdout, this.hostKeyStep.urn, ssh.filesWritten]).apply(async ([stdout, urn]) => {
      const key = stdout.trim();
      if (key === '') return undefined;
      const acceptCommand = `pulumi up --replace '${urn}' (in this project: npm run up -- --replace '${urn}')`;
      try {
        await checkHostKey({ vm: vm.name, host: vm.ssh.host, port: vm.ssh.port }, key, acceptCommand);
      } catch (error) {
        throw new pulumi.ResourceError((error as Error).message, this, true);
      }
      recordKnownHost(ssh.knownHostsFile, knownHostsName(vm.ssh.host, vm.ssh.port), key);
      return key;
    });
    this.connection = {
      host: vm.ssh.host,
      port: vm.ssh.port,
      user: vm.ssh.user,
      ...(ssh.privateKey ? { privateKey: ssh.privateKey } : {}),
      // The only key its client accepts; a new one (an accepted new host key) runs the bootstrap again.
      // (undefined only under the mocks, whose step prints nothing: then no input at all)
      hostKey: hostKey as pulumi.Output<string>,
      // A VM just created may take minutes to answer SSH: dial up to 60 times, 15 s each at most.
      dialErrorLimit: 60,
      perDialTimeout: 15,
    };
    this.bootstrap = new command.remote.Command(
      `${name}-bootstrap`,
      {
        connection: this.connection,
        // Through POSIX sh whatever the user's login shell, the script on standard input.
        create: 'sh -s',
        stdin: script,
        // Re-run only when the script changes (an unchanged script is no change at all).
        triggers: [crypto.createHash('sha256').update(script).digest('hex')],
      },
      { parent: this },
    );
    this.platform = this.bootstrap.stdout.apply((stdout) => {
      try {
        return imagePlatform(vm.name, stdout);
      } catch (error) {
        throw new pulumi.ResourceError((error as Error).message, this, true);
      }
    });
    this.dockerHost = sshUrl(vm);
    this.provider = new docker.Provider(
      `${name}-docker`,
      { host: this.dockerHost, sshOpts: ssh.sshOpts },
      // Connecting before the engine is there fails; the key file must exist before the local ssh runs.
      { parent: this, dependsOn: [this.bootstrap, ssh.files] },
    );
    this.registerOutputs({ dockerHost: this.dockerHost, platform: this.platform });
  }

  /**
   * Files on the VM itself that only root reads (a 0700 directory, files 0600): for the Docker daemon, which
   * reads them from the VM's file system. Written over SSH as root (with `sudo -n` for another user, as the
   * bootstrap does), each through a temporary file so a reader never sees half of one; written again when a
   * content changes; the directory is removed when the step is deleted. The contents travel on standard input.
   */
  rootFiles(name: string, dir: string, files: Record<string, pulumi.Input<string>>): command.remote.Command {
    const asRoot = (line: string) => `if [ "$(id -u)" = 0 ]; then ${line}; else sudo -n ${line}; fi`;
    const script = pulumi
      .all(files)
      .apply((contents) =>
        [
          'set -eu',
          'umask 077',
          `mkdir -p '${dir}'`,
          `chmod 700 '${dir}'`,
          ...Object.entries(contents).flatMap(([file, content]) => [
            `cat >'${dir}/${file}.new' <<'CNP_FILE_END'`,
            content.trim(),
            'CNP_FILE_END',
            `mv -f '${dir}/${file}.new' '${dir}/${file}'`,
          ]),
          `echo "vm-files: ${Object.keys(contents).join(', ')} in ${dir}"`,
          '',
        ].join('\n'),
      );
    return new command.remote.Command(
      name,
      { connection: this.connection, create: asRoot('sh -s'), stdin: pulumi.secret(script), delete: asRoot(`rm -rf '${dir}'`) },
      // A replacement (`pulumi up --replace`) removes the directory before writing it again: created first, the
      // new files would go with the old step's delete.
      { parent: this, dependsOn: [this.bootstrap], deleteBeforeReplace: true, additionalSecretOutputs: ['stdin'] },
    );
  }
}
