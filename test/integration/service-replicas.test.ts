import test from 'ava';
import net from 'node:net';
import { noConsulAt, startConsul, type ConsulAgent } from '../../harness/consul';
import { stopAll, waitFor } from '../../harness/processes';
import { slowPost, startReplica, type Replica } from '../../harness/service';

// Real `consul agent -dev` and real replicas (service/dist/main.js; run `npm run build` first), all on loopback.
// Deadlines are generous (several times what the service achieves); the real figures belong to the benchmark.
const NAME = 'hello';

test.after.always(stopAll);

async function consulFor(t: { teardown(fn: () => Promise<void>): void }): Promise<ConsulAgent> {
  const consul = await startConsul();
  t.teardown(() => consul.stop());
  return consul;
}

async function replicas(consul: ConsulAgent, count: number, tag: string): Promise<Replica[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => startReplica(consul, NAME, `${NAME}-${tag}-${i + 1}`)));
}

async function waitPassing(consul: ConsulAgent, ids: string[], timeoutMs = 15_000): Promise<void> {
  const want = [...ids].sort().join(',');
  await waitFor(`${want} passing in Consul`, async () => (await consul.passing(NAME)).join(',') === want, timeoutMs, 100);
}

async function agentServices(consul: ConsulAgent): Promise<string[]> {
  return Object.keys(await consul.get<Record<string, unknown>>('/v1/agent/services'));
}

async function call(url: string, method = 'GET', body?: unknown) {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  return {
    status: res.status,
    instance: res.headers.get('x-instance-id'),
    json: text ? (JSON.parse(text) as Record<string, unknown>) : undefined,
  };
}

function describe(list: Replica[], consul?: ConsulAgent): string {
  return (
    list.map((r) => `--- ${r.id}\n${r.output().slice(-3000)}`).join('\n') + (consul ? `\n--- consul\n${consul.output().slice(-2000)}` : '')
  );
}

test.serial('three replicas register and pass; a user written through one is read, changed and deleted through the others', async (t) => {
  const consul = await consulFor(t);
  const list = await replicas(consul, 3, 'a');
  t.teardown(() => Promise.all(list.map((r) => r.stop())).then(() => undefined));
  try {
    await waitPassing(
      consul,
      list.map((r) => r.id),
    );
  } catch (error) {
    t.log(describe(list, consul));
    throw error;
  }
  for (const r of list) {
    const root = await call(r.url + '/');
    t.is(root.instance, r.id);
    t.like(root.json, { service: NAME, instance: r.id });
  }

  const [one, two, three] = list;
  const created = await call(one.url + '/api/users', 'POST', { name: 'Ann', email: 'ann@example.com' });
  t.is(created.status, 201);
  t.is(created.instance, one.id);
  const id = created.json!.id as string;

  const read = await call(`${two.url}/api/users/${id}`);
  t.is(read.status, 200);
  t.is(read.instance, two.id);
  t.like(read.json, { id, name: 'Ann', email: 'ann@example.com' });

  const changed = await call(`${three.url}/api/users/${id}`, 'PUT', { name: 'Ann B', email: 'annb@example.com' });
  t.is(changed.status, 200);
  t.like((await call(`${one.url}/api/users`)).json, { users: [{ id, name: 'Ann B' }] });

  t.is((await call(`${two.url}/api/users/${id}`, 'DELETE')).status, 204);
  for (const r of list) t.is((await call(`${r.url}/api/users/${id}`)).status, 404, r.id);
});

