import { nextIndex } from '../../lib/consul-index';
import { RENDER_SETTINGS } from '../helpers/nginx-settings';
import test from 'ava';
import { isPassing, type HealthEntry } from '../../balancer/consul-entries';
import { renderNginxConfig, type NginxSettings } from '../../balancer/render';
import { parseRouteOwners } from '../../lib/route-owners';
import {
  claimOf,
  healthChanges,
  healthSnapshot,
  holdThroughGrace,
  onlyUpstreamsChanged,
  routedServices,
  routeTable,
  type GatewayTable,
  type HealthCheck,
  type ServiceClaim,
} from '../../balancer/routing';

const claim = (name: string, tags: string[], createIndex = 10, upstreams = ['127.0.0.1:3000']): ServiceClaim => ({
  name,
  tags,
  createIndex,
  upstreams,
});
const routes = (table: GatewayTable) =>
  Object.fromEntries(table.services.map((s) => [s.name, s.routes.map((r) => (r.exact ? `=${r.path}` : r.path))]));

test('the catalog: services with a route tag are followed, sorted; others are not; a name nginx may not see is reported', (t) => {
  const result = routedServices({
    consul: [],
    nats: null,
    zeta: ['urlprefix-/z'],
    hello: ['primary', 'urlprefix-=/'],
    'Bad;Name': ['urlprefix-/x', 'other'],
    broken: ['urlprefix-/x;y'],
  });
  t.deepEqual(
    result.follow,
    ['broken', 'hello', 'zeta'],
    'a service whose only tag is hostile is followed, so its tag is reported with its reason',
  );
  t.deepEqual(
    result.dropped.map((d) => `${d.service} ${d.route}`),
    ['Bad;Name /x'],
  );
});

test("passing means every check passes, as Consul's ?passing filter", (t) => {
  const withChecks = (...statuses: string[]): HealthEntry => ({ Checks: statuses.map((Status) => ({ Status })) });
  t.true(isPassing(withChecks('passing', 'passing')));
  t.false(isPassing(withChecks('passing', 'critical')));
  t.false(isPassing(withChecks('warning', 'passing')));
  t.false(isPassing(withChecks('maintenance')));
});

test("a service's claim: the union of its instances' tags and its oldest CreateIndex; no instance, no claim", (t) => {
  const entry = (tags: string[], createIndex: number): HealthEntry => ({ Service: { Tags: tags, CreateIndex: createIndex } });
  t.deepEqual(claimOf('hello', [entry(['urlprefix-/a'], 30), entry(['urlprefix-/b', 'urlprefix-/a'], 12)], ['x:1']), {
    name: 'hello',
    tags: ['urlprefix-/a', 'urlprefix-/b'],
    createIndex: 12,
    upstreams: ['x:1'],
  });
  t.is(claimOf('hello', [], []), null);
});

test('routes: each service gets its routes, sorted by path with the exact one first; other tags are ignored', (t) => {
  const { table, droppedRoutes } = routeTable([
    claim('hello', ['urlprefix-/api/users', 'primary', 'urlprefix-=/']),
    claim('activity', ['urlprefix-/api/activity'], 20, []),
  ]);
  t.deepEqual(routes(table), { activity: ['/api/activity'], hello: ['=/', '/api/users'] });
  t.deepEqual(table.services[0].upstreams, [], 'a service with no passing instance keeps its routes (its 503)');
  t.deepEqual(droppedRoutes, []);
});

test('a conflict: the older service keeps the route, the younger one is reported; a tie goes to the smaller name', (t) => {
  const { table, droppedRoutes } = routeTable([
    claim('newer', ['urlprefix-/api/users', 'urlprefix-/api/v2'], 99),
    claim('hello', ['urlprefix-/api/users'], 10),
  ]);
  t.deepEqual(routes(table), { hello: ['/api/users'], newer: ['/api/v2'] });
  t.deepEqual(
    droppedRoutes.map((d) => `${d.service} ${d.route}`),
    ['newer /api/users'],
  );
  t.regex(droppedRoutes[0].reason, /older service hello \(CreateIndex 10, this one 99\)/);

  const tie = routeTable([claim('b', ['urlprefix-/x'], 5), claim('a', ['urlprefix-/x'], 5)]);
  t.deepEqual(routes(tie.table), { a: ['/x'] });
  t.deepEqual(
    tie.droppedRoutes.map((d) => d.service),
    ['b'],
  );
});

test('a service that lost every route is not in the table', (t) => {
  const { table } = routeTable([claim('old', ['urlprefix-/x'], 1), claim('young', ['urlprefix-/x'], 2)]);
  t.deepEqual(
    table.services.map((s) => s.name),
    ['old'],
  );
});

