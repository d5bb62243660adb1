import test from 'ava';
import type { Logger } from '../../lib/logger';
import type { HealthEntry, Resolution } from '../../balancer/consul-entries';
import type { GatewayTable, HealthCheck } from '../../balancer/routing';
import { followGateway, type ConsulAnswer, type GatewayView } from '../../balancer/watch';
import { waitFor } from '../../harness/processes';

type HealthAnswer = { index: number; entries: HealthEntry[] };

// Each instance carries a passing check of its own, as the service registers it (unchecked ones are dropped).
const entry = (port: number, tags = ['urlprefix-/'], createIndex = 10, status = 'passing'): HealthEntry => ({
  Node: { Address: '127.0.0.1' },
  Service: { ID: `s${port}`, Address: '', Port: port, Tags: tags, CreateIndex: createIndex },
  Checks: [{ ServiceID: `s${port}`, Status: status }],
});
const named = (id: string, name: string, port: number): HealthEntry => ({
  Node: { Address: '' },
  Service: { ID: id, Address: name, Port: port, Tags: ['urlprefix-/'], CreateIndex: 10 },
  Checks: [{ ServiceID: id, Status: 'passing' }],
});

/** A scripted resolver: answers from `table` (changeable by the test) and records every batch of names. */
function tableResolver(table: Map<string, Resolution>) {
  const batches: string[][] = [];
  const resolveNames = async (names: readonly string[]) => {
    batches.push([...names]);
    return new Map(names.map((n) => [n, table.get(n) ?? { error: 'ENOTFOUND' }]));
  };
  return { batches, resolveNames };
}

/** A scripted query: each call takes the next answer (or error); when none is left it blocks until aborted or pushed. */
function scripted<T>(script: Array<ConsulAnswer<T> | Error>) {
  const queries: Array<{ index: number; at: number }> = [];
  let release: (() => void) | undefined;
  let aborted = 0;
  const fetch = (index: number, signal: AbortSignal): Promise<ConsulAnswer<T>> => {
    queries.push({ index, at: Date.now() });
    const next = script.shift();
    if (next instanceof Error) return Promise.reject(next);
    if (next) return Promise.resolve(next);
    return new Promise<ConsulAnswer<T>>((resolve, reject) => {
      signal.addEventListener('abort', () => {
        aborted++;
        reject(new Error('aborted'));
      });
      release = () => {
        const queued = script.shift();
        if (queued instanceof Error) reject(queued);
        else if (queued) resolve(queued);
      };
    });
  };
  return {
    queries,
    fetch,
    aborted: () => aborted,
    /** Adds answers and wakes a query that is blocking. */
    push(...more: Array<ConsulAnswer<T> | Error>) {
      script.push(...more);
      release?.();
      release = undefined;
    },
  };
}

const health = (a: HealthAnswer | Error): ConsulAnswer<HealthEntry[]> | Error =>
  a instanceof Error ? a : { index: a.index, body: a.entries };

/** The checks `/v1/health/state/any` lists for these instances of `service`. */
const checksOf = (service: string, entries: readonly HealthEntry[]): HealthCheck[] =>
  entries.flatMap((e) =>
    (e.Checks ?? []).map((c) => ({
      Node: 'node1',
      CheckID: `service:${c.ServiceID}`,
      ServiceID: c.ServiceID,
      ServiceName: service,
      Status: c.Status,
    })),
  );

function memoryLogger() {
  const lines: Array<{ level: string; msg: string }> = [];
  const keep = (level: string) => (msg: string) => void lines.push({ level, msg });
  const logger: Logger = { info: keep('info'), warn: keep('warn'), error: keep('error') };
  return { logger, lines };
}

/**
 * One routed service, hello, whose health follows `script`: each answer of the health-state query takes
 * the next step (its checks), and a read of hello then gets that step's instances. The catalog answers
 * once that hello is routed and then blocks. `changes` holds hello's upstreams in each table handed on
 * ([] when it has none or is gone).
 */