test.serial('SIGTERM: the replica leaves Consul before it exits, finishes the request in flight, and exits 0', async (t) => {
  const consul = await consulFor(t);
  const [replica, other] = await replicas(consul, 2, 'b');
  t.teardown(() => Promise.all([replica.stop(), other.stop()]).then(() => undefined));
  await waitPassing(consul, [replica.id, other.id]);

  const inFlight = slowPost(replica.port);
  await new Promise((r) => setTimeout(r, 200));
  replica.child.kill('SIGTERM');

  await waitFor(`${replica.id} gone from the agent`, async () => !(await agentServices(consul)).includes(replica.id), 10_000, 20);
  t.is(replica.child.exitCode, null, 'still running (draining) when Consul no longer lists it');
  t.deepEqual(await consul.passing(NAME), [other.id]);
  // It still takes new requests while the balancer drops it (closing at once would cut a request
  // nginx had just sent), and asks each client to close its connection.
  const late = await fetch(replica.url + '/', { signal: AbortSignal.timeout(5000) });
  await late.text();
  t.is(late.status, 200, 'still serving right after leaving Consul');
  t.is(late.headers.get('connection'), 'close');

  inFlight.finish();
  const answer = await inFlight.answer;
  t.is(answer.status, 201, 'the request in flight was answered');
  t.is(answer.connection, 'close');
  const code = await Promise.race([replica.exited, new Promise((r) => setTimeout(() => r('still running after 15 s'), 15_000))]);
  t.is(code, 0, replica.output());

  const messages = replica
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => (JSON.parse(line) as { msg: string }).msg);
  const order = ['draining', 'deregistered', 'stopped'].map((msg) => messages.indexOf(msg));
  t.false(order.includes(-1), `draining, deregistered and stopped are all logged: ${messages.join(', ')}`);
  t.true(order[0] < order[1] && order[1] < order[2], `in that order: ${messages.join(', ')}`);
});

test.serial('SIGKILL: Consul marks the dead replica critical', async (t) => {
  const consul = await consulFor(t);
  const [victim, survivor] = await replicas(consul, 2, 'c');
  t.teardown(() => Promise.all([victim.stop(), survivor.stop()]).then(() => undefined));
  await waitPassing(consul, [victim.id, survivor.id]);

  victim.child.kill('SIGKILL');
  t.is(await victim.exited, 'SIGKILL');
  type Entry = { Service: { ID: string }; Checks: Array<{ ServiceID: string; Status: string }> };
  const status = async () => {
    const entries = await consul.get<Entry[]>(`/v1/health/service/${NAME}`);
    return entries.find((e) => e.Service.ID === victim.id)?.Checks.find((c) => c.ServiceID === victim.id)?.Status;
  };
  await waitFor(`${victim.id} critical`, async () => (await status()) === 'critical', 10_000, 100);
  t.deepEqual(await consul.passing(NAME), [survivor.id]);
});

test.serial(
  'SIGKILL and a quick restart under the same id and port (restart policy): the replica leaves the passing set until its new check passes',
  async (t) => {
    const consul = await consulFor(t);
    const [victim] = await replicas(consul, 1, 'k');
    await waitPassing(consul, [victim.id]);
    victim.child.kill('SIGKILL');
    t.is(await victim.exited, 'SIGKILL');
    // Restarted before Consul's next check could notice the death, as Docker does in ~0.3 s.
    const again = await startReplica(consul, NAME, victim.id, { PORT: String(victim.port) });
    t.teardown(() => again.stop().then(() => undefined));
    await waitFor('the restarted replica out of the passing set', async () => (await consul.passing(NAME)).length === 0, 10_000, 20);
    await waitPassing(consul, [victim.id]);
    t.true(again.output().includes('replaced the entry a previous run left'), describe([again], consul));
  },
);

test.serial('Consul agent restart: users answer 503 while it is down, and every running replica registers again', async (t) => {
  const consul = await consulFor(t);
  const list = await replicas(consul, 3, 'd');
  t.teardown(() => Promise.all(list.map((r) => r.stop())).then(() => undefined));
  const ids = list.map((r) => r.id);
  await waitPassing(consul, ids);

  await consul.stop();
  const down = await call(list[0].url + '/api/users');
  t.is(down.status, 503);
  t.regex(String(down.json!.error), /unavailable/);
  t.is((await call(list[0].url + '/api/users', 'POST', { name: 'Ann', email: 'ann@example.com' })).status, 503);
  t.is((await call(list[1].url + '/health')).status, 200, 'replicas keep serving without Consul');

  await consul.start(); // a dev agent comes back empty: no services, no KV
  try {
    await waitPassing(consul, ids, 20_000);
  } catch (error) {
    t.log(describe(list, consul));
    throw error;
  }
  t.is((await call(list[2].url + '/api/users')).status, 200, 'the users store is back too');
  for (const r of list) t.regex(r.output(), /registration lost/);
});

