import test from 'ava';
import http from 'node:http';
import { startConsul, type ConsulAgent } from '../helpers/consul';
import { stopAll, waitFor } from '../helpers/processes';
import { startReplica, type Replica } from '../helpers/service';

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
  return Promise.all(Array.from({ length: count }, (_, i) => startReplica(consul.httpAddr, NAME, `${NAME}-${tag}-${i + 1}`)));
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
  return { status: res.status, instance: res.headers.get('x-instance-id'), json: text ? JSON.parse(text) : undefined };
}

function describe(list: Replica[], consul?: ConsulAgent): string {
  return list.map((r) => `--- ${r.id}\n${r.output().slice(-3000)}`).join('\n') + (consul ? `\n--- consul\n${consul.output().slice(-2000)}` : '');
}

test.serial('three replicas register and pass; a user written through one is read, changed and deleted through the others', async (t) => {
  const consul = await consulFor(t);
  const list = await replicas(consul, 3, 'a');
  t.teardown(() => Promise.all(list.map((r) => r.stop())).then(() => undefined));
  try {
    await waitPassing(consul, list.map((r) => r.id));
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
  const id = created.json.id as string;

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

/** Starts a POST whose body is sent in two halves, so the request stays in flight until `finish()`. */
function slowPost(port: number) {
  const body = JSON.stringify({ name: 'Slow', email: 'slow@example.com' });
  const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/api/users', headers: { 'content-type': 'application/json' } });
  const answer = new Promise<{ status: number; connection?: string }>((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
    });
    req.on('error', reject);
  });
  req.write(body.slice(0, 10));
  return { answer, finish: () => req.end(body.slice(10)) };
}

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
    .map((line) => JSON.parse(line).msg as string);
  t.true(messages.indexOf('draining') < messages.indexOf('deregistered'));
  t.true(messages.indexOf('deregistered') < messages.indexOf('stopped'));
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

test.serial('Consul agent restart: users answer 503 while it is down, and every running replica registers again', async (t) => {
  const consul = await consulFor(t);
  const list = await replicas(consul, 3, 'd');
  t.teardown(() => Promise.all(list.map((r) => r.stop())).then(() => undefined));
  const ids = list.map((r) => r.id);
  await waitPassing(consul, ids);

  await consul.stop();
  const down = await call(list[0].url + '/api/users');
  t.is(down.status, 503);
  t.regex(down.json.error, /unavailable/);
  t.is((await call(list[0].url + '/api/users', 'POST', { name: 'Ann', email: 'ann@example.com' })).status, 503);
  t.is((await call(list[1].url + '/health')).status, 200, 'replicas keep serving without Consul');

  await consul.start(); // a dev agent comes back empty: no services, no KV
  t.deepEqual(await consul.passing(NAME), []);
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
  const replica = await startReplica(consul.httpAddr, NAME, `${NAME}-e-1`);
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
    ['SERVICE_NAME', ''],
  ]) {
    const replica = await startReplica('http://127.0.0.1:1', 'x', 'x-1', { [name]: value });
    const code = await Promise.race([replica.exited, new Promise((r) => setTimeout(() => r('still running after 10 s'), 10_000))]);
    await replica.stop();
    t.is(code, 2, `${name}=${value}: ${replica.output()}`);
    t.regex(replica.output(), new RegExp(`invalid configuration: ${name} must`), name);
    t.is(replica.output().trim().split('\n').length, 1, 'one message');
  }
});
