import test from 'ava';
import { ownerOf, ownershipProblem, parseRouteOwners, routeOwnersText } from '../../lib/route-owners';
import { parseRouteText, type Route } from '../../lib/routes';

const route = (text: string): Route => parseRouteText(text) as Route;
const owners = parseRouteOwners('hello:=/,/api/users;activity:/api/activity;admin:=/api/users/admin;site:/');
const owner = (text: string) => ownerOf(owners, route(text))?.service;

test('a route belongs to the service whose grant covers it most specifically, as nginx would pick', (t) => {
  t.is(owner('=/'), 'hello', 'the exact grant beats the catch-all on its own path');
  t.is(owner('/'), 'site', 'a prefix route on / is only under the catch-all');
  t.is(owner('/api/users'), 'hello');
  t.is(owner('/api/users/42'), 'hello', 'under a prefix grant');
  t.is(owner('=/api/users/42'), 'hello', 'exact inside a prefix grant');
  t.is(owner('=/api/users/admin'), 'admin', 'an exact grant inside another service’s prefix');
  t.is(owner('/api/users/admin'), 'hello', 'an exact grant covers no prefix route');
  t.is(owner('/api/activity/stream'), 'activity');
  t.is(owner('/api/activityX'), 'site', 'whole segments only: /api/activityX is not under /api/activity');
  t.is(ownerOf(parseRouteOwners('hello:=/,/api/users'), route('/nope')), undefined);
});

test('a service may serve routes within its own grants only; otherwise the reason names the owner or its grants', (t) => {
  const grants = parseRouteOwners('hello:=/,/api/users;activity:/api/activity');
  t.is(ownershipProblem(grants, 'activity', route('/api/activity')), null);
  t.is(ownershipProblem(grants, 'activity', route('/api/activity/stream')), null);
  t.is(ownershipProblem(grants, 'hello', route('/api/users/deep')), null);
  for (const text of ['/api/activity', '/api/activity/stream', '=/api/activity/stream'])
    t.regex(ownershipProblem(grants, 'hello', route(text)) ?? '', /within \/api\/activity, which the operator grants to activity/, text);
  t.regex(ownershipProblem(grants, 'hello', route('/')) ?? '', /outside what the operator grants hello \(ROUTE_OWNERS: =\/,\/api\/users\)/);
  t.regex(ownershipProblem(grants, 'hello', route('/api')) ?? '', /outside/);
  t.regex(ownershipProblem(grants, 'newer', route('/x')) ?? '', /grants newer no path/);
});

test('routeOwnersText writes what a deploy passes the balancer, checked and canonical', (t) => {
  t.is(routeOwnersText({ hello: ' =/ , /api/users', activity: '/api/activity' }), 'hello:=/,/api/users;activity:/api/activity');
  t.is(routeOwnersText({ hello: '=/', quiet: '' }), 'hello:=/;quiet:', 'a service may be granted nothing');
  t.throws(() => routeOwnersText({ hello: '/api', activity: '/api' }), { message: /granted to both hello and activity/ });
  t.throws(() => routeOwnersText({ hello: '/a b' }), { message: /contains " "/ });
});