test.serial('a replica started before Consul serves meanwhile and registers once Consul comes', async (t) => {
  const consul = await consulFor(t);
  await consul.stop();
  const replica = await startReplica(consul, NAME, `${NAME}-e-1`);
  t.teardown(() => replica.stop().then(() => undefined));

  await waitFor('the replica to serve', async () => (await call(replica.url + '/health')).status === 200, 10_000, 100);
  await waitFor('a failed registration attempt in its log', () => /cannot register with Consul/.test(replica.output()), 10_000, 100);
  await new Promise((r) => setTimeout(r, 1500)); // let the backoff grow to its cap

  await consul.start();
  try {
    await waitPassing(consul, [replica.id], 20_000);
  } catch (error) {
    t.log(describe([replica], consul));
    throw error;
  }
  t.pass();
});

test.serial('a bad environment value stops the replica at start with one message naming the variable', async (t) => {
  for (const [name, value] of [
    ['PORT', 'eighty'],
    ['CONSUL_HTTP_ADDR', 'http://consul:8500/v1'],
    ['SERVICE_NAME', 'web_1'],
  ]) {
    const replica = await startReplica(noConsulAt('http://127.0.0.1:1'), 'x', 'x-1', { [name]: value });
    const code = await Promise.race([replica.exited, new Promise((r) => setTimeout(() => r('still running after 10 s'), 10_000))]);
    await replica.stop();
    t.is(code, 2, `${name}=${value}: ${replica.output()}`);
    t.regex(replica.output(), new RegExp(`invalid configuration: ${name} = "${value}" is not allowed: use `), name);
    t.is(replica.output().trim().split('\n').length, 1, 'one message');
  }
});

test.serial('a second signal exits at once, without waiting for the request in flight', async (t) => {
  const consul = await consulFor(t);
  const [replica] = await replicas(consul, 1, 'f');
  t.teardown(() => replica.stop().then(() => undefined));
  await waitPassing(consul, [replica.id]);

  const inFlight = slowPost(replica.port);
  inFlight.answer.catch(() => undefined); // the connection dies with the process
  await new Promise((r) => setTimeout(r, 200));
  replica.child.kill('SIGTERM');
  await waitFor('draining to begin', () => /"deregistered"/.test(replica.output()), 10_000, 20);
  const started = Date.now();
  replica.child.kill('SIGINT');
  const code = await Promise.race([replica.exited, new Promise((r) => setTimeout(() => r('still running after 5 s'), 5000))]);
  t.is(code, 1);
  t.true(Date.now() - started < 3000, 'did not wait for the 10 s drain bound');
  t.regex(replica.output(), /second signal; exiting now/);
});

test.serial('the same signal again within 0.5 s is the same stop; later, it exits at once', async (t) => {
  const consul = await consulFor(t);
  const [replica] = await replicas(consul, 1, 'h');
  t.teardown(() => replica.stop().then(() => undefined));
  await waitPassing(consul, [replica.id]);

  const inFlight = slowPost(replica.port);
  inFlight.answer.catch(() => undefined); // the connection dies with the process
  await new Promise((r) => setTimeout(r, 200));
  // As a terminal's Ctrl-C under `npm run`: once from the terminal, once more passed on by npm, here
  // after the replica has begun to drain (sent together, the kernel may merge the two).
  replica.child.kill('SIGINT');
  await waitFor('draining to begin', () => /"draining"/.test(replica.output()), 10_000, 5);
  replica.child.kill('SIGINT');
  await waitFor('deregistration', () => /"deregistered"/.test(replica.output()), 10_000, 20);
  // Time for a second signal to be acted on, were it taken for one.
  await new Promise((r) => setTimeout(r, 300));
  t.is(replica.child.exitCode, null, 'still draining: the request in flight holds it');
  t.notRegex(replica.output(), /second signal/);
  // Past the repeat window (0.5 s), the same signal is a user insisting.
  await new Promise((r) => setTimeout(r, 300));
  replica.child.kill('SIGINT');
  const code = await Promise.race([replica.exited, new Promise((r) => setTimeout(() => r('still running after 5 s'), 5000))]);
  t.is(code, 1);
  t.regex(replica.output(), /second signal; exiting now/);
});

