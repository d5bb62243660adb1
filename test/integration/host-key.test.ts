// The stack's host-key rule (infra/host-key.ts) against a real sshd: a container of the test VM image running
// only sshd, published on a loopback port. The step takes the key the server presents (its ed25519 key, read
// from the container); the check passes while the server keeps it, refuses with the way to accept a new one
// once its host keys are renewed, and lets a server that does not answer pass (the clients' own errors tell).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { checkHostKey, fingerprint, knownHostsName, recordKnownHost, scanHostKeys, takeHostKey } from '../../infra/host-key';
import { freePort } from '../../harness/ports';
import { REPO_ROOT } from '../helpers/record-stack';
import { docker, run } from '../helpers/docker';
import { VM_IMAGE, containerHostKey } from '../helpers/vms';

const container = `cnp-host-key-sshd-${randomBytes(4).toString('hex')}`;
let port = 0;

const serverKey = () => containerHostKey(container);

test.before(async (t) => {
  // A cold machine builds the VM image first.
  t.timeout(660_000);
  await run('bash', [path.join(REPO_ROOT, 'scripts', 'vm-image.sh')], { timeoutMs: 600_000 });
  port = await freePort();
  await docker([
    'run',
    '-d',
    '--name',
    container,
    '--label',
    'cnp.test=host-key',
    '-p',
    `127.0.0.1:${port}:22`,
    '--entrypoint',
    'sh',
    VM_IMAGE,
    '-c',
    // sshd restarted by the loop when a test kills it (after renewing the keys).
    'install -d -m 0755 /run/sshd && ssh-keygen -A -q && while true; do /usr/sbin/sshd -D -e; done',
  ]);
});

test.after.always(async () => {
  await docker(['rm', '-f', container]).catch(() => undefined);
});

test.serial('the step waits for the server and takes its ed25519 key; the check passes while it keeps it', async (t) => {
  const taken = await takeHostKey('127.0.0.1', port, 20, 5);
  t.is(taken, await serverKey());
  t.regex(fingerprint(taken), /^SHA256:[A-Za-z0-9+/]{43}$/);
  await t.notThrowsAsync(checkHostKey({ vm: 'vm9', host: '127.0.0.1', port }, taken, 'ACCEPT'));

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-host-key-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'ssh', 'known_hosts');
  recordKnownHost(file, 'other', 'ssh-ed25519 AAAA');
  recordKnownHost(file, knownHostsName('127.0.0.1', port), 'ssh-ed25519 OLD');
  recordKnownHost(file, knownHostsName('127.0.0.1', port), taken);
  t.is(fs.readFileSync(file, 'utf8'), `other ssh-ed25519 AAAA\n[127.0.0.1]:${port} ${taken}\n`, "one line per host, the host's last key");
  t.is(fs.statSync(file).mode & 0o777, 0o600);
  // OpenSSH itself finds the key there.
  const found = await run('ssh-keygen', ['-F', `[127.0.0.1]:${port}`, '-f', file]);
  t.true(found.includes(taken));
});

test.serial('renewed host keys: the check refuses, naming the VM, both fingerprints and the way to accept the new key', async (t) => {
  const before = await serverKey();
  await docker(['exec', container, 'sh', '-c', 'rm -f /etc/ssh/ssh_host_* && ssh-keygen -A -q && pkill -x sshd']);
  const after = await (async () => {
    for (let i = 0; i < 50; i++) {
      const scan = await scanHostKeys('127.0.0.1', port, 2, 'ed25519');
      if (scan.keys.length > 0) return scan.keys[0];
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error('sshd did not come back');
  })();
  t.not(after, before);
  t.is(after, await serverKey());
  const error = await t.throwsAsync(checkHostKey({ vm: 'vm9', host: '127.0.0.1', port }, before, 'ACCEPT-IT'));
  t.is(
    error.message,
    `vm9 (127.0.0.1 port ${port}) presents the host key ${fingerprint(after)}, not ssh-ed25519 ${fingerprint(before)}, ` +
      'the key this stack took at its first contact. If the VM was rebuilt or its host keys were renewed, accept the new key ' +
      '(this also runs its bootstrap again): ACCEPT-IT. If not, something else answers at that address: find out what before you accept it.',
  );
});

test.serial('a server that does not answer passes the check (the bootstrap and the provider report it themselves)', async (t) => {
  const closed = await freePort();
  const started = Date.now();
  await t.notThrowsAsync(checkHostKey({ vm: 'vm9', host: '127.0.0.1', port: closed }, 'ssh-ed25519 AAAA', 'ACCEPT'));
  t.true(Date.now() - started < 6000, 'bounded by the scan timeout');
  const error = await t.throwsAsync(takeHostKey('127.0.0.1', closed, 1, 1));
  t.regex(error.message, new RegExp(`host-key: 127\\.0\\.0\\.1 port ${closed} presented no SSH host key in 1 tries`));
});
