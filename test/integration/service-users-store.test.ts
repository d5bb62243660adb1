import test from 'ava';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startConsul, type ConsulAgent } from '../../harness/consul';
import { stopAll, waitFor } from '../../harness/processes';
import { parseConfig } from '../../replica/config';
import { createConsulClient } from '../../replica/consul-client';
import { ConsulUsersStore, KEY_LIST_TTL_MS } from '../../service/consul-users-store';
import { StoreConflictError, StoreUnavailableError, type User } from '../../service/users-store';
import { parseUserEvent, type UserEvent } from '../../lib/user-events';

// The users store against a real `consul agent -dev` on loopback.
let consul: ConsulAgent;
test.before(async () => {
  consul = await startConsul();
});
test.after.always(async () => {
  await consul?.stop();
  await stopAll();
});

/** `svc/outbox` beside `svc/users`, as the service lays them out (lib/consul-acl.ts). */
const outboxOf = (usersPrefix: string) => usersPrefix.replace(/\/users$/, '/outbox');

/** The events in the outbox beside `usersPrefix`, oldest first (nothing publishes them here: no relay runs). */
async function outboxEvents(usersPrefix: string): Promise<UserEvent[]> {
  const res = await fetch(`${consul.httpAddr}/v1/kv/${outboxOf(usersPrefix)}/?recurse`, {
    headers: { 'X-Consul-Token': consul.managementToken },
  });
  if (res.status === 404) return [];
  const entries = (await res.json()) as Array<{ Key: string; Value: string }>;
  return entries.map((e) => parseUserEvent(Buffer.from(e.Value, 'base64').toString('utf8'))!);
}

/** A store as a replica holds it; with ACLs on it writes with the management token, to any prefix the test picks. */
function storeFor(prefix: string, httpAddr = consul.httpAddr) {
  const client = createConsulClient(
    parseConfig({ CONSUL_HTTP_ADDR: httpAddr }, { hostname: 'h', interfaces: {} }).consul,
    consul.managementToken,
    1000,
  );
  return { store: new ConsulUsersStore(client, prefix, outboxOf(prefix)), client };
}

test('users are kept one KV key each under the service prefix, and survive a new client (another replica)', async (t) => {
  const { store } = storeFor('svc-a/users');
  const ann = await store.create({ name: 'Ann', email: 'ann@example.com' });
  const bob = await store.create({ name: 'Bob', email: 'bob@example.com' });
  t.not(ann.id, bob.id);

  const keys = await consul.get<string[]>('/v1/kv/svc-a/users/?keys');
  t.deepEqual(keys.sort(), [`svc-a/users/${ann.id}`, `svc-a/users/${bob.id}`].sort());

  const other = storeFor('svc-a/users').store;
  t.deepEqual((await other.page({ limit: 64 })).users.map((u) => u.id).sort(), [ann.id, bob.id].sort());
  t.deepEqual(await other.get(ann.id), ann);

  const updated = await other.update(ann.id, { name: 'Ann B', email: 'annb@example.com' });
  t.like(updated, { id: ann.id, name: 'Ann B', createdAt: ann.createdAt });
  t.like(await store.get(ann.id), { name: 'Ann B' });

  t.true(await store.remove(ann.id));
  t.false(await store.remove(ann.id));
  t.is(await other.get(ann.id), undefined);
  t.is(await other.update(ann.id, { name: 'x', email: 'x@example.com' }), undefined);
  t.deepEqual(
    (await other.page({ limit: 64 })).users.map((u) => u.id),
    [bob.id],
  );
  t.deepEqual((await storeFor('svc-b/users').store.page({ limit: 64 })).users, [], 'another service sees none of them');

  // Every committed change left its event in the outbox, in order; the failed remove and update left none.
  const events = await outboxEvents('svc-a/users');
  t.deepEqual(
    events.map((e) => [e.type, e.userId]),
    [
      ['created', ann.id],
      ['created', bob.id],
      ['updated', ann.id],
      ['deleted', ann.id],
    ],
  );
  t.is(new Set(events.map((e) => e.id)).size, 4, 'every event has its own id');
  t.is(events[0].at, ann.createdAt, "an event's time is the change's");
});

/**
 * Runs `before` ahead of each of the client's KV writes (check-and-set transactions; a transaction of
 * gets only is a read): another replica acting between this one's read and its write, the interleaving a
 * race produces only now and then.
 */
function beforeEachWrite(client: ReturnType<typeof storeFor>['client'], before: () => Promise<void>): void {
  const txn = client.transaction as unknown as { create: (operations: Array<{ KV: { Verb: string } }>) => Promise<unknown> };
  const create = txn.create.bind(txn);
  txn.create = async (operations) => {
    if (operations.some((op) => op.KV.Verb !== 'get')) await before();
    return create(operations);
  };
}