function follow(script: Array<HealthAnswer | Error>, emptyGraceMs = 0, names = new Map<string, Resolution>()) {
  const catalog = scripted<Record<string, string[]>>([{ index: 1, body: { consul: [], hello: ['urlprefix-/'] } }]);
  const consul = scripted<HealthEntry[]>(script.map(health));
  const push = (...more: Array<HealthAnswer | Error>) => consul.push(...more.map(health));
  const { logger, lines } = memoryLogger();
  const changes: string[][] = [];
  const tables: GatewayTable[] = [];
  const dropped: string[][] = [];
  const resolver = tableResolver(names);
  // What Consul holds now: a read before the first health-state answer sees its first step.
  const first = script[0];
  let now: HealthEntry[] = first && !(first instanceof Error) ? first.entries : [];
  const follower = followGateway({
    fetchCatalog: catalog.fetch,
    fetchHealthState: (index, signal) =>
      consul.fetch(index, signal).then((answer) => {
        now = answer.body;
        return { index: answer.index, body: checksOf('hello', answer.body) };
      }),
    readService: () => Promise.resolve({ index: 1, body: now }),
    resolveNames: resolver.resolveNames,
    resolveRetryMs: 50,
    onConsul: (view: GatewayView) => dropped.push((view.services.get('hello')?.selection.dropped ?? []).map((d) => `${d.id}: ${d.reason}`)),
    logger,
    emptyGraceMs,
    onChange: (table) => {
      tables.push(table);
      changes.push(table.services.find((s) => s.name === 'hello')?.upstreams ?? []);
    },
    backoffInitialMs: 20,
    backoffMaxMs: 80,
  });
  return { consul: { ...consul, push }, catalog, lines, changes, tables, dropped, follower, resolver };
}

test('blocks on the last index and reports only real changes of the set', async (t) => {
  const { consul, changes, follower } = follow([
    { index: 5, entries: [entry(3001)] },
    { index: 7, entries: [entry(3001)] },
    { index: 9, entries: [entry(3001), entry(3002)] },
  ]);
  t.teardown(() => follower.stop());
  await waitFor('four queries', () => consul.queries.length === 4, 2000, 5);
  t.deepEqual(
    consul.queries.map((q) => q.index),
    [0, 5, 7, 9],
  );
  t.deepEqual(changes, [['127.0.0.1:3001'], ['127.0.0.1:3001', '127.0.0.1:3002']]);
});

test('an index that goes backwards is reset to 0 and logged', async (t) => {
  const { consul, lines, follower } = follow([
    { index: 50, entries: [entry(3001)] },
    { index: 3, entries: [entry(3001)] },
    { index: 4, entries: [entry(3001)] },
  ]);
  t.teardown(() => follower.stop());
  await waitFor('four queries', () => consul.queries.length === 4, 2000, 5);
  t.deepEqual(
    consul.queries.map((q) => q.index),
    [0, 50, 0, 4],
  );
  t.is(lines.filter((l) => l.msg.includes('went backwards')).length, 1);
});

test('a zero index from Consul is never used to block (it would return at once)', async (t) => {
  const { consul, follower } = follow([{ index: 0, entries: [] }]);
  t.teardown(() => follower.stop());
  await waitFor('two queries', () => consul.queries.length === 2, 2000, 5);
  t.is(consul.queries[1].index, 1);
});

test('Consul failures keep the set, back off, log once per outage, and restart at index 0', async (t) => {
  const down = new Error('connect ECONNREFUSED 127.0.0.1:8500');
  const { consul, lines, changes, follower } = follow([
    { index: 9, entries: [entry(3001)] },
    ...Array.from({ length: 6 }, () => down),
    { index: 2, entries: [entry(3001)] },
  ]);
  t.teardown(() => follower.stop());
  await waitFor('nine queries', () => consul.queries.length === 9, 5000, 5);
  t.deepEqual(changes, [['127.0.0.1:3001']], 'the set is kept through the outage');
  t.is(lines.filter((l) => l.msg.startsWith('Consul query failed')).length, 1);
  t.is(lines.filter((l) => l.msg === 'Consul answers again').length, 1);
  t.deepEqual(
    consul.queries.slice(2, 8).map((q) => q.index),
    [0, 0, 0, 0, 0, 0],
  );
  const gaps = consul.queries.slice(2, 8).map((q, i) => q.at - consul.queries[i + 1].at);
  // 20, 40, 80, 80, 80, 80 ms: doubling (timers never fire early), then capped. Doubling on, the last
  // three would take 160 + 320 + 640 ms; capped they take 240. Below the doubled sum is the line between the
  // two: a CI run under load saw 600 ms (timers late by up to 200 ms each), past the former 2 x 240.
  t.true(gaps[0] >= 15 && gaps[1] >= 35 && gaps[2] >= 70, `doubling: gaps ${gaps.join(',')}`);
  const lastThree = gaps[3] + gaps[4] + gaps[5];
  t.true(lastThree >= 3 * 80 - 5 && lastThree < 160 + 320 + 640, `capped: gaps ${gaps.join(',')}`);
  t.true(follower.consulState().reachable);
});