/** Sends raw bytes on a fresh connection and resolves with whatever came back (or the error). */
function raw(port: number, bytes: string | Buffer, { endAfterWrite = true, destroyAfterMs = 0 } = {}): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    socket.setTimeout(5000, () => socket.destroy());
    socket.on('data', (chunk) => (data += chunk.toString()));
    socket.on('error', (error) => resolve(data || String(error)));
    socket.on('close', () => resolve(data));
    socket.write(bytes);
    if (destroyAfterMs) setTimeout(() => socket.destroy(), destroyAfterMs);
    else if (endAfterWrite) socket.end();
  });
}

/** Statuses of the replica's logged POST /api/users requests, in order. */
function postStatuses(replica: Replica): number[] {
  return replica
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg: string; method?: string; path?: string; status?: number })
    .filter((entry) => entry.msg === 'request' && entry.method === 'POST' && entry.path === '/api/users')
    .map((entry) => entry.status!);
}

test.serial('malformed and hostile requests get 4xx answers and never crash a replica', async (t) => {
  // No Consul is needed for this: the replica retries registration against a closed loopback port meanwhile.
  const replica = await startReplica(noConsulAt('http://127.0.0.1:1'), NAME, `${NAME}-g-1`);
  t.teardown(() => replica.stop().then(() => undefined));
  await waitFor('the replica to serve', async () => (await call(replica.url + '/health')).status === 200, 10_000, 100);

  t.regex(await raw(replica.port, 'this is not HTTP\r\n\r\n'), /^HTTP\/1\.1 400/);
  // A body cut short (the client half-closes after 4 of 10 bytes): Node's parser answers 400 on the
  // socket, and the app, whose body read failed, takes it for the client's abort (400, not a 5xx).
  t.regex(
    await raw(replica.port, 'POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{"na'),
    /^HTTP\/1\.1 400 /,
    'a body cut short by the client',
  );
  await waitFor('the cut-short request in the log', () => postStatuses(replica).length === 1, 5000, 20);
  t.deepEqual(postStatuses(replica), [400], 'the cut-short body is a client abort');
  // A chunked body whose sender vanishes mid-body: nobody is left to answer; the app logs a client abort.
  await raw(
    replica.port,
    'POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"nam\r\n',
    {
      destroyAfterMs: 100,
    },
  );
  await waitFor('the truncated chunked request in the log', () => postStatuses(replica).length === 2, 5000, 20);
  t.deepEqual(postStatuses(replica), [400, 400], 'the truncated chunked body is a client abort');
  const huge = Buffer.alloc(1024 * 1024, 'x');
  const big = await fetch(replica.url + '/api/users', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: new ReadableStream({
      start(controller) {
        for (let i = 0; i < 16; i++) controller.enqueue(huge.subarray(i * 65536, (i + 1) * 65536));
        controller.close();
      },
    }),
    duplex: 'half',
  }).catch((error: Error) => error);
  // The replica answers 413 and closes the connection; a client still uploading may see the close
  // first, so the replica's own log is what must say 413 either way.
  if (!(big instanceof Error)) t.is(big.status, 413, 'a chunked 1 MiB body');
  await waitFor('the 1 MiB request in the log', () => postStatuses(replica).length === 3, 5000, 20);
  t.is(postStatuses(replica)[2], 413, `a chunked 1 MiB body (the client saw ${big instanceof Error ? big.message : big.status})`);
  const badJson = await fetch(replica.url + '/api/users', {
    method: 'POST',
    body: '{"name": ',
    headers: { 'content-type': 'application/json' },
  });
  t.is(badJson.status, 400);
  t.regex(((await badJson.json()) as { error: string }).error, /not valid JSON/);
  t.is(
    (
      await fetch(replica.url + '/api/users', {
        method: 'POST',
        body: 'name=Ann',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      })
    ).status,
    415,
  );
  t.is((await call(replica.url + '/%E0%A4%A')).status, 404);

  const health = await call(replica.url + '/health');
  t.is(health.status, 200, 'still serving');
  t.is(replica.child.exitCode, null);
  t.notRegex(replica.output(), /uncaught|unhandled/);
});
