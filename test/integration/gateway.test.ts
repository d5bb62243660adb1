// The balancer as the gateway to several services, against real Consul, real nginx and real replicas on
// loopback: routes learned from `urlprefix-` tags, the longest prefix, per-service 503, the gateway's
// own 404, hostile registrations kept out of nginx's config, and the per-client rate limit.
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import test from 'ava';
import { requestFrom, type Answer } from '../../harness/attack';
import { startBalancer, upstreamsOf, type RunningBalancer } from '../../harness/balancer';
import { startConsul, type ConsulAgent } from '../../harness/consul';
import { stopAll } from '../../harness/processes';
import { startReplica, type Replica } from '../../harness/service';

let consul: ConsulAgent;
let balancer: RunningBalancer;
/** hello as it ships (ROUTES `=/,/api/users`); `deep` a second service under a longer prefix, and at /health. */
let hello: Replica;
let deep: Replica;
const registered: string[] = [];

interface Got {
  status: number;
  instance: string | undefined;
  type: string | null;
  retryAfter: string | null;
  body: Record<string, unknown>;
}

/** One GET through the public listener: who answered (X-Instance-Id, none for the gateway's own answers) and the JSON body. */
async function get(pathname: string, base = balancer.url): Promise<Got> {
  const res = await fetch(base + pathname, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return {
    status: res.status,
    instance: res.headers.get('x-instance-id') ?? undefined,
    type: res.headers.get('content-type'),
    retryAfter: res.headers.get('retry-after'),
    body,
  };
}

/** Registers an instance straight through the agent API (as any holder of a write token could), with a TTL check. */
async function register(id: string, name: string, tags: string[], port: number, status: 'passing' | 'critical'): Promise<void> {
  const res = await fetch(`${consul.httpAddr}/v1/agent/service/register`, {
    method: 'PUT',
    headers: { 'X-Consul-Token': consul.managementToken },
    body: JSON.stringify({ ID: id, Name: name, Tags: tags, Address: '127.0.0.1', Port: port, Check: { TTL: '10m', Status: status } }),
    signal: AbortSignal.timeout(5000),
  });
  if (!res.ok) throw new Error(`registering ${id}: HTTP ${res.status} ${await res.text()}`);
  registered.push(id);
}

async function deregister(id: string): Promise<void> {
  const res = await fetch(`${consul.httpAddr}/v1/agent/service/deregister/${encodeURIComponent(id)}`, {
    method: 'PUT',
    headers: { 'X-Consul-Token': consul.managementToken },
    signal: AbortSignal.timeout(5000),
  });
  if (!res.ok) throw new Error(`deregistering ${id}: HTTP ${res.status} ${await res.text()}`);
}

test.before(async () => {
  consul = await startConsul();
  balancer = await startBalancer(consul);
  hello = await startReplica(consul, 'hello', 'h1');
  deep = await startReplica(consul, 'deep', 'd1', { ROUTES: '/api/users/deep,=/health' });
  await balancer.waitForUpstreams('hello', 1);
  await balancer.waitForUpstreams('deep', 1);
});

test.after.always(async (t) => {
  if (balancer) t.log(`balancer log tail:\n${balancer.logTail(10)}`);
  for (const id of registered) await deregister(id).catch(() => undefined);
  await Promise.all([hello, deep].map((r) => r?.stop(3000)));
  await balancer?.cleanup();
  await consul?.stop();
  await stopAll();
});

test.serial('two services are both reached through the gateway; the longest prefix wins, by whole path segments', async (t) => {
  const expectations: Array<[string, string]> = [
    ['/', 'h1'],
    ['/?marker=1', 'h1'],
    ['/api/users', 'h1'],
    ['/api/users/42', 'h1'],
    ['/api/users/deepX', 'h1'],
    ['/api/users/deep', 'd1'],
    ['/api/users/deep/7', 'd1'],
    ['/health', 'd1'],
  ];
  for (const [pathname, instance] of expectations) t.is((await get(pathname)).instance, instance, pathname);
  const root = await get('/');
  t.is(root.status, 200);
  t.like(root.body, { service: 'hello', instance: 'h1' });
  t.is((await get('/health')).status, 200, "deep's own /health, routed exactly");

  const status = await balancer.status();
  t.deepEqual(status.services.hello.routes, ['=/', '/api/users']);
  t.deepEqual(status.services.deep.routes, ['/api/users/deep', '=/health']);
  t.deepEqual(upstreamsOf(status, 'deep'), [`127.0.0.1:${deep.port}`]);
  t.deepEqual(status.droppedRoutes, []);
});

test.serial("paths no service holds get the gateway's JSON 404; /_balancer and /_gateway stay the gateway's", async (t) => {
  // `/` is hello's exact route: nothing under it is routed.
  for (const pathname of ['/nope', '/api', '/api/usersX', '/index.html', '/_balancer/status', '/_balancer', '/_gateway/x']) {
    const got = await get(pathname);
    t.is(got.status, 404, pathname);
    t.is(got.instance, undefined, `${pathname}: answered by the gateway, not a replica`);
    t.regex(got.type ?? '', /application\/json/, pathname);
    t.like(got.body, { error: 'not found' }, pathname);
  }
});

test.serial('the admin listener routes as the public one and names the upstream', async (t) => {
  const res = await fetch(`${balancer.adminUrl}/api/users/deep/1`, { signal: AbortSignal.timeout(5000) });
  await res.arrayBuffer();
  t.is(res.headers.get('x-instance-id'), 'd1');
  t.is(res.headers.get('x-upstream-addr'), `127.0.0.1:${deep.port}`);
  t.is((await get('/nope', balancer.adminUrl)).status, 404);
});

test.serial(
  'a service registered with no passing instance gets a 503 on its routes only; deregistered, its routes are gone (404)',
  async (t) => {
    await register('down-1', 'down', ['urlprefix-/api/down'], deep.port, 'critical');
    await balancer.waitForStatus('down routed with no upstream', (s) => s.services.down?.routes.includes('/api/down') === true);
    const unavailable = await get('/api/down/x');
    t.is(unavailable.status, 503);
    t.is(unavailable.retryAfter, '1');
    t.like(unavailable.body, { error: 'service unavailable', service: 'down' });
    t.deepEqual(upstreamsOf(await balancer.status(), 'down'), []);
    t.is((await get('/')).status, 200, 'other services are untouched');
    t.is((await get('/api/users/deep')).instance, 'd1');

    await deregister('down-1');
    await balancer.waitForStatus('down gone', (s) => s.services.down === undefined);
    const gone = await get('/api/down/x');
    t.is(gone.status, 404);
    t.like(gone.body, { error: 'not found' });
  },
);

test.serial(
  'hostile registrations never reach nginx: nginx syntax, a reserved path, a newer claim on /api/users; all reported',
  async (t) => {
    await register(
      'evil-1',
      'evil',
      ['urlprefix-/x;return 200', 'urlprefix-/_balancer/x', 'urlprefix-/a b', 'urlprefix-/ok'],
      deep.port,
      'passing',
    );
    await register('newer-1', 'newer', ['urlprefix-/api/users'], deep.port, 'passing');
    const status = await balancer.waitForStatus('the hostile routes reported', (s) => s.droppedRoutes.length >= 4);
    const dropped = status.droppedRoutes.map((d) => `${d.service} ${d.route}`).sort();
    t.deepEqual(dropped, ['evil /_balancer/x', 'evil /a b', 'evil /x;return 200', 'newer /api/users']);
    const reason = (route: string) => status.droppedRoutes.find((d) => d.route === route && d.service === 'evil')?.reason ?? '';
    t.regex(reason('/x;return 200'), /contains ";"/);
    t.regex(reason('/_balancer/x'), /reserved/);
    t.regex(status.droppedRoutes.find((d) => d.service === 'newer')!.reason, /older service hello/);
    // evil's one good route is served; newer holds no route at all.
    await balancer.waitForStatus('evil /ok served', (s) => s.services.evil?.routes.includes('/ok') === true);
    t.is((await get('/ok')).instance, 'd1');
    t.deepEqual((await balancer.status()).services.newer?.routes ?? [], []);
    t.is((await get('/api/users')).instance, 'h1', 'the older service keeps /api/users');
    t.is((await get('/x;return%20200')).status, 404);
    t.is((await get('/_balancer/x')).status, 404);

    const config = await fs.readFile(path.join(balancer.workDir, 'nginx.conf'), 'utf8');
    for (const text of [';return', '/_balancer/x', '/a b']) t.false(config.includes(text), text);
    t.is((await balancer.status()).lastReloadError, null, 'nginx never saw a config to refuse');
    t.true(
      balancer
        .output()
        .split('\n')
        .some((l) => l.includes('Consul registrations left out of the routing table') && l.includes('x;return 200')),
      'the drop is logged',
    );

    await deregister('evil-1');
    await deregister('newer-1');
    await balancer.waitForStatus('the hostile services gone', (s) => s.droppedRoutes.length === 0 && s.services.evil === undefined);
    t.is((await get('/ok')).status, 404);
  },
);

test.serial(
  'per-client rate limit: one client over it gets JSON 429 with Retry-After, another client is unaffected, never a 5xx',
  async (t) => {
    // A limit low enough to cross on purpose; the default (1,000/s) is far above the tests' loops.
    const limited = await startBalancer(consul, { RATE_LIMIT_PER_CLIENT: '5', RATE_BURST_PER_CLIENT: '5' });
    t.teardown(() => limited.cleanup());
    await limited.waitForUpstreams('hello', 1);
    const url = `${limited.url}/`;
    // The second client sends 3 a second, under the limit, while the first sends as fast as it can.
    const calm = (async () => {
      const answers = [];
      for (let i = 0; i < 8; i++) {
        answers.push(await requestFrom(url, '127.0.0.3'));
        await new Promise((r) => setTimeout(r, 330));
      }
      return answers;
    })();
    const flood: Answer[] = [];
    for (let i = 0; i < 60; i++) flood.push(await requestFrom(url, '127.0.0.2'));
    const calmAnswers = await calm;

    const byStatus = (answers: Answer[]) =>
      answers.reduce<Record<string, number>>((m, a) => ({ ...m, [a.status || a.error!]: (m[a.status || a.error!] ?? 0) + 1 }), {});
    t.deepEqual(byStatus(calmAnswers), { 200: 8 }, 'the calm client is never limited');
    const counts = byStatus(flood);
    t.true((counts[429] ?? 0) > 0, JSON.stringify(counts));
    t.true((counts[200] ?? 0) >= 5, `the burst passes first: ${JSON.stringify(counts)}`);
    t.deepEqual(Object.keys(counts).sort(), ['200', '429'], `only 200 and 429, never a 5xx: ${JSON.stringify(counts)}`);
    const rejected = flood.find((a) => a.status === 429)!;
    t.is(rejected.headers?.['retry-after'], '1');
    t.regex(String(rejected.headers?.['content-type']), /application\/json/);
    t.like(JSON.parse(rejected.body), { error: 'too many requests' });
  },
);

test.serial('a Server-Sent Events stream passes through unbuffered (X-Accel-Buffering: no)', async (t) => {
  // A stand-in for an SSE endpoint: one event at once, the next only when the test has read the first.
  let sendSecond: () => void = () => {};
  const server = http.createServer((_req, res) => {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      'x-instance-id': 'sse-1',
    });
    res.write('data: first\n\n');
    sendSecond = () => res.end('data: second\n\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  await register('sse-1', 'sse', ['urlprefix-/api/stream'], (server.address() as AddressInfo).port, 'passing');
  await balancer.waitForUpstreams('sse', 1);

  const res = await fetch(`${balancer.url}/api/stream`, { signal: AbortSignal.timeout(10_000) });
  t.is(res.headers.get('content-type'), 'text/event-stream');
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!text.includes('\n\n')) text += decoder.decode((await reader.read()).value as Uint8Array, { stream: true });
  t.is(text, 'data: first\n\n', 'the first event arrived while the stream is still open');
  sendSecond();
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read())
    text += decoder.decode(chunk.value as Uint8Array, { stream: true });
  t.is(text, 'data: first\n\ndata: second\n\n');
  await deregister('sse-1');
});
