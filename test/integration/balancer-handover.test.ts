// Two balancers on the same ports (REUSE_PORT=true), as the stack runs an old and a new one while one
// replaces the other (infra/README.md, "The balancer hands over"): the second starts on ports the first
// holds, each one's health probe answers for itself through its own admin socket, and once the first is
// stopped the second serves alone. Without REUSE_PORT the second cannot start. Real Consul, nginx and a
// replica. Requests go one at a time here: the connections queued on a closing socket, which only
// net.ipv4.tcp_migrate_req saves (set in the stack's own namespace, never on this host), are the system
// test's to show (test/system/stack.test.ts scenario 7).
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { freshBundle } from '../../harness/bundles';
import { startConsul, type ConsulEndpoint } from '../../harness/consul';
import { sendRequests } from '../../harness/load';
import { freePorts } from '../../harness/ports';
import { startProcess, waitFor, type Managed } from '../../harness/processes';
import { startReplica } from '../../harness/service';

const PROBE = path.resolve(__dirname, '../../balancer/dist/health-probe.js');

/** The balancer's health probe for the one whose WORK_DIR is `workDir`: true when it exits 0. */
function probe(workDir: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(process.execPath, [PROBE], { env: { ...process.env, WORK_DIR: workDir }, timeout: 5000 }, (error) => resolve(!error));
  });
}

async function startOn(
  t: ExecutionContext,
  consul: ConsulEndpoint,
  ports: number[],
  reusePort: boolean,
): Promise<{ proc: Managed; workDir: string }> {
  const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'balancer-handover-'));
  t.teardown(() => fs.rm(workDir, { recursive: true, force: true }));
  const proc = startProcess(process.execPath, [freshBundle('balancer')], {
    CONSUL_HTTP_ADDR: consul.httpAddr,
    CONSUL_HTTP_TOKEN: await consul.roleToken('balancer'),
    LISTEN_ADDRESS: '127.0.0.1',
    LISTEN_PORT: String(ports[0]),
    ADMIN_ADDRESS: '127.0.0.1',
    ADMIN_PORT: String(ports[1]),
    REUSE_PORT: String(reusePort),
    WORK_DIR: workDir,
  });
  t.teardown(() => proc.stop(5000));
  return { proc, workDir };
}

test('a second balancer with REUSE_PORT starts on the ports of the first, is healthy on its own, and serves alone once the first stops', async (t) => {
  t.timeout(90_000);
  const consul = await startConsul();
  t.teardown(() => consul.stop());
  const replica = await startReplica(consul, 'hello', 'hello-1');
  t.teardown(() => replica.stop(5000));
  await waitFor('the replica to pass in Consul', async () => (await consul.passing('hello')).includes('hello-1'), 20_000, 50);

  const ports = await freePorts(2);
  const url = `http://127.0.0.1:${ports[0]}/`;
  const old = await startOn(t, consul, ports, true);
  await waitFor('the first balancer to be healthy', () => probe(old.workDir), 20_000, 100);

  // Without REUSE_PORT nginx cannot bind what the first holds, and the balancer exits non-zero.
  const refused = await startOn(t, consul, ports, false);
  t.not(await refused.proc.exited, 0);
  t.regex(refused.proc.output(), /Address already in use/);

  const next = await startOn(t, consul, ports, true);
  await waitFor('the second balancer to be healthy', () => probe(next.workDir), 20_000, 100);
  t.true(await probe(old.workDir), 'each probe answers for its own balancer');
  const both = await sendRequests(url, 100);
  t.deepEqual(both.failures, [], 'both serve the port');

  t.is(await old.proc.stop(10_000), 0, 'the first stops gracefully');
  t.false(await probe(old.workDir), "the first one's socket is gone with it");
  t.true(await probe(next.workDir));
  const after = await sendRequests(url, 100);
  t.deepEqual(after.failures, [], 'the second serves alone');
  t.deepEqual(Object.keys(after.byInstance), ['hello-1']);
});
