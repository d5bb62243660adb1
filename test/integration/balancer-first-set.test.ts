// A balancer that starts while replicas are already passing (a new balancer container replacing the old
// one on its published port) serves them from its very first request: its first nginx config already
// holds the set, instead of a 503 until the first reload. Real Consul, nginx and a service replica.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { freshBundle } from '../../harness/bundles';
import { startConsul } from '../../harness/consul';
import { requestOnce } from '../../harness/load';
import { freePorts } from '../../harness/ports';
import { startProcess, waitFor } from '../../harness/processes';
import { startReplica } from '../../harness/service';

test('the first request a new balancer accepts is answered by a replica that was already passing', async (t) => {
  t.timeout(60_000);
  const consul = await startConsul();
  t.teardown(() => consul.stop());
  const replica = await startReplica(consul, 'first', 'first-1');
  t.teardown(() => replica.stop(5000));
  await waitFor('the replica to pass in Consul', async () => (await consul.passing('first')).includes('first-1'), 20_000, 50);

  const [port, adminPort] = await freePorts(2);
  const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'balancer-first-'));
  t.teardown(() => fs.rm(workDir, { recursive: true, force: true }));
  const balancer = startProcess(process.execPath, [freshBundle('balancer')], {
    CONSUL_HTTP_ADDR: consul.httpAddr,
    CONSUL_HTTP_TOKEN: await consul.roleToken('balancer'),
    LISTEN_ADDRESS: '127.0.0.1',
    LISTEN_PORT: String(port),
    ADMIN_PORT: String(adminPort),
    WORK_DIR: workDir,
  });
  t.teardown(() => balancer.stop(5000));
  // Requests back to back until the port stops refusing: the first one it takes must be answered by the
  // replica. A balancer that ran `nginx -t` before its first start had the check listen there for a moment,
  // and the requests it took were reset. What is checked is who answers, not how fast.
  const first = await waitFor(
    'the port to stop refusing',
    async () => {
      const answer = await requestOnce(`http://127.0.0.1:${port}/`, 10_000);
      return answer.error?.includes('ECONNREFUSED') ? undefined : answer;
    },
    15_000,
    1,
  );
  t.is(first.status, 200, `${first.error ?? ''} after ${Math.round(first.ms)} ms; balancer log: ${balancer.output().slice(-2000)}`);
  t.is(first.instance, 'first-1');
});