test('the second outage is logged again (once)', async (t) => {
  const down = new Error('boom');
  const { consul, lines, follower } = follow([
    { index: 9, entries: [] },
    down,
    down,
    { index: 10, entries: [] },
    down,
    down,
    { index: 11, entries: [] },
  ]);
  t.teardown(() => follower.stop());
  await waitFor('eight queries', () => consul.queries.length === 8, 3000, 5);
  t.is(lines.filter((l) => l.msg.startsWith('Consul query failed')).length, 2);
});

test('without an outage an empty set is applied at once: no instance passing keeps the routes (the 503 case), none registered drops them', async (t) => {
  const { consul, changes, tables, follower } = follow(
    [
      { index: 5, entries: [entry(3001)] },
      { index: 6, entries: [entry(3001, ['urlprefix-/'], 10, 'critical')] },
      { index: 7, entries: [] },
    ],
    10_000,
  );
  t.teardown(() => follower.stop());
  await waitFor('four queries', () => consul.queries.length === 4, 2000, 5);
  t.deepEqual(changes, [['127.0.0.1:3001'], [], []]);
  t.deepEqual(tables[1], { services: [{ name: 'hello', routes: [{ path: '/', exact: false }], upstreams: [] }] });
  t.deepEqual(tables[2], { services: [] });
});

test('right after an outage an empty set is held for the grace, then applied if still empty', async (t) => {
  const { consul, changes, follower } = follow([{ index: 50, entries: [entry(3001)] }, new Error('down'), { index: 3, entries: [] }], 300);
  t.teardown(() => follower.stop());
  await waitFor('four queries', () => consul.queries.length === 4, 2000, 5);
  const heldSince = Date.now();
  t.deepEqual(changes, [['127.0.0.1:3001']]);
  await waitFor('the empty set after the grace', () => changes.length === 2, 2000, 5);
  t.deepEqual(changes[1], []);
  t.true(Date.now() - heldSince >= 200, 'held for about the grace');
});

test('an index reset alone also starts the grace', async (t) => {
  const { consul, changes, follower } = follow(
    [
      { index: 50, entries: [entry(3001)] },
      { index: 3, entries: [] },
    ],
    300,
  );
  t.teardown(() => follower.stop());
  await waitFor('three queries', () => consul.queries.length === 3, 2000, 5);
  await new Promise((r) => setTimeout(r, 100));
  t.deepEqual(changes, [['127.0.0.1:3001']]);
  await waitFor('the empty set after the grace', () => changes.length === 2, 2000, 5);
});

test('replicas registering again during the grace are applied at once and end the grace', async (t) => {
  const { consul, changes, follower } = follow(
    [{ index: 50, entries: [entry(3001), entry(3002)] }, new Error('down'), { index: 3, entries: [] }],
    300,
  );
  t.teardown(() => follower.stop());
  await waitFor('four queries', () => consul.queries.length === 4, 2000, 5);
  consul.push({ index: 4, entries: [entry(3002)] });
  await waitFor('the new set', () => changes.length === 2, 2000, 5);
  t.deepEqual(changes[1], ['127.0.0.1:3002']);
  await new Promise((r) => setTimeout(r, 400));
  t.is(changes.length, 2, 'no late empty set once replicas are back');
});

test('stop cancels the blocking query and ends the loop', async (t) => {
  const { consul, follower } = follow([{ index: 5, entries: [] }]);
  await waitFor('the blocking query', () => consul.queries.length === 2, 2000, 5);
  follower.stop();
  await new Promise((r) => setTimeout(r, 100));
  t.is(consul.queries.length, 2);
});

