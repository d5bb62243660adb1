// Entries nginx cannot load (a host name that does not resolve, an IPv6 zone id) registered in a real
// Consul next to real replicas: the balancer must drop and report them, and keep following the real ones.
import test from 'ava';
import { startBalancer, upstreamsOf, type RunningBalancer } from '../../harness/balancer';
import { startConsul, type ConsulAgent } from '../../harness/consul';
import { describeFailures, startSteadyLoop } from '../../harness/load';
import { stopAll, waitFor } from '../../harness/processes';
import { startReplica, type Replica } from '../../harness/service';

const SERVICE = 'hello';
let consul: ConsulAgent;
let balancer: RunningBalancer;
const replicas: Replica[] = [];
const addr = (r: Replica) => `127.0.0.1:${r.port}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Registers an instance of SERVICE the way a faulty or hostile replica could, with the replica token:
 * with a TTL check that starts passing (a check of its own, so only the address is wrong), or with no
 * check at all (Consul then counts it as passing on the node's serfHealth alone).
 */
async function registerEntry(id: string, address: string, port: number, check: 'passing-ttl' | 'none'): Promise<void> {
  const res = await fetch(`${consul.httpAddr}/v1/agent/service/register`, {
    method: 'PUT',
    headers: { 'X-Consul-Token': await consul.roleToken('replica', SERVICE) },
    body: JSON.stringify({
      ID: id,
      Name: SERVICE,
      Address: address,
      Port: port,
      ...(check === 'passing-ttl' ? { Check: { TTL: '10m', Status: 'passing' } } : {}),
    }),
    signal: AbortSignal.timeout(5000),
  });
  if (!res.ok) throw new Error(`registering ${id}: HTTP ${res.status} ${await res.text()}`);
}

async function deregister(id: string): Promise<void> {
  const res = await fetch(`${consul.httpAddr}/v1/agent/service/deregister/${id}`, {
    method: 'PUT',
    headers: { 'X-Consul-Token': consul.managementToken },
    signal: AbortSignal.timeout(5000),
  });
  if (!res.ok) throw new Error(`deregistering ${id}: HTTP ${res.status} ${await res.text()}`);
}

/** Polls until `check` holds; false (not a throw) after the timeout, so the test goes on to show the damage. */
async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  return waitFor('condition', async () => check().catch(() => false), timeoutMs, 50).then(
    () => true,
    () => false,
  );
}

test.before(async () => {
  consul = await startConsul();
  balancer = await startBalancer(consul);
});

test.after.always(async (t) => {
  if (balancer) t.log(`balancer log tail:\n${balancer.logTail(12)}`);
  await Promise.all(replicas.map((r) => r.stop(3000)));
  await balancer?.cleanup();
  await consul?.stop();
  await stopAll();
});

test.serial(
  'a host name that does not resolve and an IPv6 zone id are dropped and reported; replacing the real replicas fails no request',
  async (t) => {
    const r1 = await startReplica(consul, SERVICE, 'real-1');
    replicas.push(r1);
    await waitFor('the balancer to serve real-1', async () => (await balancer.upstreams(SERVICE)).includes(addr(r1)), 15_000, 25);

    await registerEntry('bad-name', 'does-not-exist.invalid', 8080, 'passing-ttl');
    await registerEntry('bad-zone', 'fe80::1%lo', 8080, 'passing-ttl');
    await waitFor('Consul to list both bad entries as passing', async () => (await consul.passing(SERVICE)).length === 3, 10_000, 50);

    const reported = await eventually(async () => {
      const ids = (await balancer.status()).services[SERVICE].dropped.map((d) => d.id);
      return ids.includes('bad-name') && ids.includes('bad-zone');
    }, 10_000);

    // Replace the real replica while clients keep sending requests.
    const loop = startSteadyLoop(balancer.url + '/', { maxMs: 60_000 });
    await sleep(500);
    const r2 = await startReplica(consul, SERVICE, 'real-2');
    replicas.push(r2);
    await waitFor('Consul to list real-2 as passing', async () => (await consul.passing(SERVICE)).includes('real-2'), 15_000, 50);
    const served = await eventually(async () => (await balancer.upstreams(SERVICE)).includes(addr(r2)), 10_000);
    const r1Exit = await r1.stop(10_000);
    await eventually(async () => !(await balancer.upstreams(SERVICE)).includes(addr(r1)), 10_000);
    await sleep(1500);
    const report = await loop.stop();

    // Asserted only now (an assertion ends the test), so a failing run shows what clients suffered.
    t.is(report.failures.length, 0, describeFailures(report));
    t.true(report.total > 50, `only ${report.total} requests`);
    t.true((report.byInstance['real-2'] ?? 0) > 0, JSON.stringify(report.byInstance));
    t.true(reported, 'both bad entries are listed under dropped in /_balancer/status');
    t.true(served, 'the new replica reaches nginx although bad entries stand in Consul');
    t.is(r1Exit, 0, 'real-1 drained and exited 0');

    const status = await balancer.status();
    t.deepEqual(upstreamsOf(status, SERVICE), [addr(r2)]);
    const dropped = new Map(status.services[SERVICE].dropped.map((d) => [d.id, d.reason]));
    t.regex(dropped.get('bad-name') ?? '', /does-not-exist\.invalid.*(does not resolve|ENOTFOUND|EAI_AGAIN|no answer)/);
    t.regex(dropped.get('bad-zone') ?? '', /zone/);
    t.is(status.lastReloadError, null, 'nginx never refused a config');
    const warned = balancer
      .output()
      .split('\n')
      .filter((l) => l.includes('Consul registrations left out of the routing table'));
    t.true(
      warned.some((l) => l.includes('bad-name') && l.includes('bad-zone')),
      'the drop is logged with both ids',
    );
    await deregister('bad-name');
    await deregister('bad-zone');
  },
);

test.serial('an instance registered without a health check of its own passes in Consul but gets no traffic, and is reported', async (t) => {
  const real = await startReplica(consul, SERVICE, 'real-3');
  replicas.push(real);
  await waitFor('the balancer to serve real-3', async () => (await balancer.upstreams(SERVICE)).includes(addr(real)), 15_000, 25);
  // A well-formed address of its own, so only the missing check can keep it out (not a bad address, not a duplicate).
  await registerEntry('unchecked', '127.0.0.1', 9, 'none');
  await waitFor(
    'Consul to list the unchecked entry as passing',
    async () => (await consul.passing(SERVICE)).includes('unchecked'),
    10_000,
    50,
  );
  await waitFor(
    'the balancer to report the unchecked entry',
    async () => (await balancer.status()).services[SERVICE].dropped.some((d) => d.id === 'unchecked'),
    10_000,
    50,
  );
  const status = await balancer.status();
  t.true(upstreamsOf(status, SERVICE).includes(addr(real)), upstreamsOf(status, SERVICE).join(', '));
  t.false(upstreamsOf(status, SERVICE).includes('127.0.0.1:9'), upstreamsOf(status, SERVICE).join(', '));
  const reason = status.services[SERVICE].dropped.find((d) => d.id === 'unchecked')?.reason ?? '';
  t.regex(reason, /no health check of its own/);
  t.true(
    balancer
      .output()
      .split('\n')
      .some((l) => l.includes('Consul registrations left out of the routing table') && l.includes('unchecked')),
  );
  await deregister('unchecked');
});
