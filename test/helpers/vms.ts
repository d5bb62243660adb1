// Test "VMs": containers of the cnp-vm image (scripts/vm-image.sh, scripts/vm/) that each run sshd and
// their own Docker engine (Docker-in-Docker without --privileged, as docs in shared/guide/environment.md
// say it works here), on a bridge network of their own that plays the VMs' private network. The host
// reaches a VM only through its sshd published on 127.0.0.1 (and any port a test asks to publish there);
// VM-to-VM traffic stays on their network. Root logs in with a key generated for the run; the run's own
// known_hosts holds each VM's host key, read from the VM itself.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Semaphore, docker, run, type RunOptions } from './docker';
import { PROJECT_DIR, ensureOfflineImages } from './images';
import { freePorts } from '../../harness/ports';
import { startProcess, waitFor } from '../../harness/processes';
import { knownHostsName, recordKnownHost } from '../../infra/host-key';

export const VM_IMAGE = 'cnp-vm:bookworm';
const RUN_KEY = 'io.consul-nginx-pulumi.vmrun';
const RUN_NAME = /^vmrun(\d+)x[0-9a-f]{6}$/;
/**
 * Candidate private networks, tried in order: explicit /24s that overlap neither Docker's default pools
 * on the host (172.17-31/16, 192.168/16) nor the VMs' inner engines (bip 10.214.0.1/24, pools from
 * 10.215/16: scripts/vm/daemon.json). Two runs at once take two of them.
 */
const SUBNETS = Array.from({ length: 8 }, (_, i) => `10.213.${7 + i}`);

/** DinD without --privileged: CAP_SYS_RESOURCE is not in this machine's bounding set. */
const DIND_FLAGS = [
  '--cap-add',
  'ALL',
  '--cap-drop',
  'SYS_RESOURCE',
  '--security-opt',
  'seccomp=unconfined',
  '--security-opt',
  'apparmor=unconfined',
  '-v',
  '/sys/fs/cgroup:/sys/fs/cgroup:rw',
];

export interface VmSpec {
  /** Short name, e.g. vm1; the container is cnp-<run>-<name>. */
  name: string;
  /** Ports inside the VM to publish on 127.0.0.1 of the host (a balancer the host's clients reach). */
  publish?: number[];
}

export interface Vm {
  name: string;
  container: string;
  /** Its address on the VMs' private network. */
  privateAddress: string;
  /** How the host reaches its sshd. */
  ssh: { host: '127.0.0.1'; port: number; user: 'root' };
  /** `ssh://root@127.0.0.1:PORT`, as a docker provider's `host`. */
  dockerHost: string;
  /** Inner port → host port on 127.0.0.1. */
  published: Map<number, number>;
}

/** Whether a process (a test run) is still there. */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

const lines = (text: string) => text.split('\n').filter(Boolean);

/** Removes what VM runs whose test process is gone left behind (a killed run's VMs, volumes, network). */
export async function sweepDeadVmRuns(): Promise<string[]> {
  const format = `{{.Label "${RUN_KEY}"}}`;
  const [containers, networks, volumes] = await Promise.all([
    docker(['ps', '-a', '--filter', `label=${RUN_KEY}`, '--format', format]),
    docker(['network', 'ls', '--filter', `label=${RUN_KEY}`, '--format', format]),
    docker(['volume', 'ls', '--filter', `label=${RUN_KEY}`, '--format', format]),
  ]);
  const dead = [...new Set(lines(containers + networks + volumes))].filter((runId) => {
    const pid = RUN_NAME.exec(runId)?.[1];
    return pid !== undefined && !isAlive(Number(pid));
  });
  for (const runId of dead) await removeRun(runId);
  return dead;
}

async function removeRun(runId: string): Promise<void> {
  const label = `label=${RUN_KEY}=${runId}`;
  const containers = lines(await docker(['ps', '-aq', '--filter', label]));
  if (containers.length) await docker(['rm', '-f', '-v', ...containers]);
  for (const kind of ['network', 'volume'] as const) {
    const names = lines(await docker([kind, 'ls', '-q', '--filter', label]));
    if (names.length) await docker([kind, 'rm', ...names]);
  }
}

/** The ed25519 host key sshd in `container` presents, as known_hosts and the host-key step hold it (`<type> <base64>`). */
export async function containerHostKey(container: string): Promise<string> {
  const line = await docker(['exec', container, 'cat', '/etc/ssh/ssh_host_ed25519_key.pub']);
  return line.trim().split(' ').slice(0, 2).join(' ');
}

export class VmFleet {
  readonly runId = `vmrun${process.pid}x${randomBytes(3).toString('hex')}`;
  readonly network = `cnp-${this.runId}-net`;
  /** Per-run ssh material: the private key, its public half and the VMs' host keys. */
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-vms-'));
  readonly keyFile = path.join(this.dir, 'id_ed25519');
  readonly knownHostsFile = path.join(this.dir, 'known_hosts');
  readonly vms = new Map<string, Vm>();
  subnet = '';
  private readonly sessions = new Semaphore(8);

