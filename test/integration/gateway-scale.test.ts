// The gateway at scale: 300 routed services under the stack's own Consul limits (http_max_conns_per_client
// 100, lib/consul-limits.ts), registered through the agent API and pointing at three real backends, with
// real Consul and real nginx. All are routed at start; then one service is added, one removed and one's
// instances changed: each is reflected and no other service's routes or upstreams are touched. The
// watcher's connections to Consul stay within MAX_CONSUL_CONNECTIONS all along.
import test, { type ExecutionContext } from 'ava';
import { MAX_CONSUL_CONNECTIONS } from '../../balancer/consul-client';
import { connectionsTo, registerRoutedServices, routedInstance, routedName, startBackends, type Backends } from '../../harness/backends';
import { startBalancer, type BalancerStatusJson, type RunningBalancer } from '../../harness/balancer';
import { startConsul, type ConsulAgent } from '../../harness/consul';
import { stopAll } from '../../harness/processes';

const SERVICES = 300;

let consul: ConsulAgent;
let backends: Backends;
let balancer: RunningBalancer;
/** The most connections the watcher held to Consul at one sample, by local port. */
let mostConnections: number[] = [];
let sampler: NodeJS.Timeout | undefined;

/** GET through the public listener: the status and, for a 200, the backend's answer. */
async function get(pathname: string): Promise<{ status: number; body: { backend?: number; path?: string } }> {
  const res = await fetch(balancer.url + pathname, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as { backend?: number; path?: string } };
}

const routedCount = (status: BalancerStatusJson) => Object.values(status.services).filter((s) => s.upstreams.length > 0).length;

/** Every service but `except`, as the status shows it: routes, upstreams and since when. */
const othersOf = (status: BalancerStatusJson, except: readonly string[]) =>
  Object.fromEntries(Object.entries(status.services).filter(([name]) => !except.includes(name)));

test.before(async () => {
  consul = await startConsul();
  backends = await startBackends(3);
  await registerRoutedServices(consul, 0, SERVICES, backends.ports);
  balancer = await startBalancer(consul);
  const pid = balancer.child.pid!;
  sampler = setInterval(() => {
    try {
      const now = connectionsTo(pid, consul.httpPort);
      if (now.length > mostConnections.length) mostConnections = now;
    } catch {
      // the watcher has exited; the tests report it
    }
  }, 20);
});

test.after.always(async (t) => {
  if (sampler) clearInterval(sampler);
  if (balancer) t.log(`balancer log tail:\n${balancer.logTail(10)}`);
  await balancer?.cleanup();
  await backends?.close();
  await consul?.stop();
  await stopAll();
});

/** The watcher never held more than MAX_CONSUL_CONNECTIONS connections to Consul (sampled every 20 ms). */
function connectionsBounded(t: ExecutionContext) {
  const most = mostConnections.length;
  t.true(
    most >= 1 && most <= MAX_CONSUL_CONNECTIONS,
    `the watcher held ${most} connections to Consul at once (at most ${MAX_CONSUL_CONNECTIONS}), from local ports ${mostConnections.join(', ')}`,
  );
}

test.serial(`all ${SERVICES} services are routed at start, each to its backend`, async (t) => {
  t.timeout(90_000);
  const status = await balancer.waitForStatus(`all ${SERVICES} routed`, (s) => routedCount(s) === SERVICES, 30_000);
  for (let i = 0; i < SERVICES; i++) {
    const name = routedName(i);
    t.deepEqual(status.services[name]?.routes, [`/${name}`], name);
    t.deepEqual(status.services[name]?.upstreams, [`127.0.0.1:${backends.ports[i % backends.ports.length]}`], name);
  }
  // Every route answers through nginx, from the backend its service points at.
  for (let i = 0; i < SERVICES; i += 8) {
    const got = await Promise.all(Array.from({ length: Math.min(8, SERVICES - i) }, (_, k) => get(`/${routedName(i + k)}/x`)));
    got.forEach((g, k) =>
      t.like(g, { status: 200, body: { backend: backends.ports[(i + k) % backends.ports.length] } }, routedName(i + k)),
    );
  }
  t.is((await get('/nope')).status, 404);
  connectionsBounded(t);
});

test.serial('one service added, one removed and one changed: each reflected, no other service touched', async (t) => {
  t.timeout(90_000);
  const added = routedName(SERVICES);
  const removed = routedName(10);
  const changed = routedName(20);
  const before = await balancer.waitForStatus(`all ${SERVICES} routed`, (s) => routedCount(s) === SERVICES, 30_000);
  const touched = [added, removed, changed];

  await consul.register(routedInstance(added, `${added}-1`, backends.ports[0]));
  let status = await balancer.waitForStatus(`${added} routed`, (s) => (s.services[added]?.upstreams.length ?? 0) === 1, 30_000);
  t.like(await get(`/${added}`), { status: 200, body: { backend: backends.ports[0] } });
  t.deepEqual(othersOf(status, touched), othersOf(before, touched), 'adding one service touched no other');

  await consul.deregister(`${removed}-1`);
  status = await balancer.waitForStatus(`${removed} gone`, (s) => s.services[removed] === undefined, 30_000);
  t.is((await get(`/${removed}`)).status, 404);
  t.deepEqual(othersOf(status, touched), othersOf(before, touched), 'removing one service touched no other');

  // Its instance moves to another backend: a new instance, then the old one leaves.
  const oldPort = backends.ports[20 % backends.ports.length];
  const newPort = backends.ports[(20 + 1) % backends.ports.length];
  await consul.register(routedInstance(changed, `${changed}-2`, newPort));
  await balancer.waitForStatus(`${changed} with two upstreams`, (s) => (s.services[changed]?.upstreams.length ?? 0) === 2, 30_000);
  await consul.deregister(`${changed}-1`);
  status = await balancer.waitForStatus(
    `${changed} on its new backend only`,
    (s) => (s.services[changed]?.upstreams ?? []).every((u) => u === `127.0.0.1:${newPort}`),
    30_000,
  );
  t.deepEqual(status.services[changed].upstreams, [`127.0.0.1:${newPort}`]);
  t.not(oldPort, newPort);
  for (let i = 0; i < 6; i++) t.like(await get(`/${changed}`), { status: 200, body: { backend: newPort } });
  t.deepEqual(othersOf(status, touched), othersOf(before, touched), 'changing one service touched no other');

  connectionsBounded(t);
});
