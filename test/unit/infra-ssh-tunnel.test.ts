// The ACL init step's SSH tunnel (lib/ssh-tunnel.ts): its settings from the environment, and a clear
// error when the tunnel does not come up (the real ssh against a closed port on loopback). The tunnel
// that works runs in the multi-VM system test (test/system/vms.test.ts) against the VMs' sshd.
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import test from 'ava';
import { openSshTunnel, parseSshTunnelEnv } from '../../lib/ssh-tunnel';

const ROOT = path.resolve(__dirname, '../..');

/** A loopback port nothing listens on (taken, then released). */
const closedPort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

test('no ACL_SSH_* means no tunnel; all three make the settings', (t) => {
  t.is(parseSshTunnelEnv({}), undefined);
  t.deepEqual(parseSshTunnelEnv({ ACL_SSH_TARGET: 'root@10.0.0.1', ACL_SSH_PORT: '22', ACL_SSH_OPTS: '["-o","BatchMode=yes"]' }), {
    target: 'root@10.0.0.1',
    port: 22,
    opts: ['-o', 'BatchMode=yes'],
  });
});

for (const [what, env] of [
  ['a target without user', { ACL_SSH_TARGET: '10.0.0.1', ACL_SSH_PORT: '22', ACL_SSH_OPTS: '[]' }],
  ['port 0', { ACL_SSH_TARGET: 'root@10.0.0.1', ACL_SSH_PORT: '0', ACL_SSH_OPTS: '[]' }],
  ['opts not JSON', { ACL_SSH_TARGET: 'root@10.0.0.1', ACL_SSH_PORT: '22', ACL_SSH_OPTS: '-i key' }],
  ['opts not strings', { ACL_SSH_TARGET: 'root@10.0.0.1', ACL_SSH_PORT: '22', ACL_SSH_OPTS: '[1]' }],
  ['only the target', { ACL_SSH_TARGET: 'root@10.0.0.1' }],
] as const) {
  test(`ACL_SSH_* with ${what} is refused, naming the variables and what is allowed`, (t) => {
    const error = t.throws(() => parseSshTunnelEnv(env));
    t.regex(error.message, /ACL_SSH_TARGET = .* are not allowed: use ACL_SSH_TARGET = user@host, ACL_SSH_PORT = 1-65535/);
  });
}

test("a tunnel that cannot connect rejects with ssh's own error, naming the target", async (t) => {
  const port = await closedPort();
  const error = await t.throwsAsync(
    openSshTunnel({ target: 'root@127.0.0.1', port, opts: ['-F', '/dev/null', '-o', 'ConnectTimeout=5'] }, '127.0.0.1:8500'),
  );
  t.regex(
    error.message,
    new RegExp(
      `^the ssh tunnel to root@127\\.0\\.0\\.1 port ${port} \\(forwarding 127\\.0\\.0\\.1:\\d+ to 127\\.0\\.0\\.1:8500\\) did not come up: ssh ended \\(exit 255\\): .*Connection refused`,
    ),
  );
});

test('acl-init through a tunnel that does not come up stops with exit 2 and that message', async (t) => {
  const port = await closedPort();
  const result = spawnSync('node', ['--import', 'tsx', 'infra/acl-init.ts'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: {
      ...process.env,
      CONSUL_HTTP_ADDR: 'http://127.0.0.1:8500',
      CONSUL_HTTP_TOKEN: '00000000-0000-4000-8000-000000000000',
      ACL_SERVICE_NAME: 'hello',
      ACL_AGENT_NODES: 'vm1,vm2',
      ACL_SSH_TARGET: 'root@127.0.0.1',
      ACL_SSH_PORT: String(port),
      ACL_SSH_OPTS: JSON.stringify(['-F', '/dev/null', '-o', 'ConnectTimeout=5']),
    },
  });
  t.is(result.status, 2, result.stderr);
  t.regex(
    result.stderr,
    /^acl-init: the ssh tunnel to root@127\.0\.0\.1 port \d+ .* did not come up: ssh ended \(exit 255\): .*Connection refused/,
  );
});