test('host names are resolved before selection; only their addresses reach the set, IP literals are not looked up', async (t) => {
  const names = new Map<string, Resolution>([['replica-a.internal', { addresses: ['10.0.0.7', '10.0.0.8'] }]]);
  const { consul, changes, dropped, follower, resolver } = follow(
    [{ index: 5, entries: [entry(3001), named('a', 'replica-a.internal', 80), named('gone', 'does-not-exist.invalid', 80)] }],
    0,
    names,
  );
  t.teardown(() => follower.stop());
  await waitFor('the blocking query', () => consul.queries.length === 2, 2000, 5);
  t.deepEqual(resolver.batches[0], ['does-not-exist.invalid', 'replica-a.internal']);
  t.deepEqual(changes, [['10.0.0.7:80', '10.0.0.8:80', '127.0.0.1:3001']]);
  t.deepEqual(dropped.at(-1), ['gone: host name does-not-exist.invalid does not resolve: ENOTFOUND']);
});

test('a name that does not resolve is looked up again without news from Consul, and joins once it resolves', async (t) => {
  const names = new Map<string, Resolution>();
  const { consul, changes, dropped, follower, resolver } = follow(
    [{ index: 5, entries: [entry(3001), named('late', 'late.internal', 80)] }],
    0,
    names,
  );
  t.teardown(() => follower.stop());
  await waitFor('the blocking query', () => consul.queries.length === 2, 2000, 5);
  t.deepEqual(changes, [['127.0.0.1:3001']]);
  names.set('late.internal', { addresses: ['10.0.0.9'] });
  await waitFor('the retried name to join', () => changes.length === 2, 2000, 5);
  t.deepEqual(changes[1], ['10.0.0.9:80', '127.0.0.1:3001']);
  t.deepEqual(dropped.at(-1), []);
  t.is(consul.queries.length, 2, 'no new Consul query was needed');
  const batches = resolver.batches.length;
  await new Promise((r) => setTimeout(r, 150));
  t.is(resolver.batches.length, batches, 'no more lookups once every name resolves (until Consul answers again)');
});

test('answers with only IP literals never call the resolver', async (t) => {
  const { consul, follower, resolver } = follow([
    { index: 5, entries: [entry(3001)] },
    { index: 6, entries: [entry(3002)] },
  ]);
  t.teardown(() => follower.stop());
  await waitFor('three queries', () => consul.queries.length === 3, 2000, 5);
  t.deepEqual(resolver.batches, []);
});

/**
 * A stand-in for Consul with several services: `set` changes one service's instances (and the index),
 * which wakes the blocking health-state query; reads answer the current instances (a `stalled` one never
 * answers). The catalog follows its own script.
 */
function fakeHealth(initial: Record<string, HealthEntry[]>) {
  const services = new Map(Object.entries(initial));
  // What the health state lists: follows `set`, not `touch`.
  const checks = new Map([...services].map(([name, entries]) => [name, checksOf(name, entries)]));
  const reads = new Map<string, number>();
  const stalled = new Set<string>();
  const waiters = new Set<() => void>();
  let index = 10;
  let inFlight = 0;
  let maxInFlight = 0;
  const failing = { reads: 0 };
  const answer = () => ({ index, body: [...checks.values()].flat() });
  return {
    reads,
    stalled,
    /** The next this many reads fail. */
    failing,
    maxInFlight: () => maxInFlight,
    fetchHealthState: (min: number, signal: AbortSignal) =>
      new Promise<ConsulAnswer<HealthCheck[]>>((resolve, reject) => {
        if (index > min) return resolve(answer());
        const wake = () => {
          waiters.delete(wake);
          resolve(answer());
        };
        waiters.add(wake);
        signal.addEventListener('abort', () => {
          waiters.delete(wake);
          reject(new Error('aborted'));
        });
      }),
    readService: async (name: string, signal: AbortSignal): Promise<ConsulAnswer<HealthEntry[]>> => {
      reads.set(name, (reads.get(name) ?? 0) + 1);
      if (failing.reads > 0) {
        failing.reads--;
        throw new Error('connect ECONNREFUSED');
      }
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        if (stalled.has(name)) await new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
        await new Promise((r) => setTimeout(r, 1));
        return { index, body: services.get(name) ?? [] };
      } finally {
        inFlight--;
      }
    },
    /** Sets a service's instances (none: it is gone), as a registration or a check would. */
    set(name: string, entries: HealthEntry[] | undefined) {
      if (entries) services.set(name, entries);
      else services.delete(name);
      if (entries) checks.set(name, checksOf(name, entries));
      else checks.delete(name);
      index++;
      for (const wake of [...waiters]) wake();
    },
    /** Changes what a read answers without any check changing; `bump` moves the health state's index (an address changed) or not (an instance with no check). */
    touch(name: string, entries: HealthEntry[], bump = true) {
      services.set(name, entries);
      if (!bump) return;
      index++;
      for (const wake of [...waiters]) wake();
    },
  };
}