  /** The private key's text, as a secret config value holds it. */
  get privateKey(): string {
    return fs.readFileSync(this.keyFile, 'utf8');
  }

  /** The options the host's `ssh` needs for these VMs: this run's key and known_hosts, nothing from ~/.ssh. */
  get sshOptions(): string[] {
    return [
      '-i',
      this.keyFile,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      `UserKnownHostsFile=${this.knownHostsFile}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'BatchMode=yes',
    ];
  }

  vm(name: string): Vm {
    const vm = this.vms.get(name);
    if (!vm) throw new Error(`no VM named ${name}; started: ${[...this.vms.keys()].join(', ')}`);
    return vm;
  }

  /** Starts the VMs, waits until each answers ssh and `docker info`, and loads `images` into each engine. */
  async start(specs: VmSpec[], images: string[] = []): Promise<void> {
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', this.runId, '-f', this.keyFile]);
    const publicKey = fs.readFileSync(`${this.keyFile}.pub`, 'utf8').trim();
    this.subnet = await this.createNetwork();
    await Promise.all(specs.map((spec, i) => this.startVm(spec, `${this.subnet}.${11 + i}`, publicKey)));
    await Promise.all([...this.vms.values()].map((vm) => this.waitReady(vm)));
    if (images.length > 0) await this.loadImages(images);
  }

  private async createNetwork(): Promise<string> {
    const failures: string[] = [];
    for (const prefix of SUBNETS) {
      try {
        await docker(['network', 'create', '--subnet', `${prefix}.0/24`, '--label', `${RUN_KEY}=${this.runId}`, this.network]);
        return prefix;
      } catch (error) {
        // Another run holds this subnet: take the next one.
        if (!/overlap/i.test(String(error))) throw error;
        failures.push(`${prefix}.0/24`);
      }
    }
    throw new Error(`vms: every candidate subnet is taken (${failures.join(', ')}); another VM run is going, or one leaked`);
  }

  private async startVm(spec: VmSpec, address: string, publicKey: string): Promise<void> {
    const container = `cnp-${this.runId}-${spec.name}`;
    const volume = `${container}-docker`;
    await docker(['volume', 'create', '--label', `${RUN_KEY}=${this.runId}`, volume]);
    // Fixed host ports (not Docker's pick at each start): a VM started again keeps its ssh address.
    const inner = [22, ...(spec.publish ?? [])];
    const outer = await freePorts(inner.length);
    const publish = inner.flatMap((port, i) => ['-p', `127.0.0.1:${outer[i]}:${port}`]);
    await docker([
      'run',
      '-d',
      '--name',
      container,
      '--hostname',
      spec.name,
      '--label',
      `${RUN_KEY}=${this.runId}`,
      '--network',
      this.network,
      '--ip',
      address,
      ...DIND_FLAGS,
      '-v',
      `${volume}:/var/lib/docker`,
      '-e',
      `VM_AUTHORIZED_KEY=${publicKey}`,
      ...publish,
      VM_IMAGE,
    ]);
    const published = new Map<number, number>();
    for (const port of [22, ...(spec.publish ?? [])]) {
      const mapping = (await docker(['port', container, `${port}/tcp`])).trim().split('\n')[0];
      published.set(port, Number(mapping.split(':').pop()));
    }
    const sshPort = published.get(22)!;
    published.delete(22);
    this.vms.set(spec.name, {
      name: spec.name,
      container,
      privateAddress: address,
      ssh: { host: '127.0.0.1', port: sshPort, user: 'root' },
      dockerHost: `ssh://root@127.0.0.1:${sshPort}`,
      published,
    });
  }

  /** sshd up (its host key goes into this run's known_hosts) and the VM's engine answering. */
  private async waitReady(vm: Vm): Promise<void> {
    const deadline = Date.now() + 90_000;
    let hostKey = '';
    for (;;) {
      const state = await docker(['inspect', '-f', '{{.State.Running}}', vm.container]);
      if (state.trim() !== 'true') {
        const logs = await docker(['logs', '--tail', '20', vm.container]).catch(() => '');
        throw new Error(`vms: ${vm.container} stopped while starting: ${logs}`);
      }
      hostKey ||= await containerHostKey(vm.container).catch(() => '');
      if (hostKey) {
        recordKnownHost(this.knownHostsFile, knownHostsName(vm.ssh.host, vm.ssh.port), hostKey);
        const ready = await this.ssh(vm.name, 'docker info --format "{{.ServerVersion}} {{.Driver}}"').catch(() => '');
        if (ready.trim()) return;
      }
      if (Date.now() > deadline) {
        const log = await docker(['exec', vm.container, 'tail', '-20', '/var/log/dockerd.log']).catch(() => '');
        throw new Error(`vms: ${vm.name} did not answer ssh and docker info within 90 s; dockerd log:\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** Starts a stopped (or killed) VM again: same disk, address, host keys and ssh port; waits until it answers. */
  async restart(name: string): Promise<void> {
    const vm = this.vm(name);
    await docker(['start', vm.container]);
    await this.waitReady(vm);
  }

  /**
   * A VM rebuilt on the same address, as its SSH server shows it: new host keys, which sshd loads on SIGHUP (it
   * re-executes itself, same PID: it is the VM's main process). This run's known_hosts takes the new key.
   * Resolves with the new ed25519 key (`<type> <base64>`).
   */
  async renewHostKeys(name: string): Promise<string> {
    const vm = this.vm(name);
    await docker([
      'exec',
      vm.container,
      'sh',
      '-c',
      'rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && kill -HUP $(pgrep -P 1 -x sshd)',
    ]);
    const hostKey = await containerHostKey(vm.container);
    recordKnownHost(this.knownHostsFile, knownHostsName(vm.ssh.host, vm.ssh.port), hostKey);
    return hostKey;
  }

  /** A VM gone for good: its container and its disk removed; it leaves the fleet. */
  async remove(name: string): Promise<void> {
    const vm = this.vm(name);
    await docker(['rm', '-f', '-v', vm.container]);
    await docker(['volume', 'rm', `${vm.container}-docker`]);
    this.vms.delete(name);
  }

  /** Runs a command on a VM as root over ssh (through its published sshd). */
  ssh(name: string, command: string, options: RunOptions = {}): Promise<string> {
    const vm = this.vm(name);
    return this.sessions.use(() =>
      run('ssh', ['-F', '/dev/null', ...this.sshOptions, '-p', String(vm.ssh.port), `root@${vm.ssh.host}`, '--', command], options),
    );
  }

  /** The docker CLI against a VM's engine through the container itself (test set-up and checks, not the realizer). */
  exec(name: string, args: string[], options: RunOptions = {}): Promise<string> {
    return docker(['exec', ...(options.input !== undefined ? ['-i'] : []), this.vm(name).container, ...args], options);
  }

  /**
   * Captures, with the host's tcpdump on the VMs' network bridge, every TCP packet from one VM to another (the
   * host's own traffic to them, ssh and the published ports, left out); `stop()` ends it and gives the file.
   */
  async captureBetweenVms(): Promise<{ file: string; stop(): Promise<Buffer> }> {
    const id = (await docker(['network', 'inspect', '-f', '{{.Id}}', this.network])).trim();
    const file = path.join(this.dir, `capture-${Date.now()}.pcap`);
    const filter = `tcp and src net ${this.subnet}.0/24 and dst net ${this.subnet}.0/24 and not host ${this.subnet}.1`;
    const tcpdump = startProcess('tcpdump', ['-i', `br-${id.slice(0, 12)}`, '-U', '-s', '0', '-w', file, filter]);
    try {
      // tcpdump says "listening on ..." once it captures.
      await waitFor('tcpdump to listen', async () => tcpdump.output().includes('listening on'), 10_000, 50);
    } catch (error) {
      await tcpdump.stop();
      throw new Error(`tcpdump did not start: ${tcpdump.output().trim()}`, { cause: error });
    }
    return {
      file,
      async stop() {
        // SIGTERM: tcpdump flushes its file and exits, as on SIGINT (tcpdump.c sets cleanup() for both).
        await tcpdump.stop();
        return fs.readFileSync(file);
      },
    };
  }

  /** Copies host images into every VM's engine: one `docker save`, loaded into each VM in parallel. */
  async loadImages(images: string[]): Promise<void> {
    const tarball = path.join(this.dir, 'images.tar');
    await docker(['save', '-o', tarball, ...images], { timeoutMs: 300_000 });
    await Promise.all(
      [...this.vms.values()].map((vm) =>
        run('sh', ['-c', `docker exec -i ${vm.container} docker load -q < "$0"`, tarball], { timeoutMs: 300_000 }),
      ),
    );
    fs.rmSync(tarball, { force: true });
  }

  /** Removes the VMs (and with them everything their engines ran), their volumes, the network and the keys. */
  async destroy(): Promise<void> {
    try {
      await removeRun(this.runId);
    } finally {
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/** Builds the VM image (cached, as the offline bases are) and the offline bases the stack needs on every VM. */
export async function ensureVmImages(): Promise<string> {
  const bases = await ensureOfflineImages();
  return bases + (await run('bash', [path.join(PROJECT_DIR, 'scripts/vm-image.sh')], { timeoutMs: 600_000 }));
}
