import test from 'ava';
import { startConsul, type ConsulAgent } from '../../harness/consul';
import { stopAll } from '../../harness/processes';
import { parseConfig } from '../../service/config';
import { createConsulClient } from '../../service/consul-client';
import { ConsulUsersStore } from '../../service/consul-users-store';
import { StoreConflictError, StoreUnavailableError } from '../../service/users-store';

// The users store against a real `consul agent -dev` on loopback.
let consul: ConsulAgent;
test.before(async () => {
  consul = await startConsul();
});
test.after.always(async () => {
  await consul?.stop();
  await stopAll();
});

/** A store as a replica holds it; with ACLs on it writes with the management token, to any prefix the test picks. */
function storeFor(prefix: string, httpAddr = consul.httpAddr) {
  const client = createConsulClient(
    parseConfig({ CONSUL_HTTP_ADDR: httpAddr }, { hostname: 'h', interfaces: {} }).consul,
    consul.managementToken,
    1000,
  );
  return { store: new ConsulUsersStore(client, prefix), client };
}

test('users are kept one KV key each under the service prefix, and survive a new client (another replica)', async (t) => {
  const { store } = storeFor('svc-a/users');
  const ann = await store.create({ name: 'Ann', email: 'ann@example.com' });
  const bob = await store.create({ name: 'Bob', email: 'bob@example.com' });
  t.not(ann.id, bob.id);

  const keys = await consul.get<string[]>('/v1/kv/svc-a/?keys');
  t.deepEqual(keys.sort(), [`svc-a/users/${ann.id}`, `svc-a/users/${bob.id}`].sort());

  const other = storeFor('svc-a/users').store;
  t.deepEqual((await other.list()).map((u) => u.id).sort(), [ann.id, bob.id].sort());
  t.deepEqual(await other.get(ann.id), ann);

  const updated = await other.update(ann.id, { name: 'Ann B', email: 'annb@example.com' });
  t.like(updated, { id: ann.id, name: 'Ann B', createdAt: ann.createdAt });
  t.like(await store.get(ann.id), { name: 'Ann B' });

  t.true(await store.remove(ann.id));
  t.false(await store.remove(ann.id));
  t.is(await other.get(ann.id), undefined);
  t.is(await other.update(ann.id, { name: 'x', email: 'x@example.com' }), undefined);
  t.deepEqual(
    (await other.list()).map((u) => u.id),
    [bob.id],
  );
  t.deepEqual(await storeFor('svc-b/users').store.list(), [], 'another service sees none of them');
});

/**
 * Runs `before` ahead of each of the client's KV writes (check-and-set PUTs): another replica acting
 * between this one's read and its write, the interleaving a race produces only now and then.
 */
function beforeEachWrite(client: ReturnType<typeof storeFor>['client'], before: () => Promise<void>): void {
  const kv = client.kv as unknown as { set: (...args: unknown[]) => Promise<unknown> };
  const set = kv.set.bind(kv);
  kv.set = async (...args: unknown[]) => {
    await before();
    return set(...args);
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
  await t.throwsAsync(store.list(), { instanceOf: StoreUnavailableError, message: /Consul KV list failed/ });
  await t.throwsAsync(store.create({ name: 'Ann', email: 'ann@example.com' }), { instanceOf: StoreUnavailableError });
  await t.throwsAsync(store.get('00000000-0000-4000-8000-000000000000'), { instanceOf: StoreUnavailableError });
  // Refused at once, not after the client's 1 s timeout: three timeouts would take 3 s.
  const took = Date.now() - started;
  t.true(took < 1000, `${took} ms`);
});