/** Several services: the catalog script decides which are followed; `health` is their instances. */
function followMany(catalogScript: Array<ConsulAnswer<Record<string, string[]>>>, initial: Record<string, HealthEntry[]>) {
  const catalog = scripted<Record<string, string[]>>(catalogScript);
  const health = fakeHealth(initial);
  const { logger, lines } = memoryLogger();
  const tables: GatewayTable[] = [];
  const views: GatewayView[] = [];
  const follower = followGateway({
    fetchCatalog: catalog.fetch,
    fetchHealthState: health.fetchHealthState,
    readService: health.readService,
    resolveNames: tableResolver(new Map()).resolveNames,
    logger,
    emptyGraceMs: 0,
    onConsul: (view) => views.push(view),
    onChange: (table) => tables.push(table),
  });
  return { catalog, health, lines, tables, views, follower };
}

const routesOf = (table: GatewayTable | undefined) =>
  Object.fromEntries((table?.services ?? []).map((s) => [s.name, s.routes.map((r) => (r.exact ? `=${r.path}` : r.path))]));

test('every service with route tags is followed; one without, or with a name nginx may not see, is not', async (t) => {
  const { health, tables, views, follower } = followMany(
    [
      {
        index: 3,
        body: {
          consul: [],
          hello: ['urlprefix-=/', 'urlprefix-/api/users'],
          activity: ['urlprefix-/api/activity'],
          db: ['primary'],
          Bad_Name: ['urlprefix-/bad'],
        },
      },
    ],
    {
      hello: [entry(3001, ['urlprefix-=/', 'urlprefix-/api/users'])],
      activity: [entry(4001, ['urlprefix-/api/activity'], 20)],
      db: [entry(5001, ['primary'])],
    },
  );
  t.teardown(() => follower.stop());
  await waitFor('a table with both services', () => tables.length > 0, 2000, 5);
  t.deepEqual(routesOf(tables[0]), { activity: ['/api/activity'], hello: ['=/', '/api/users'] }, 'handed on only once both have answered');
  t.is(tables.length, 1);
  t.deepEqual(
    views.at(-1)!.droppedRoutes.map((d) => `${d.service} ${d.route}`),
    ['Bad_Name /bad'],
  );
  t.regex(views.at(-1)!.droppedRoutes[0].reason, /lowercase letters/);
  t.deepEqual([...health.reads.keys()].sort(), ['activity', 'hello'], 'a service without route tags is never read');
});

test('a service that loses its route tags or leaves the catalog is no longer followed, and its routes go', async (t) => {
  const { catalog, health, tables, lines, follower } = followMany(
    [{ index: 3, body: { hello: ['urlprefix-/'], activity: ['urlprefix-/api/activity'] } }],
    { hello: [entry(3001)], activity: [entry(4001, ['urlprefix-/api/activity'], 20)] },
  );
  t.teardown(() => follower.stop());
  await waitFor('the first table', () => tables.length === 1, 2000, 5);
  catalog.push({ index: 6, body: { hello: ['urlprefix-/'], activity: ['version-2'] } });
  await waitFor('activity gone', () => tables.length === 2, 2000, 5);
  t.deepEqual(routesOf(tables[1]), { hello: ['/'] });
  const activityReads = health.reads.get('activity');
  health.set('activity', [entry(4001, ['version-2'], 20), entry(4002, ['version-2'], 20)]);
  await new Promise((r) => setTimeout(r, 50));
  t.is(health.reads.get('activity'), activityReads, 'a service no longer followed is not read when its health changes');
  catalog.push({ index: 7, body: {} });
  await waitFor('hello gone', () => tables.length === 3, 2000, 5);
  t.deepEqual(tables[2], { services: [] });
  t.is(lines.filter((l) => l.msg.startsWith('no longer following')).length, 2);
});

