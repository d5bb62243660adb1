import test, { type ExecutionContext } from 'ava';
import { createApplier, tableChange, type ApplierOptions, type ConfigTarget } from '../../balancer/apply';
import type { Logger } from '../../lib/logger';
import type { GatewayTable } from '../../balancer/routing';
import { createStatusStore, type StatusStore } from '../../balancer/status';

/** One service routed at `/` with these upstreams; no upstream at all means no service (the initial table). */
const tableOf = (upstreams: readonly string[]): GatewayTable =>
  upstreams.length === 0
    ? { services: [] }
    : { services: [{ name: 'hello', routes: [{ path: '/', exact: false }], upstreams: [...upstreams] }] };
const served = (status: StatusStore) => status.read().services.hello?.upstreams ?? [];
import { waitFor } from '../../harness/processes';

function fakeNginx(refuse: (text: string) => string | null = () => null, failReload = false) {
  const events: string[] = [];
  const checkedAt: number[] = [];
  const generations: number[] = [];
  let candidate = '';
  let live = '';
  const target: ConfigTarget = {
    async writeCandidate(text) {
      candidate = text;
      events.push(`write ${text}`);
    },
    async check(text) {
      candidate = text;
      checkedAt.push(Date.now());
      events.push(`check ${text}`);
      await new Promise((r) => setTimeout(r, 10));
      return refuse(text);
    },
    async installCandidate() {
      live = candidate;
      events.push('install');
    },
    async reload(generation) {
      generations.push(generation);
      events.push(`reload ${live}`);
      if (failReload) throw new Error('nginx did not serve the new config within 5000 ms');
    },
  };
  return { target, events, generations, checkedAt, live: () => live };
}

const quietLogger: Logger = { info() {}, warn() {}, error() {} };

function setup(t: ExecutionContext, refuse?: (text: string) => string | null, failReload = false, timing: Partial<ApplierOptions> = {}) {
  const nginx = fakeNginx(refuse, failReload);
  const status = createStatusStore('http://127.0.0.1:8500');
  const applier = createApplier({
    target: nginx.target,
    renderText: (table) => table.services.flatMap((s) => s.upstreams).join(',') || 'empty',
    status,
    logger: quietLogger,
    debounceMs: 30,
    maxDelayMs: 150,
    retryInitialMs: 1000,
    retryMaxMs: 1000,
    // These tests are about nginx -t; the ones about skipping it say so.
    alwaysCheck: () => true,
    ...timing,
  });
  // A set that never applies is retried for ever; the test's end stops that.
  t.teardown(() => applier.stop());
  return { nginx, status, applier };
}

test('one change is checked, installed and reloaded, and the status follows', async (t) => {
  const { nginx, status, applier } = setup(t);
  const started = Date.now();
  applier.request(tableOf(['a:1']));
  await new Promise((r) => setTimeout(r, 5));
  await applier.idle();
  t.deepEqual(nginx.events, ['check a:1', 'install', 'reload a:1']);
  // About 40 ms of timers (debounce and check); a bound only against waiting for something else.
  t.true(Date.now() - started < 1000);
  t.deepEqual(served(status), ['a:1']);
  t.is(status.read().reloads, 1);
  t.truthy(status.read().changedAt);
  t.is(status.read().lastReloadError, null);
  t.deepEqual(nginx.generations, [1], 'the first reload is generation 1 (the initial config is 0)');
});

test('a burst of changes leads to one reload with the last set', async (t) => {
  // The gaps are 10 ms; a quiet time of 300 ms keeps a loaded machine's late timer inside the burst.
  const { nginx, status, applier } = setup(t, undefined, false, { debounceMs: 300, maxDelayMs: 3000 });
  for (const set of [['a:1'], ['a:1', 'b:1'], ['a:1', 'b:1', 'c:1']]) {
    applier.request(tableOf(set));
    await new Promise((r) => setTimeout(r, 10));
  }
  await applier.idle();
  t.deepEqual(nginx.events, ['check a:1,b:1,c:1', 'install', 'reload a:1,b:1,c:1']);
  t.is(status.read().reloads, 1);
});

test('a burst that never pauses is still applied within the maximum delay', async (t) => {
  const { status, applier } = setup(t);
  const started = Date.now();
  let n = 0;
  const timer = setInterval(() => applier.request(tableOf([`a:${++n}`])), 10);
  await new Promise((r) => setTimeout(r, 400));
  clearInterval(timer);
  await applier.idle();
  t.true(status.read().reloads >= 2, `reloads ${status.read().reloads}`);
  t.true(status.read().reloads <= 6, `reloads ${status.read().reloads}`);
  // 400 ms of burst plus at most one maximum delay (150 ms); twice that for a slow machine.
  t.true(Date.now() - started < 2 * (400 + 150));
});