test('an update whose read is overtaken by a delete finds the user gone and does not bring it back (check-and-set)', async (t) => {
  const { store: a, client } = storeFor('svc-c/users');
  const b = storeFor('svc-c/users').store;
  const user = await a.create({ name: 'Start', email: 'start@example.com' });
  let deleted = false;
  beforeEachWrite(client, async () => {
    if (!deleted) deleted = await b.remove(user.id);
  });
  t.is(await a.update(user.id, { name: 'Late', email: 'late@example.com' }), undefined, 'the update reports the user gone');
  t.true(deleted);
  t.is(await b.get(user.id), undefined, 'the deleted user stays deleted');
  t.deepEqual(
    (await outboxEvents('svc-c/users')).map((e) => e.type),
    ['created', 'deleted'],
    'the rolled-back update wrote no event',
  );
});

test('an update overtaken by another replica on every attempt reports a conflict instead of overwriting', async (t) => {
  const { store: a, client } = storeFor('svc-f/users');
  const b = storeFor('svc-f/users').store;
  const user = await a.create({ name: 'Start', email: 'start@example.com' });
  let overtaken = 0;
  beforeEachWrite(client, async () => {
    overtaken++;
    await b.update(user.id, { name: `B${overtaken}`, email: `b${overtaken}@example.com` });
  });
  await t.throwsAsync(a.update(user.id, { name: 'A', email: 'a@example.com' }), {
    instanceOf: StoreConflictError,
    message: /kept changing/,
  });
  t.like(await b.get(user.id), { name: `B${overtaken}`, email: `b${overtaken}@example.com` }, "the other replica's last write stands");
});

test('an update racing a delete never brings the deleted user back (check-and-set on every write)', async (t) => {
  const a = storeFor('svc-e/users').store;
  const b = storeFor('svc-e/users').store;
  for (let round = 0; round < 20; round++) {
    const user = await a.create({ name: 'Racer', email: 'racer@example.com' });
    const [, removed] = await Promise.all([
      b.update(user.id, { name: 'Late', email: 'late@example.com' }).catch((e: Error) => e),
      a.remove(user.id),
    ]);
    t.true(removed, `round ${round}`);
    t.is(await a.get(user.id), undefined, `round ${round}: deleted user came back`);
  }
});

test('simultaneous deletes of one user through two replicas: exactly one reports the delete, the others find no user', async (t) => {
  const a = storeFor('svc-f/users').store;
  const b = storeFor('svc-f/users').store;
  for (let round = 0; round < 20; round++) {
    const user = await a.create({ name: 'Gone', email: 'gone@example.com' });
    const results = await Promise.all([a.remove(user.id), b.remove(user.id), a.remove(user.id), b.remove(user.id)]);
    t.is(results.filter((r) => r).length, 1, `round ${round}: ${JSON.stringify(results)}`);
    t.is(await b.get(user.id), undefined);
  }
});

test('an unreachable Consul gives StoreUnavailableError on every call, quickly', async (t) => {
  const { store } = storeFor('svc-d/users', 'http://127.0.0.1:1');
  const started = Date.now();
  await t.throwsAsync(store.page({ limit: 10 }), { instanceOf: StoreUnavailableError, message: /Consul KV list failed/ });
  await t.throwsAsync(store.create({ name: 'Ann', email: 'ann@example.com' }), { instanceOf: StoreUnavailableError });
  await t.throwsAsync(store.get('00000000-0000-4000-8000-000000000000'), { instanceOf: StoreUnavailableError });
  // Refused at once, not after the client's 1 s timeout: three timeouts would take 3 s.
  const took = Date.now() - started;
  t.true(took < 1000, `${took} ms`);
});

interface Exchange {
  method: string;
  url: string;
  requestBody: string;
  responseBody: string;
}

/**
 * A pass-through HTTP proxy in front of the real agent that records every exchange, so a test can count
 * what the store asked Consul for and what Consul sent back. `beforeForward` runs ahead of each request.
 */
