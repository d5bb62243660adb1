// A balancer that starts while replicas are already passing (a new balancer container replacing the old
// one on its published port) serves them from its very first request: its first nginx config already
// holds the set, instead of a 503 until the first reload. Real Consul, nginx and a service replica.
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { BALANCER_BUNDLE } from '../../harness/balancer';
import { startConsul } from '../../harness/consul';
import { requestOnce } from '../../harness/load';
import { freePort } from '../../harness/ports';
import { startProcess, waitFor } from '../../harness/processes';
import { startReplica } from '../../harness/service';

const connects = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });

test('the first request a new balancer accepts is answered by a replica that was already passing', async (t) => {
  t.timeout(60_000);
  const consul = await startConsul();
  t.teardown(() => consul.stop());
  const replica = await startReplica(consul.httpAddr, 'first', 'first-1');
  t.teardown(() => replica.stop(5000));
  await waitFor('the replica to pass in Consul', async () => (await consul.passing('first')).includes('first-1'), 20_000, 50);

  const port = await freePort();
  const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'balancer-first-'));
  t.teardown(() => fs.rm(workDir, { recursive: true, force: true }));
  const balancer = startProcess(process.execPath, [BALANCER_BUNDLE], {
    CONSUL_HTTP_ADDR: consul.httpAddr,
    SERVICE_NAME: 'first',
    LISTEN_ADDRESS: '127.0.0.1',
    LISTEN_PORT: String(port),
    WORK_DIR: workDir,
  });
  t.teardown(() => balancer.stop(5000));
  await waitFor('the balancer to accept connections', () => connects(port), 15_000, 5);
  // What is checked is who answers, not how fast: a loaded machine gets a generous deadline.
  const first = await requestOnce(`http://127.0.0.1:${port}/`, 10_000);
  t.is(first.status, 200, `${first.error ?? ''} after ${Math.round(first.ms)} ms; balancer log: ${balancer.output().slice(-2000)}`);
  t.is(first.instance, 'first-1');
});
