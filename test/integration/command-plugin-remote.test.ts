// The command stand-in's remote.Command under the real CLI 3.248.0, against a real sshd: a container of the
// test VM image (scripts/vm-image.sh, cached) running only sshd, published on a loopback port, with this
// run's key in root's authorized_keys. Checks the session (stdin, its output), the connection kept secret,
// a host key checked when given (a wrong one fails after dialErrorLimit failed dials) and delete on destroy.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import test from 'ava';
import { freePort } from '../../harness/ports';
import { scratchProgram, type ScratchProgram } from '../helpers/real-pulumi';
import { REPO_ROOT } from '../helpers/record-stack';
import { docker, run } from '../helpers/docker';
import { VM_IMAGE, containerHostKey } from '../helpers/vms';

const PROGRAM = path.join(__dirname, '..', 'fixtures', 'command-plugin-remote', 'index.ts');
const container = `cnp-command-plugin-sshd-${randomBytes(4).toString('hex')}`;

let program: ScratchProgram;
let hostname: string;
let hostKey: string;

function keyPair(dir: string, name: string): { privateKey: string; publicKey: string } {
  const file = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file]);
  return { privateKey: fs.readFileSync(file, 'utf8'), publicKey: fs.readFileSync(`${file}.pub`, 'utf8') };
}

/** Until sshd answers its banner on the port (bounded). */
async function waitForSshd(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const banner = await new Promise<string>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.setTimeout(1000);
      socket.once('data', (data) => (socket.destroy(), resolve(data.toString())));
      // docker-proxy accepts and closes while sshd is not up yet.
      socket.once('close', () => resolve(''));
      socket.once('error', () => resolve(''));
      socket.once('timeout', () => (socket.destroy(), resolve('')));
    });
    if (banner.startsWith('SSH-')) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`sshd in ${container} does not answer on 127.0.0.1:${port}`);
}

test.before(async () => {
  await run('bash', [path.join(REPO_ROOT, 'scripts', 'vm-image.sh')], { timeoutMs: 600_000 });
  program = await scratchProgram('command-plugin-remote', PROGRAM);
  const keys = path.join(program.dir, '..', 'keys');
  fs.mkdirSync(keys);
  const user = keyPair(keys, 'user');
  fs.writeFileSync(path.join(keys, 'authorized_keys'), user.publicKey, { mode: 0o600 });
  const port = await freePort();
  await docker([
    'run',
    '-d',
    '--name',
    container,
    '--label',
    'cnp.test=command-plugin',
    '-p',
    `127.0.0.1:${port}:22`,
    '-v',
    `${path.join(keys, 'authorized_keys')}:/root/.ssh/authorized_keys:ro`,
    '--entrypoint',
    'sh',
    VM_IMAGE,
    '-c',
    'install -d -m 0755 /run/sshd && ssh-keygen -A -q && exec /usr/sbin/sshd -D -e',
  ]);
  await waitForSshd(port);
  hostname = (await docker(['exec', container, 'hostname'])).trim();
  hostKey = await containerHostKey(container);
  await program.ok(['config', 'set', 'port', String(port)]);
  await program.ok(['config', 'set', '--secret', 'privateKey', '--', user.privateKey]);
  await program.ok(['config', 'set', 'stdin', 'first']);
});

test.after.always(async () => {
  await docker(['rm', '-f', container]).catch(() => undefined);
  program?.remove();
});

const up = () => program.ok(['up', '--yes', '--skip-preview']);
const outputs = async () => JSON.parse(await program.ok(['stack', 'output', '--json'])) as { id: string; stdout: string };

test.serial(
  'create runs the command in a session on the host, stdin on its standard input; the connection is secret in the state',
  async (t) => {
    await up();
    t.is((await outputs()).stdout, `${hostname}|first|unset`);
    const exported = await program.ok(['stack', 'export']);
    t.false(exported.includes('PRIVATE KEY'), 'the key is nowhere in clear in the state');
    t.false(exported.includes('"host": "127.0.0.1"'), 'the connection is one secret');
  },
);

test.serial(
  'a changed stdin is an update: create runs again; PULUMI_COMMAND_STDOUT is not accepted by this sshd, and that is no error',
  async (t) => {
    const before = await outputs();
    await program.ok(['config', 'set', 'stdin', 'second']);
    await up();
    const after = await outputs();
    t.is(after.id, before.id);
    t.is(after.stdout, `${hostname}|second|unset`);
  },
);

test.serial(
  'with hostKey only that key is accepted: a wrong one fails after dialErrorLimit failed dials, the right one passes',
  async (t) => {
    const other = keyPair(path.join(program.dir, '..', 'keys'), 'other');
    await program.ok(['config', 'set', 'hostKey', other.publicKey.split(' ').slice(0, 2).join(' ')]);
    const failed = await program.pulumi(['up', '--yes', '--skip-preview']);
    t.not(failed.code, 0);
    t.regex(`${failed.stdout}\n${failed.stderr}`, /after 3 failed attempts: .*Host key verification failed/);
    await program.ok(['config', 'set', 'hostKey', hostKey]);
    await up();
    t.is((await outputs()).stdout, `${hostname}|second|unset`);
  },
);

test.serial('destroy runs delete on the host, with the last stdout offered as PULUMI_COMMAND_STDOUT (dropped by sshd)', async (t) => {
  await program.ok(['destroy', '--yes', '--skip-preview']);
  t.is((await docker(['exec', container, 'cat', '/tmp/deleted'])).trim(), 'deleted');
});