test("a newly followed service that has not answered holds up no other service's change", async (t) => {
  const { catalog, health, tables, follower } = followMany([{ index: 3, body: { hello: ['urlprefix-/'] } }], { hello: [entry(3001)] });
  t.teardown(() => follower.stop());
  await waitFor('the first table', () => tables.length === 1, 2000, 5);
  // Its read never answers (until stopped).
  health.stalled.add('slow');
  catalog.push({ index: 5, body: { hello: ['urlprefix-/'], slow: ['urlprefix-/api/slow'] } });
  await waitFor("slow's read", () => health.reads.get('slow') === 1, 2000, 5);
  health.set('hello', [entry(3001), entry(3002)]);
  await waitFor("hello's new replica in a table", () => tables.length === 2, 2000, 5);
  t.deepEqual(routesOf(tables[1]), { hello: ['/'] }, 'slow is not in it until it answers');
  t.deepEqual(tables[1].services[0].upstreams, ['127.0.0.1:3001', '127.0.0.1:3002']);
});

test('a route claimed by two services stays with the older one; the younger one is reported', async (t) => {
  const { tables, views, follower } = followMany(
    [{ index: 3, body: { hello: ['urlprefix-/api/users'], users2: ['urlprefix-/api/users', 'urlprefix-/api/v2'] } }],
    {
      hello: [entry(3001, ['urlprefix-/api/users'], 10)],
      users2: [entry(5001, ['urlprefix-/api/users', 'urlprefix-/api/v2'], 99)],
    },
  );
  t.teardown(() => follower.stop());
  await waitFor('the table', () => tables.length === 1, 2000, 5);
  t.deepEqual(routesOf(tables[0]), { hello: ['/api/users'], users2: ['/api/v2'] });
  const dropped = views.at(-1)!.droppedRoutes;
  t.deepEqual(
    dropped.map((d) => `${d.service} ${d.route}`),
    ['users2 /api/users'],
  );
  t.regex(dropped[0].reason, /older service hello/);
});

