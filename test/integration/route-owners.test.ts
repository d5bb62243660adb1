// Paths belong to whom the operator says (ROUTE_OWNERS), against a real Consul with the stack's ACLs, real
// replicas of hello and of the activity service and the real balancer (watcher and nginx): a hello replica's
// own token registers more instances of hello that carry the activity service's paths, both ways a
// compromised replica would try (the whole path and its stream; the stream alone). The balancer with the
// stack's grants drops and reports them and sends every stream request to the activity service; a balancer
// without grants on the same Consul hands the stream to the impostor, which is what the grants prevent.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { startActivity, type ActivityReplica } from '../../harness/activity';
import { startBalancer, type RunningBalancer } from '../../harness/balancer';
import { startConsul, type ConsulAgent } from '../../harness/consul';
import { stopAll, waitFor } from '../../harness/processes';
import { startReplica, type Replica } from '../../harness/service';
import { stackRouteOwners } from '../../infra/route-grants';

let consul: ConsulAgent;
let hello: Replica;
let activity: ActivityReplica;
/** The stack's balancer: ROUTE_OWNERS as the deploy sets it. */
let owned: RunningBalancer;
/** The same balancer without grants: the services' tags decide. */
let open: RunningBalancer;
/** What the compromised replica points its registrations at: it serves a fake event on every path. */
let impostor: http.Server;
let helloToken: string;

test.before(async () => {
  consul = await startConsul();
  helloToken = await consul.roleToken('replica', 'hello');
  // hello first: the older service, which without grants wins a conflict.
  hello = await startReplica(consul, 'hello', 'h1');
  await waitFor('hello registered', async () => (await consul.passing('hello')).length === 1, 15_000);
  activity = await startActivity(consul, 'act-1');
  owned = await startBalancer(consul, { ROUTE_OWNERS: stackRouteOwners('hello') });
  open = await startBalancer(consul);
  for (const balancer of [owned, open]) {
    await balancer.waitForUpstreams('hello', 1);
    await balancer.waitForUpstreams('activity', 1);
  }
  impostor = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'x-instance-id': 'impostor' });
    res.end(req.url === '/health' ? '' : 'data: {"fake":true}\n\n');
  });
  await new Promise<void>((r) => impostor.listen(0, '127.0.0.1', r));
});

test.after.always(async (t) => {
  if (owned) t.log(`balancer log tail:\n${owned.logTail(6)}`);
  await owned?.cleanup();
  await open?.cleanup();
  await Promise.all([hello?.stop(3000), activity?.stop(3000)]);
  await new Promise<void>((r) => (impostor ? impostor.close(() => r()) : r()));
  await consul?.stop();
  await stopAll();
});

/** A call to Consul's agent API with the hello replica's own token (what a compromised replica holds). */
async function asHelloReplica(method: 'PUT', apiPath: string, body?: unknown): Promise<number> {
  const res = await fetch(consul.httpAddr + apiPath, {
    method,
    headers: { 'X-Consul-Token': helloToken },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  await res.arrayBuffer();
  return res.status;
}

/** Registers an instance named `name` at the impostor, with `tags` and a passing check of its own, as the hello replica. */
const registerImpostor = (id: string, name: string, tags: string[]) =>
  asHelloReplica('PUT', '/v1/agent/service/register', {
    ID: id,
    Name: name,
    Tags: tags,
    Address: '127.0.0.1',
    Port: (impostor.address() as AddressInfo).port,
    Check: { HTTP: `http://127.0.0.1:${(impostor.address() as AddressInfo).port}/health`, Interval: '1s' },
  });

/** Who answers `n` stream requests through `balancer` (X-Instance-Id, or the status for the gateway's own answers). */
async function streamAnswerers(balancer: RunningBalancer, n = 8, path = '/api/activity/stream'): Promise<string[]> {
  const who: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(balancer.url + path, { signal: AbortSignal.timeout(5000) });
    who.push(res.headers.get('x-instance-id') ?? `HTTP ${res.status}`);
    await res.body?.cancel();
  }
  return who;
}

const droppedFor = (status: Awaited<ReturnType<RunningBalancer['status']>>, service: string) =>
  status.droppedRoutes.filter((d) => d.service === service);

test.serial("the hello replica's token may register hello with any tags, but no instance of the activity service", async (t) => {
  t.is(await registerImpostor('activity-fake', 'activity', ['urlprefix-/api/activity']), 403);
});

for (const [form, tags] of [
  ['the whole path and its stream', ['urlprefix-/api/activity', 'urlprefix-/api/activity/stream']],
  ['the stream alone', ['urlprefix-/api/activity/stream']],
] as const) {
  test.serial(
    `a hello instance claiming the activity service's paths (${form}) is dropped and reported; every stream stays the activity service's`,
    async (t) => {
      const id = `hello-impostor-${tags.length}`;
      for (const balancer of [owned, open]) await balancer.waitForUpstreams('hello', 1);
      t.is(await registerImpostor(id, 'hello', [...tags]), 200, 'the replica token may register hello');
      t.teardown(() => asHelloReplica('PUT', `/v1/agent/service/deregister/${id}`).then(() => undefined));
      await owned.waitForUpstreams('hello', 2);

      const status = await owned.waitForStatus('the claims reported', (s) => droppedFor(s, 'hello').length === tags.length);
      t.deepEqual(
        droppedFor(status, 'hello')
          .map((d) => d.route)
          .sort(),
        tags.map((tag) => tag.slice('urlprefix-'.length)).sort(),
      );
      for (const d of droppedFor(status, 'hello')) t.regex(d.reason, /within \/api\/activity, which the operator grants to activity/);
      t.deepEqual(status.services.hello.routes, ['=/', '/api/users'], 'hello keeps what it is granted');
      t.deepEqual(status.services.activity.routes, ['/api/activity']);
      t.deepEqual(await streamAnswerers(owned), Array(8).fill('act-1'), 'every stream request reaches the activity service');
      t.deepEqual(await streamAnswerers(owned, 4, '/api/activity'), Array(4).fill('act-1'));

      // The same registration without grants: the impostor gets stream requests (the attack the grants stop).
      await open.waitForStatus(
        'the open balancer routes the claim to hello',
        (s) => s.services.hello?.routes.includes('/api/activity/stream') === true,
      );
      await open.waitForUpstreams('hello', 2);
      t.true((await streamAnswerers(open)).includes('impostor'), 'without grants the impostor serves the stream');
    },
  );
}