test('an exact and a prefix route on one path do not conflict', (t) => {
  const { table, droppedRoutes } = routeTable([claim('a', ['urlprefix-=/api'], 1), claim('b', ['urlprefix-/api'], 2)]);
  t.deepEqual(routes(table), { a: ['=/api'], b: ['/api'] });
  t.deepEqual(droppedRoutes, []);
});

// Every hostile or broken registration the issue names, and a few more: none may reach nginx's config.
const HOSTILE = [
  'urlprefix-/x;return 200',
  'urlprefix-/x }',
  'urlprefix-/x{',
  'urlprefix-/$host',
  "urlprefix-/it's",
  'urlprefix-/"q"',
  'urlprefix-/a b',
  'urlprefix-/a\nb',
  'urlprefix-/../etc',
  'urlprefix-/a/./b',
  'urlprefix-/a//b',
  'urlprefix-/%2e%2e',
  'urlprefix-/api/',
  'urlprefix-api',
  `urlprefix-/${'a'.repeat(200)}`,
  'urlprefix-/_balancer',
  'urlprefix-/_balancer/x',
  'urlprefix-=/_gateway/status',
  'urlprefix-',
];

test('hostile and broken route tags are dropped with a reason and never reach the rendered config', (t) => {
  const { table, droppedRoutes } = routeTable([claim('evil', [...HOSTILE, 'urlprefix-/ok'], 1)]);
  t.deepEqual(routes(table), { evil: ['/ok'] });
  t.is(droppedRoutes.length, HOSTILE.length);
  for (const d of droppedRoutes) t.truthy(d.reason, d.route);
  const settings: NginxSettings = { ...RENDER_SETTINGS, streamPaths: [{ path: '/events', exact: false }], accessLog: { stdout: true } };
  const text = renderNginxConfig(settings, table);
  for (const bad of [
    'x;return',
    '/$host',
    "it's",
    '"q"',
    '/a b',
    '../etc',
    '/a//b',
    '%2e',
    '/api/',
    'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  ]) {
    t.false(text.includes(bad), bad);
  }
  t.false(/location [^\n]*_balancer\/x/.test(text));
  t.false(/location [^\n]*_gateway\/status/.test(text));
  t.regex(text, /location \^~ \/ok\/ \{\n {6}proxy_pass http:\/\/svc_evil;/);
});

test('the grace keeps a served service that Consul shows empty or gone, but not a route another service now holds', (t) => {
  const hello = {
    name: 'hello',
    routes: [
      { path: '/', exact: true },
      { path: '/api', exact: false },
    ],
    upstreams: ['a:1'],
  };
  const current: GatewayTable = { services: [hello, { name: 'idle', routes: [{ path: '/idle', exact: false }], upstreams: [] }] };
  t.deepEqual(holdThroughGrace(current, { services: [] }), { table: { services: [hello] }, held: ['hello'] });
  t.deepEqual(holdThroughGrace(current, { services: [{ ...hello, upstreams: [] }] }).table, { services: [hello] });
  const back = { services: [{ ...hello, upstreams: ['b:1'] }] };
  t.deepEqual(holdThroughGrace(current, back), { table: back, held: [] }, 'replicas back: nothing held');
  const taker = { name: 'taker', routes: [{ path: '/api', exact: false }], upstreams: ['c:1'] };
  const taken = holdThroughGrace(current, { services: [taker] });
  t.deepEqual(taken.table, { services: [{ ...hello, routes: [{ path: '/', exact: true }] }, taker] });
});

test('the next index: follows Consul, never 0 again, and starts over at 0 when it goes backwards', (t) => {
  t.deepEqual(nextIndex(0, 5), { index: 5, reset: false });
  t.deepEqual(nextIndex(5, 5), { index: 5, reset: false });
  t.deepEqual(nextIndex(0, 0), { index: 1, reset: false });
  t.deepEqual(nextIndex(50, 3), { index: 0, reset: true });
  t.deepEqual(nextIndex(15, NaN), { index: 1, reset: false }, 'an answer without the header');
});

const check = (service: string, id: string, status = 'passing', node = 'n1', modifyIndex = 5): HealthCheck => ({
  Node: node,
  CheckID: `service:${id}`,
  ServiceID: id,
  ServiceName: service,
  Status: status,
  ModifyIndex: modifyIndex,
});
const serf = (node: string, status = 'passing'): HealthCheck => ({
  Node: node,
  CheckID: 'serfHealth',
  ServiceID: '',
  ServiceName: '',
  Status: status,
});

test('health changes: a check that appears, goes or changes status marks its service only', (t) => {
  const before = healthSnapshot(10, [serf('n1'), check('a', 'a1'), check('b', 'b1'), check('c', 'c1')]);
  const after = healthSnapshot(12, [serf('n1'), check('a', 'a1', 'critical'), check('c', 'c1'), check('c', 'c2'), check('d', 'd1')]);
  t.deepEqual(healthChanges(before, after), { changed: ['a', 'b', 'c', 'd'], unattributed: false });
  const same = healthSnapshot(13, [serf('n1'), check('a', 'a1', 'critical'), check('c', 'c2'), check('c', 'c1'), check('d', 'd1')]);
  t.deepEqual(healthChanges(after, same), { changed: [], unattributed: true }, 'the index moved with no check changed');
  t.deepEqual(healthChanges(same, same), { changed: [], unattributed: false }, 'a blocking query that ended with no news');
});

test("health changes: a node's own check marks the services with instances on that node, and no other", (t) => {
  const checks = (serfStatus: string) => [
    serf('n1', serfStatus),
    serf('n2'),
    check('a', 'a1', 'passing', 'n1'),
    check('b', 'b1', 'passing', 'n2'),
  ];
  t.deepEqual(healthChanges(healthSnapshot(5, checks('passing')), healthSnapshot(6, checks('critical'))), {
    changed: ['a'],
    unattributed: false,
  });
});

test('health changes: the first answer is a baseline that reads every service again; a check written again (ModifyIndex) counts', (t) => {
  const first = healthSnapshot(5, [check('a', 'a1')]);
  t.deepEqual(healthChanges(undefined, first), { changed: [], unattributed: true });
  t.deepEqual(healthChanges(first, healthSnapshot(6, [check('a', 'a1', 'passing', 'n1', 6)])), { changed: ['a'], unattributed: false });
});

test('only upstreams changed: addresses within each service, not routes, services, or a service going to or from none', (t) => {
  const svc = (name: string, upstreams: string[], path = `/${name}`) => ({ name, routes: [{ path, exact: false }], upstreams });
  const base = { services: [svc('a', ['1.1.1.1:80']), svc('b', ['2.2.2.2:80'])] };
  t.true(onlyUpstreamsChanged(base, { services: [svc('a', ['1.1.1.1:80', '1.1.1.2:80']), svc('b', ['2.2.2.3:80'])] }));
  t.false(onlyUpstreamsChanged(base, { services: [svc('a', ['1.1.1.1:80'], '/other'), svc('b', ['2.2.2.2:80'])] }), 'a route changed');
  t.false(onlyUpstreamsChanged(base, { services: [svc('a', ['1.1.1.1:80'])] }), 'a service left');
  t.false(onlyUpstreamsChanged(base, { services: [svc('a', []), svc('b', ['2.2.2.2:80'])] }), 'a service lost its last upstream (503)');
  t.false(onlyUpstreamsChanged({ services: [svc('a', []), svc('b', ['2.2.2.2:80'])] }, base), 'a service got its first upstream');
});

test("with the operator's grants, a service keeps only routes within its own: another's path, under it or exact inside it, is dropped", (t) => {
  const owners = parseRouteOwners('hello:=/,/api/users;activity:/api/activity');
  const { table, droppedRoutes } = routeTable(
    [
      // hello is the older service: without grants it would keep /api/activity too.
      claim(
        'hello',
        ['urlprefix-=/', 'urlprefix-/api/users', 'urlprefix-/api/activity', 'urlprefix-/api/activity/stream', 'urlprefix-=/api/activity/x'],
        1,
      ),
      claim('activity', ['urlprefix-/api/activity'], 5),
      claim('stranger', ['urlprefix-/x'], 7),
    ],
    owners,
  );
  t.deepEqual(routes(table), { activity: ['/api/activity'], hello: ['=/', '/api/users'] });
  t.deepEqual(
    droppedRoutes.map((d) => `${d.service} ${d.route}`),
    ['hello /api/activity', 'hello /api/activity/stream', 'hello =/api/activity/x', 'stranger /x'],
  );
  for (const d of droppedRoutes.filter((d) => d.service === 'hello')) t.regex(d.reason, /grants to activity/, d.route);
  t.regex(droppedRoutes.find((d) => d.service === 'stranger')!.reason, /grants stranger no path/);

  const open = routeTable([claim('hello', ['urlprefix-/api/activity/stream'], 1), claim('activity', ['urlprefix-/api/activity'], 5)]);
  t.deepEqual(routes(open.table), { activity: ['/api/activity'], hello: ['/api/activity/stream'] }, 'without grants tags decide');
});