test('a config nginx -t refuses is never installed; the error is reported and the next good one goes through', async (t) => {
  const { nginx, status, applier } = setup(t, (text) => (text.includes('bad') ? 'nginx: [emerg] unknown directive "bad"' : null));
  applier.request(tableOf(['a:1']));
  await new Promise((r) => setTimeout(r, 5));
  await applier.idle();
  applier.request(tableOf(['a:1', 'bad:1']));
  await new Promise((r) => setTimeout(r, 5));
  await applier.idle();
  t.is(status.read().reloads, 1);
  t.deepEqual(served(status), ['a:1']);
  t.is(nginx.live(), 'a:1');
  t.regex(status.read().lastReloadError ?? '', /unknown directive/);
  t.truthy(status.read().lastReloadErrorAt);

  applier.request(tableOf(['a:1', 'b:1']));
  await new Promise((r) => setTimeout(r, 5));
  await applier.idle();
  t.is(status.read().reloads, 2);
  t.is(nginx.live(), 'a:1,b:1');
});

test('asking for the set nginx already serves does not reload', async (t) => {
  const { nginx, status, applier } = setup(t);
  applier.request(tableOf([]));
  await new Promise((r) => setTimeout(r, 5));
  await applier.idle();
  t.deepEqual(nginx.events, []);
  t.is(status.read().reloads, 0);
});

test('changes during a reload are applied right after it, never concurrently', async (t) => {
  const { nginx, applier } = setup(t);
  applier.request(tableOf(['a:1']));
  await new Promise((r) => setTimeout(r, 35));
  applier.request(tableOf(['b:1']));
  await new Promise((r) => setTimeout(r, 5));
  await applier.idle();
  await new Promise((r) => setTimeout(r, 50));
  await applier.idle();
  t.deepEqual(nginx.events, ['check a:1', 'install', 'reload a:1', 'check b:1', 'install', 'reload b:1']);
});

test('a reload nginx does not take up in time is reported and the status keeps the old set', async (t) => {
  const { status, applier } = setup(t, undefined, true);
  applier.request(tableOf(['a:1']));
  await new Promise((r) => setTimeout(r, 5));
  await applier.idle();
  t.is(status.read().reloads, 0);
  t.deepEqual(served(status), []);
  t.regex(status.read().lastReloadError ?? '', /did not serve the new config/);
});

test('every attempt gets a new generation number, refused ones included', async (t) => {
  const { nginx, applier } = setup(t, (text) => (text.includes('bad') ? 'refused' : null));
  for (const set of [['a:1'], ['bad:1'], ['b:1']]) {
    applier.request(tableOf(set));
    await new Promise((r) => setTimeout(r, 5));
    await applier.idle();
  }
  t.deepEqual(nginx.generations, [1, 3]);
});

test('a refused set is retried with doubling backoff, and applied without a new change once nginx accepts it', async (t) => {
  let accept = false;
  const { nginx, status, applier } = setup(t, () => (accept ? null : 'nginx: [emerg] refused'), false, {
    retryInitialMs: 20,
    retryMaxMs: 80,
  });
  applier.request(tableOf(['a:1']));
  await waitFor('five refused attempts', () => nginx.checkedAt.length >= 5, 3000, 5);
  t.is(status.read().reloads, 0);
  t.true(status.read().failedApplies >= 4, `failedApplies ${status.read().failedApplies}`);
  // 20, 40, 80, 80 ms after each refusal (each check itself takes ~10 ms): doubling, capped.
  const gaps = nginx.checkedAt.slice(1, 5).map((at, i) => at - nginx.checkedAt[i]);
  t.true(gaps[0] >= 25 && gaps[1] >= 45 && gaps[2] >= 85 && gaps[3] >= 85, `gaps ${gaps.join(',')}`);

  accept = true;
  await waitFor('the retried set to be applied', () => status.read().reloads === 1, 3000, 5);
  t.deepEqual(served(status), ['a:1']);
  t.is(nginx.live(), 'a:1');
  t.is(status.read().failedApplies, 0);
  const checks = nginx.checkedAt.length;
  await new Promise((r) => setTimeout(r, 200));
  t.is(nginx.checkedAt.length, checks, 'no retry once applied');
});

test('a change after a refusal is applied at once, not after the backoff', async (t) => {
  const { nginx, status, applier } = setup(t, (text) => (text.includes('bad') ? 'refused' : null), false, {
    retryInitialMs: 60_000,
    retryMaxMs: 60_000,
  });
  applier.request(tableOf(['bad:1']));
  await new Promise((r) => setTimeout(r, 5));
  await applier.idle();
  t.is(status.read().failedApplies, 1);
  const changedAt = Date.now();
  applier.request(tableOf(['a:1']));
  await new Promise((r) => setTimeout(r, 5));
  await applier.idle();
  t.is(nginx.live(), 'a:1');
  t.is(status.read().failedApplies, 0);
  t.true(Date.now() - changedAt < 30_000, 'applied long before the 60 s backoff');
});