/** Resolves once no read has started for 50 ms (the first answers' reads are over). */
async function readsQuiet(reads: ReadonlyMap<string, number>) {
  const total = () => [...reads.values()].reduce((a, b) => a + b, 0);
  for (let seen = -1, i = 0; seen !== total() && i < 100; i++) {
    seen = total();
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** 60 routed services `s0`..`s59`, one instance each, on ports 6000.. */
function manyServices(count = 60) {
  const names = Array.from({ length: count }, (_, i) => `s${i}`);
  const catalogBody = Object.fromEntries(names.map((n) => [n, [`urlprefix-/${n}`]]));
  const initial = Object.fromEntries(names.map((n, i) => [n, [entry(6000 + i, [`urlprefix-/${n}`])]]));
  return { names, catalogBody, initial };
}

test('many services: a bounded number of reads at once, and after a change only the changed service is read', async (t) => {
  const { names, catalogBody, initial } = manyServices();
  const { health, tables, views, follower } = followMany([{ index: 3, body: catalogBody }], initial);
  t.teardown(() => follower.stop());
  await waitFor('all routed', () => tables.at(-1)?.services.length === names.length, 5000, 5);
  t.true(health.maxInFlight() <= 2, `reads at once: ${health.maxInFlight()}`);
  t.true(views.length < names.length / 2, `the table was recomputed ${views.length} times for ${names.length} first reads: in batches`);
  await readsQuiet(health.reads);
  const before = new Map(health.reads);
  health.set('s7', [entry(6007, ['urlprefix-/s7']), entry(7007, ['urlprefix-/s7'])]);
  await waitFor('s7 with two upstreams', () => tables.at(-1)?.services.find((s) => s.name === 's7')?.upstreams.length === 2, 2000, 5);
  const readAgain = names.filter((n) => health.reads.get(n) !== before.get(n));
  t.deepEqual(readAgain, ['s7']);
  const last = tables.at(-1)!;
  const previous = tables.at(-2)!;
  t.deepEqual(
    last.services.filter((s) => s.name !== 's7'),
    previous.services.filter((s) => s.name !== 's7'),
    "no other service's entry changed",
  );
});

test('an index that moves with no check changed (an address changed) reads every followed service again', async (t) => {
  const { names, catalogBody, initial } = manyServices(5);
  const { health, tables, follower } = followMany([{ index: 3, body: catalogBody }], initial);
  t.teardown(() => follower.stop());
  await waitFor('all routed', () => tables.at(-1)?.services.length === names.length, 5000, 5);
  await readsQuiet(health.reads);
  const before = new Map(health.reads);
  health.touch('s2', [entry(9002, ['urlprefix-/s2'])]);
  await waitFor('s2 moved', () => tables.at(-1)?.services.find((s) => s.name === 's2')?.upstreams[0] === '127.0.0.1:9002', 2000, 5);
  t.true(
    names.every((n) => health.reads.get(n)! > before.get(n)!),
    'every service read again',
  );
});

test('a read that fails is an outage like a failed query: the set is kept, the read retried until it answers', async (t) => {
  const { health, tables, lines, follower } = followMany([{ index: 3, body: { hello: ['urlprefix-/'] } }], { hello: [entry(3001)] });
  t.teardown(() => follower.stop());
  await waitFor('the first table', () => tables.length === 1, 2000, 5);
  // The first health-state answer reads hello once more; let it finish before reads start failing.
  await waitFor('the baseline read', () => health.reads.get('hello') === 2, 2000, 5);
  await new Promise((r) => setTimeout(r, 20));
  health.failing.reads = 3;
  health.set('hello', [entry(3001), entry(3002)]);
  await waitFor('the change once a read answers', () => tables.length === 2, 5000, 5);
  t.deepEqual(tables[1].services[0].upstreams, ['127.0.0.1:3001', '127.0.0.1:3002']);
  t.is(lines.filter((l) => l.msg.startsWith('Consul query failed')).length, 1);
  t.is(lines.filter((l) => l.msg === 'Consul answers again').length, 1);
  t.true(follower.consulState().reachable);
});

test('a catalog change the health state never explains (an instance with no check of its own) reads every followed service again', async (t) => {
  const { catalog, health, views, follower } = followMany([{ index: 3, body: { hello: ['urlprefix-/'] } }], { hello: [entry(3001)] });
  t.teardown(() => follower.stop());
  await waitFor('hello followed', () => views.at(-1)?.services.get('hello') !== undefined, 2000, 5);
  const unchecked: HealthEntry = {
    Node: { Address: '127.0.0.1' },
    Service: { ID: 'unchecked', Port: 9, Tags: ['urlprefix-/'] },
    Checks: [],
  };
  health.touch('hello', [entry(3001), unchecked], false);
  catalog.push({ index: 99, body: { hello: ['urlprefix-/'] } });
  await waitFor(
    'the unchecked entry reported',
    () =>
      views
        .at(-1)
        ?.services.get('hello')
        ?.selection.dropped.some((d) => d.id === 'unchecked') === true,
    2000,
    5,
  );
  t.pass();
});

test('a service that leaves while its read fails keeps no outage open', async (t) => {
  const { catalog, health, tables, follower } = followMany([{ index: 3, body: { hello: ['urlprefix-/'] } }], { hello: [entry(3001)] });
  t.teardown(() => follower.stop());
  await waitFor('the first table', () => tables.length === 1, 2000, 5);
  await readsQuiet(health.reads);
  health.failing.reads = 1000;
  health.set('hello', [entry(3001), entry(3002)]);
  await waitFor('the read failing', () => !follower.consulState().reachable, 2000, 5);
  catalog.push({ index: 9, body: {} });
  await waitFor('reachable again once hello left', () => follower.consulState().reachable, 2000, 5);
  t.pass();
});
