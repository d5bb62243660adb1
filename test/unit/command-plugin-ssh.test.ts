// remote.Command's SSH client as the command stand-in tells it to OpenSSH (harness/plugins/command/ssh.ts):
// the exact ssh arguments, the session's command, stdin and environment, and the dial retries against a
// loopback port nothing listens on. The live path (a real sshd) is the VM system test's (test/system/vms.test.ts).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { freePort } from '../../harness/ports';
import { remoteCommand } from '../../harness/plugins/command/remote';
import { dialDelayMs, remoteConnection, remoteSshArgs, runOverSsh } from '../../harness/plugins/command/ssh';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-command-ssh-'));
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }));

const base = remoteConnection({ host: '127.0.0.1', port: 2201 });
/** Where every command line of `base` ends: port, user, then the host after `--`. */
const DESTINATION = ['-p', '2201', '-l', 'root', '--', '127.0.0.1'];

test("the connection's defaults: user root, port 22, 15 s per dial, 10 failed dials (remote/connection.go Annotate)", (t) => {
  t.deepEqual(remoteConnection({ host: 'h' }), {
    host: 'h',
    port: 22,
    user: 'root',
    privateKey: undefined,
    hostKey: undefined,
    perDialTimeout: 15,
    dialErrorLimit: 10,
  });
});

test('with a privateKey: no ssh config, that key from a 0600 file (and the agent), no host key check', (t) => {
  const dir = fs.mkdtempSync(path.join(tmp, 'key-'));
  const args = remoteSshArgs({ ...base, privateKey: 'PRIVATE' }, dir);
  t.deepEqual(args, [
    '-F',
    '/dev/null',
    '-o',
    'BatchMode=yes',
    '-o',
    'PasswordAuthentication=no',
    '-i',
    path.join(dir, 'key'),
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'LogLevel=ERROR',
    '-o',
    'ConnectTimeout=15',
    ...DESTINATION,
  ]);
  t.is(fs.readFileSync(path.join(dir, 'key'), 'utf8'), 'PRIVATE\n');
  t.is(fs.statSync(path.join(dir, 'key')).mode & 0o777, 0o600);
});

test('without a key only the agent; a hostKey is the only key accepted; perDialTimeout 0 sets no timeout', (t) => {
  const dir = fs.mkdtempSync(path.join(tmp, 'hostkey-'));
  const args = remoteSshArgs({ ...base, hostKey: 'ssh-ed25519 AAAAC3Nz\n', perDialTimeout: 0 }, dir, ['PULUMI_COMMAND_STDOUT']);
  t.deepEqual(args.slice(6), [
    '-o',
    'IdentityFile=none',
    '-o',
    `UserKnownHostsFile=${path.join(dir, 'known_hosts')}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'SendEnv=PULUMI_COMMAND_STDOUT',
    ...DESTINATION,
  ]);
  t.is(fs.readFileSync(path.join(dir, 'known_hosts'), 'utf8'), '[127.0.0.1]:2201 ssh-ed25519 AAAAC3Nz\n');
  remoteSshArgs({ ...base, port: 22, hostKey: 'ssh-ed25519 K' }, dir);
  t.is(fs.readFileSync(path.join(dir, 'known_hosts'), 'utf8'), '127.0.0.1 ssh-ed25519 K\n');
});

test('a failed dial is retried as retry.Until waits: 100 ms, growing 1.5x, at most 5 s', (t) => {
  t.deepEqual([1, 2, 3, 4].map(dialDelayMs), [100, 150, 225, 337.5]);
  t.is(dialDelayMs(20), 5000);
});

test('dialling a closed loopback port: dialErrorLimit failures tolerated, one more tried, then the error names the count', async (t) => {
  const port = await freePort();
  const retries: number[] = [];
  const error = await t.throwsAsync(
    runOverSsh(remoteConnection({ host: '127.0.0.1', port, dialErrorLimit: 2, perDialTimeout: 5 }), 'true', {
      timeoutMs: 30_000,
      onRetry: (attempt) => retries.push(attempt),
    }),
  );
  t.deepEqual(retries, [1, 2]);
  t.regex(error?.message ?? '', new RegExp(`^after 2 failed attempts: ssh root@127.0.0.1:${port}: .*Connection refused`));
});

test.serial("a remote.Command's session: the command, stdin, and the last outputs sent as variables of ssh's environment", async (t) => {
  // A stand-in `ssh` first on PATH records its arguments, stdin and the variables it was given, then plays the session.
  const bin = fs.mkdtempSync(path.join(tmp, 'bin-'));
  const record = path.join(tmp, 'session');
  fs.writeFileSync(
    path.join(bin, 'ssh'),
    `#!/bin/sh\nprintf '%s\\n' "$@" > ${record}.args\ncat > ${record}.stdin\nprintf '%s' "$PULUMI_COMMAND_STDOUT" > ${record}.env\necho remote-out\nexit "\${EXIT:-0}"\n`,
    { mode: 0o755 },
  );
  const saved = { PATH: process.env.PATH, EXIT: process.env.EXIT };
  process.env.PATH = `${bin}${path.delimiter}${saved.PATH}`;
  try {
    const connection = { host: '127.0.0.1', port: 2201, user: 'admin', privateKey: 'K', perDialTimeout: 15, dialErrorLimit: 60 };
    const news = { create: 'sh -s', stdin: 'echo script', connection };
    const created = await remoteCommand.create(news, 0, 'urn:pulumi:dev::p::command:remote:Command::vm1-bootstrap');
    t.is(created.outs.stdout, 'remote-out');
    const args = fs.readFileSync(`${record}.args`, 'utf8').trim().split('\n');
    t.deepEqual(args.slice(-7), ['-p', '2201', '-l', 'admin', '--', '127.0.0.1', 'sh -s']);
    t.false(args.includes('SendEnv=PULUMI_COMMAND_STDOUT'), 'a create has no previous output to send');
    t.is(fs.readFileSync(`${record}.stdin`, 'utf8'), 'echo script');

    await remoteCommand.update(created.id, created.outs, { ...news, create: 'sh -s again' }, 0);
    t.true(fs.readFileSync(`${record}.args`, 'utf8').includes('SendEnv=PULUMI_COMMAND_STDOUT'));
    t.is(fs.readFileSync(`${record}.env`, 'utf8'), 'remote-out');

    process.env.EXIT = '4';
    const error = await t.throwsAsync(remoteCommand.update(created.id, created.outs, news, 0));
    t.is(error?.message, 'Process exited with status 4: running "sh -s":\nremote-out\n');
  } finally {
    process.env.PATH = saved.PATH;
    if (saved.EXIT === undefined) delete process.env.EXIT;
    else process.env.EXIT = saved.EXIT;
  }
});
