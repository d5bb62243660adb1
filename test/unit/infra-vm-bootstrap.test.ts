// infra/vm-bootstrap.sh run by sh against stand-in commands (no package mirror or VM is reachable here):
// which package manager it picks from /etc/os-release, that it installs and starts Docker only when
// missing, and that a second run changes nothing. The stand-ins log every call; the real sh runs the script.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { BOOTSTRAP_SCRIPT_PATH } from '../../infra/vm-host';

const SCRIPT = fs.readFileSync(BOOTSTRAP_SCRIPT_PATH, 'utf8');
const TOOLS = ['sh', 'sleep', 'cat', 'cp', 'touch', 'chmod', 'mkdir', 'rm', 'printf'];

interface FakeVm {
  /** Runs the bootstrap as the stack does (`sh -s`, the script on stdin); returns its output. */
  bootstrap(): string;
  /** The stand-in commands called so far, one line each. */
  calls(): string[];
}

/**
 * A stand-in VM: a PATH with only basic tools and stand-ins for id (root), the package managers, the init
 * tools and, once "installed", docker and dockerd. `docker info` answers once the engine was started.
 */
function fakeVm(t: ExecutionContext, osRelease: string, options: { dockerInstalled: boolean; engineRunning: boolean }): FakeVm {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-bootstrap-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const bin = path.join(root, 'bin');
  const store = path.join(root, 'store');
  fs.mkdirSync(bin);
  fs.mkdirSync(store);
  for (const tool of TOOLS) {
    const found = ['/usr/bin', '/bin'].map((dir) => path.join(dir, tool)).find((p) => fs.existsSync(p));
    if (found) fs.symlinkSync(found, path.join(bin, tool));
  }
  const log = path.join(root, 'calls.log');
  const stub = (name: string, body: string, dir = bin) =>
    fs.writeFileSync(path.join(dir, name), `#!/bin/sh\necho "${name} $*" >> ${log}\n${body}\n`, { mode: 0o755 });
  stub('id', 'case "$1" in -u) echo 0 ;; *) echo root ;; esac');
  // docker and dockerd wait in the store until a package manager "installs" them.
  stub(
    'docker',
    `case "$1" in --version) echo "Docker version 20.10.24" ;; info) [ -e ${root}/running ] || exit 1; case "$*" in *ServerVersion*) echo 20.10.24 ;; *Architecture*) echo linux/x86_64 ;; esac ;; esac`,
    store,
  );
  stub('dockerd', `touch ${root}/running`, store);
  const install = `cp ${store}/docker ${store}/dockerd ${bin}/`;
  stub('apt-get', `case "$*" in *install*) ${install} ;; esac`);
  stub('dnf', `case "$*" in *docker-ce*) ${install} ;; esac`);
  stub('yum', `case "$*" in *docker-ce*) ${install} ;; esac`);
  stub('yum-config-manager', '');
  stub('env', 'shift; "$@"'); // `env DEBIAN_FRONTEND=noninteractive apt-get ...`: runs the command after the assignment
  stub('nohup', `touch ${root}/running`);
  if (options.dockerInstalled) fs.cpSync(store, bin, { recursive: true });
  if (options.engineRunning) fs.writeFileSync(path.join(root, 'running'), '');
  const osReleaseFile = path.join(root, 'os-release');
  fs.writeFileSync(osReleaseFile, osRelease);
  return {
    bootstrap: () =>
      execFileSync('/bin/sh', ['-s'], {
        input: SCRIPT,
        // Only the stand-ins and files under root: the machine's own log and os-release stay untouched.
        env: { PATH: bin, CNP_OS_RELEASE: osReleaseFile, CNP_DOCKERD_LOG: path.join(root, 'dockerd.log') },
        encoding: 'utf8',
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
    calls: () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n') : []).filter((l) => !/^(id|docker) /.test(l)),
  };
}

test('Docker present and running: the bootstrap installs and starts nothing', (t) => {
  const vm = fakeVm(t, 'ID=debian\n', { dockerInstalled: true, engineRunning: true });
  t.regex(
    vm.bootstrap(),
    /docker present: Docker version 20.10.24\nvm-bootstrap: engine running\nvm-bootstrap: docker info answers: server 20.10.24/,
  );
  t.deepEqual(vm.calls(), []);
});

test('Debian without Docker: apt installs docker.io, the engine is started, and a second run changes nothing', (t) => {
  const vm = fakeVm(t, 'PRETTY_NAME="Debian GNU/Linux 12"\nID=debian\n', { dockerInstalled: false, engineRunning: false });
  t.regex(vm.bootstrap(), /installing docker.io with apt[\s\S]*engine running/);
  const first = vm.calls();
  t.true(first.includes('apt-get update -q'), first.join('\n'));
  t.true(first.includes('apt-get install -y -q docker.io'), first.join('\n'));
  t.true(first.some((l) => /^nohup dockerd/.test(l)) || first.some((l) => /^(systemctl|service) /.test(l)), 'the engine is started');
  vm.bootstrap();
  t.deepEqual(vm.calls(), first, 'the second run installs and starts nothing');
});

test("CentOS without Docker: dnf adds Docker's repository and installs docker-ce", (t) => {
  const vm = fakeVm(t, 'ID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="9"\n', { dockerInstalled: false, engineRunning: false });
  t.regex(vm.bootstrap(), /installing docker-ce with dnf/);
  const calls = vm.calls();
  t.true(calls.includes('dnf config-manager --add-repo https://download.docker.com/linux/centos/docker-ce.repo'), calls.join('\n'));
  t.true(calls.includes('dnf -y -q install docker-ce docker-ce-cli containerd.io'), calls.join('\n'));
  t.false(calls.some((l) => l.startsWith('apt-get')));
});

test('an OS it cannot install on stops the bootstrap with a message naming the OS', (t) => {
  const vm = fakeVm(t, 'PRETTY_NAME="Alpine Linux v3.20"\nID=alpine\n', { dockerInstalled: false, engineRunning: false });
  const error = t.throws<Error & { stderr: string }>(() => vm.bootstrap());
  t.regex(error.stderr, /cannot install Docker on this OS \(Alpine Linux v3.20\): install the Docker engine and CLI yourself/);
});