test('a reload that failed is retried too', async (t) => {
  let failReload = true;
  const { nginx, status, applier } = setup(t, undefined, false, { retryInitialMs: 20, retryMaxMs: 20 });
  const reload = nginx.target.reload.bind(nginx.target);
  nginx.target.reload = async (generation) => {
    await reload(generation);
    if (failReload) throw new Error('nginx did not serve the new config within 5000 ms');
  };
  applier.request(tableOf(['a:1']));
  await waitFor('two failed reloads', () => nginx.generations.length >= 2, 3000, 5);
  t.is(status.read().reloads, 0);
  failReload = false;
  await waitFor('the retried reload to succeed', () => status.read().reloads === 1, 3000, 5);
  t.deepEqual(served(status), ['a:1']);
});

test('the applier owns what nginx serves: the table nginx started with is recorded, and the same table asks for no reload', async (t) => {
  const nginx = fakeNginx();
  const status = createStatusStore('http://127.0.0.1:8500');
  const applier = createApplier({
    target: nginx.target,
    renderText: (table) => table.services.flatMap((s) => s.upstreams).join(','),
    initial: tableOf(['a:1']),
    status,
    logger: quietLogger,
    debounceMs: 10,
  });
  t.teardown(() => applier.stop());
  t.deepEqual(served(status), ['a:1']);
  t.is(status.read().reloads, 0);
  applier.request(tableOf(['a:1']));
  await applier.idle();
  t.deepEqual(nginx.events, [], 'nginx already serves it');
});

test('the reload log names only the services that changed (a thousand unchanged ones would fill it), and how many are routed', (t) => {
  const service = (name: string, upstreams: string[]) => ({ name, routes: [{ path: `/${name}`, exact: false }], upstreams });
  const before: GatewayTable = { services: [service('a', ['a:1']), service('b', ['b:1']), service('c', ['c:1'])] };
  const after: GatewayTable = { services: [service('a', ['a:1']), service('b', ['b:2']), service('d', ['d:1'])] };
  const change = tableChange(before, after) as { services: Record<string, unknown>; routedServices: number };
  t.deepEqual(Object.keys(change.services).sort(), ['b', 'c', 'd']);
  t.like(change.services.b, { added: ['b:2'], removed: ['b:1'] });
  t.like(change.services.c, { unrouted: true });
  t.like(change.services.d, { routed: true });
  t.is(change.routedServices, 3);
});

test('the status shows how long the last reload took', async (t) => {
  const { status, applier } = setup(t);
  applier.request(tableOf(['a:1']));
  await applier.idle();
  const ms = status.read().lastReloadMs;
  // Whole milliseconds of Date.now() on both ends: a 10 ms timer can read as 9.
  t.true(typeof ms === 'number' && ms >= 9, `lastReloadMs ${ms} (the fake check alone takes 10 ms)`);
});

test('a change of upstream addresses alone is installed without nginx -t; a change of routes, or a retry after a failed reload, is checked', async (t) => {
  let failReload = false;
  const nginx = fakeNginx();
  const target: ConfigTarget = {
    ...nginx.target,
    async reload(generation) {
      await nginx.target.reload(generation);
      if (failReload) throw new Error('nginx did not serve the new config within 5000 ms');
    },
  };
  const status = createStatusStore('http://127.0.0.1:8500');
  const applier = createApplier({
    target,
    renderText: (table) =>
      table.services.map((s) => `${s.name}@${s.routes.map((r) => r.path).join('+')}=${s.upstreams.join(',')}`).join(';'),
    initial: tableOf(['a:1']),
    status,
    logger: quietLogger,
    debounceMs: 5,
    retryInitialMs: 20,
    retryMaxMs: 20,
  });
  t.teardown(() => applier.stop());
  const kinds = () => nginx.events.filter((e) => e.startsWith('check') || e.startsWith('write')).map((e) => e.split(' ')[0]);

  applier.request(tableOf(['a:1', 'b:1']));
  await applier.idle();
  t.deepEqual(kinds(), ['write'], 'addresses only: written and reloaded, not checked');

  applier.request({ services: [{ name: 'hello', routes: [{ path: '/v2', exact: false }], upstreams: ['a:1', 'b:1'] }] });
  await applier.idle();
  t.deepEqual(kinds(), ['write', 'check'], 'a route changed: checked');

  applier.request(tableOf([]));
  await applier.idle();
  t.deepEqual(kinds(), ['write', 'check', 'check'], 'a service gone: checked');

  failReload = true;
  applier.request(tableOf(['c:1']));
  await applier.idle();
  applier.request(tableOf(['c:1', 'd:1']));
  failReload = false;
  await waitFor('the retried table served', () => served(status).length === 2, 2000, 5);
  t.deepEqual(kinds().slice(3), ['check', 'check'], 'a new service is checked, and so is the next apply after a failed reload');
});