async function recordingProxy(target: string, beforeForward: (method: string, url: string) => Promise<void> = async () => {}) {
  const exchanges: Exchange[] = [];
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const requestBody = Buffer.concat(chunks);
      void beforeForward(req.method ?? 'GET', req.url ?? '/').then(() => {
        const forward = http.request(
          { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent: false },
          (answer) => {
            const parts: Buffer[] = [];
            answer.on('data', (c: Buffer) => parts.push(c));
            answer.on('end', () => {
              const body = Buffer.concat(parts);
              exchanges.push({
                method: req.method ?? '',
                url: req.url ?? '',
                requestBody: requestBody.toString(),
                responseBody: body.toString(),
              });
              res.writeHead(answer.statusCode ?? 502, answer.headers);
              res.end(body);
            });
          },
        );
        forward.on('error', () => res.destroy());
        forward.end(requestBody);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, exchanges, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** How many KV values the recorded answers carried: every way of reading a value answers a "Value" field. */
const valuesRead = (exchanges: readonly Exchange[]) => exchanges.reduce((n, e) => n + (e.responseBody.match(/"Value":/g) ?? []).length, 0);

/** Writes `count` users straight into KV (as the store does, one key each), quickly. */
async function seedUsers(prefix: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const id = randomUUID();
    const now = new Date().toISOString();
    const user = { id, name: `User ${i}`, email: `u${i}@example.com`, createdAt: now, updatedAt: now };
    const res = await fetch(`${consul.httpAddr}/v1/kv/${prefix}/${id}`, {
      method: 'PUT',
      body: JSON.stringify(user),
      headers: { 'X-Consul-Token': consul.managementToken },
    });
    if (!res.ok) throw new Error(`seeding ${prefix}: HTTP ${res.status}`);
    ids.push(id);
  }
  return ids.sort();
}

test('a page reads the keys and at most `limit` values from Consul, and walking the cursor gives each user once', async (t) => {
  const limit = 5;
  const ids = await seedUsers('svc-p/users', 3 * limit);
  const proxy = await recordingProxy(consul.httpAddr);
  t.teardown(proxy.close);
  const { store } = storeFor('svc-p/users', proxy.url);

  const first = await store.page({ limit });
  t.deepEqual(
    first.users.map((u) => u.id),
    ids.slice(0, limit),
  );
  t.is(first.next, ids[limit - 1]);
  t.is(
    valuesRead(proxy.exchanges),
    limit,
    `values Consul sent for one page: ${proxy.exchanges.map((e) => `${e.method} ${e.url}`).join(', ')}`,
  );
  t.false(
    proxy.exchanges.some((e) => /[?&]recurse/.test(e.url)),
    'no recursive read',
  );

  const seen: User[] = [...first.users];
  let cursor = first.next;
  let pages = 1;
  while (cursor !== null && pages < 10) {
    const page = await store.page({ limit, after: cursor });
    t.true(page.users.length <= limit);
    seen.push(...page.users);
    cursor = page.next;
    pages++;
  }
  t.deepEqual(
    seen.map((u) => u.id),
    ids,
    'each user exactly once, in id order',
  );
  t.is(pages, 3, 'the last page says there is no next');
  t.is(valuesRead(proxy.exchanges), ids.length, 'the whole walk read each value once');
});

test('a user deleted between the key listing and the read is left out of the page, and the rest are read', async (t) => {
  const ids = await seedUsers('svc-q/users', 4);
  let deleted = false;
  const proxy = await recordingProxy(consul.httpAddr, async (method, url) => {
    if (method === 'PUT' && url.startsWith('/v1/txn') && !deleted) {
      deleted = true;
      await fetch(`${consul.httpAddr}/v1/kv/svc-q/users/${ids[1]}`, {
        method: 'DELETE',
        headers: { 'X-Consul-Token': consul.managementToken },
      });
    }
  });
  t.teardown(proxy.close);
  const { store } = storeFor('svc-q/users', proxy.url);
  const page = await store.page({ limit: 10 });
  t.true(deleted);
  t.deepEqual(
    page.users.map((u) => u.id),
    [ids[0], ids[2], ids[3]],
  );
  t.is(page.next, null);
});

test('concurrent pages share one key listing; another replica’s new user shows once the listing is renewed', async (t) => {
  await seedUsers('svc-r/users', 30);
  const proxy = await recordingProxy(consul.httpAddr);
  t.teardown(proxy.close);
  const { store } = storeFor('svc-r/users', proxy.url);
  const listings = () => proxy.exchanges.filter((e) => /[?&]keys/.test(e.url)).length;

  const pages = await Promise.all(Array.from({ length: 20 }, () => store.page({ limit: 10 })));
  t.true(
    pages.every((p) => p.users.length === 10),
    'every page answered',
  );
  t.is(listings(), 1, 'twenty requests at once cost Consul one key listing');

  const mine = await store.create({ name: 'Mine', email: 'mine@example.com' });
  const other = await storeFor('svc-r/users').store.create({ name: 'Other', email: 'other@example.com' });
  const ids = async () => (await store.page({ limit: 64 })).users.map((u) => u.id);
  t.true((await ids()).includes(mine.id), "this replica's own create shows at once");
  t.is(listings(), 1);
  await waitFor('the other replica’s user to show', async () => (await ids()).includes(other.id), KEY_LIST_TTL_MS * 3, 100);
  t.is(listings(), 2, 'renewed once, after the listing got older than KEY_LIST_TTL_MS');
});
