import test from 'ava';
import { randomUUID } from 'node:crypto';
import type Consul from 'consul';
import { ConsulUsersStore } from '../../service/consul-users-store';
import { pageOfIds, type PageQuery } from '../../service/users-store';

// What a write costs the replica with many users: nothing that grows with their number, before or after a
// list request has filled the key-listing cache. The work is counted, not timed: every element that an
// array method (sort, filter, map, spread, ...) goes through on a large array (the listing's ids) while the
// writes run; the tests run one at a time, so the count is theirs. Consul here is a stand-in in memory: the
// rule tested is the store's own.

const USERS = 100_000;
/** Arrays at least this long are the listing's (the stand-in's answers for one write are a few elements). */
const LARGE = 1000;

const COUNTED = [
  'sort',
  'filter',
  'map',
  'forEach',
  'slice',
  'indexOf',
  'includes',
  'find',
  'findIndex',
  'concat',
  'reduce',
  'some',
] as const;

/** Counts the elements of large arrays that array methods go through while `run` runs. */
async function elementsTouched(run: () => Promise<void>): Promise<number> {
  let touched = 0;
  const proto = Array.prototype as unknown as Record<string | symbol, (...args: unknown[]) => unknown>;
  const originals = new Map<string | symbol, (...args: unknown[]) => unknown>();
  for (const name of [...COUNTED, Symbol.iterator]) {
    const original = proto[name];
    originals.set(name, original);
    proto[name] = function (this: unknown[], ...args: unknown[]) {
      if (this.length >= LARGE) {
        touched += this.length;
      }
      return original.apply(this, args);
    };
  }
  try {
    await run();
  } finally {
    for (const [name, original] of originals) proto[name] = original;
  }
  return touched;
}

interface Stored {
  value: string;
  index: number;
}

/** The calls the store makes, answered from memory as Consul would (KV, check-and-set transactions). */
function consulInMemory(prefix: string, count: number) {
  const kv = new Map<string, Stored>();
  let index = 1;
  const now = new Date().toISOString();
  for (let i = 0; i < count; i++) {
    const id = randomUUID();
    kv.set(`${prefix}/${id}`, {
      value: JSON.stringify({ id, name: `U${i}`, email: `u${i}@example.com`, createdAt: now, updatedAt: now }),
      index,
    });
  }
  let listings = 0;
  type Op = { KV: { Verb: string; Key: string; Index?: number; Value?: string } };
  const client = {
    kv: {
      get: async (key: string) => {
        const item = kv.get(key);
        return item ? { Key: key, ModifyIndex: item.index, Value: item.value } : undefined;
      },
      keys: async () => {
        listings++;
        return [...kv.keys()];
      },
    },
    transaction: {
      create: async (ops: Op[]) => {
        const failed = ops.findIndex(({ KV: op }) => {
          const current = kv.get(op.Key);
          if (op.Verb === 'cas') return (current?.index ?? 0) !== op.Index;
          if (op.Verb === 'check-index') return current?.index !== op.Index;
          return op.Verb === 'get' && !current;
        });
        if (failed >= 0)
          throw Object.assign(new Error('conflict'), {
            response: { statusCode: 409, body: { Errors: [{ OpIndex: failed, What: 'cas' }] } },
          });
        if (ops.every(({ KV: op }) => op.Verb === 'get')) {
          return {
            Results: ops.map(({ KV: op }) => {
              const item = kv.get(op.Key)!;
              return { KV: { Key: op.Key, ModifyIndex: item.index, Value: Buffer.from(item.value).toString('base64') } };
            }),
          };
        }
        index++;
        for (const { KV: op } of ops) {
          if (op.Verb === 'delete') kv.delete(op.Key);
          else if (op.Verb === 'cas' || op.Verb === 'set') kv.set(op.Key, { value: Buffer.from(op.Value!, 'base64').toString(), index });
        }
        return { Results: [] };
      },
    },
  };
  return { client: client as unknown as Consul, listings: () => listings };
}

/** 100 creates, 100 updates and 100 deletes, as clients would send them. */
async function writes(store: ConsulUsersStore): Promise<void> {
  const ids: string[] = [];
  for (let i = 0; i < 100; i++) ids.push((await store.create({ name: `New ${i}`, email: `new${i}@example.com` })).id);
  for (const id of ids) await store.update(id, { name: 'Changed', email: 'changed@example.com' });
  for (const id of ids) await store.remove(id);
}

test.serial(`a write touches none of ${USERS} ids, before and after a list request filled the key-listing cache`, async (t) => {
  const { client, listings } = consulInMemory('svc/users', USERS);
  const store = new ConsulUsersStore(client, 'svc/users', 'svc/outbox');

  const before = await elementsTouched(() => writes(store));
  // The counter sees the work that does grow with the users: the listing a page asks for.
  const listing = await elementsTouched(async () => {
    t.is((await store.page({ limit: 1 })).users.length, 1);
  });
  t.is(listings(), 1);
  t.true(listing >= USERS, `the listing goes through every id (${listing} elements)`);
  const after = await elementsTouched(() => writes(store));
  t.is(listings(), 1, 'the writes ran while the listing was cached');

  t.is(before, 0, 'writes before any list request');
  t.is(after, 0, 'writes after a list request');
});

test.serial(
  'a page within the cached listing shows this replica’s own creates and deletes at once, and reads no more than it needs',
  async (t) => {
    const { client } = consulInMemory('svc/users', USERS);
    const store = new ConsulUsersStore(client, 'svc/users', 'svc/outbox');
    const first = await store.page({ limit: 64 });
    const created = await store.create({ name: 'Aaa', email: 'a@example.com' });
    await store.remove(first.users[0].id);
    let page = first;
    const touched = await elementsTouched(async () => {
      page = await store.page({ limit: 64, after: created.id });
    });
    t.is(touched, 0, 'a page after a cursor finds its place by binary search');
    t.true(page.users.every((u) => u.id > created.id));
    const all = new Set<string>();
    for (let cursor: string | null | undefined = undefined, n = 0; cursor !== null && n < 3000; n++) {
      const next = await store.page({ limit: 64, ...(cursor ? { after: cursor } : {}) });
      next.users.forEach((u) => all.add(u.id));
      cursor = next.next;
    }
    t.true(all.has(created.id), 'the own create is listed');
    t.false(all.has(first.users[0].id), 'the own delete is not');
    t.is(all.size, USERS, 'every other user once');
  },
);

/** A small deterministic random generator, so a failure repeats. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

test.serial('pageOfIds merges the changes since the listing: the same pages as a listing taken after them', (t) => {
  const next = random(7);
  const name = () =>
    Math.floor(next() * 1000)
      .toString(36)
      .padStart(2, '0');
  for (let round = 0; round < 200; round++) {
    const listed = [...new Set(Array.from({ length: Math.floor(next() * 40) }, name))].sort();
    const changes = new Map<string, boolean>();
    for (let i = Math.floor(next() * 10); i > 0; i--) {
      const id = next() < 0.5 && listed.length > 0 ? listed[Math.floor(next() * listed.length)] : name();
      changes.set(id, next() < 0.5);
    }
    const now = [...new Set([...listed, ...[...changes].filter(([, present]) => present).map(([id]) => id)])]
      .filter((id) => changes.get(id) !== false)
      .sort();
    const query: PageQuery = { limit: 1 + Math.floor(next() * 5), ...(next() < 0.5 ? { after: name() } : {}) };
    t.deepEqual(pageOfIds(listed, query, changes), pageOfIds(now, query), JSON.stringify({ listed, changes: [...changes], query }));
  }
});
