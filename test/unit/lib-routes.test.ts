import test from 'ava';
import { isReservedPath, MAX_ROUTE_PATH, parseRoutesEnv, parseRouteTag, routeTag, ROUTE_TAG_PREFIX } from '../../lib/routes';

test('prefix and exact route tags parse, and routeTag writes them back', (t) => {
  t.deepEqual(parseRouteTag('urlprefix-/api/users'), { path: '/api/users', exact: false });
  t.deepEqual(parseRouteTag('urlprefix-=/'), { path: '/', exact: true });
  t.deepEqual(parseRouteTag('urlprefix-/'), { path: '/', exact: false });
  t.deepEqual(parseRouteTag('urlprefix-/a.b/c~d/e_f-g'), { path: '/a.b/c~d/e_f-g', exact: false });
  t.is(routeTag({ path: '/api/users', exact: false }), 'urlprefix-/api/users');
  t.is(routeTag({ path: '/', exact: true }), 'urlprefix-=/');
  t.is(ROUTE_TAG_PREFIX, 'urlprefix-');
});

test('a tag without the prefix is not a route tag', (t) => {
  t.is(parseRouteTag('primary'), null);
  t.is(parseRouteTag('URLPREFIX-/x'), null);
  t.is(parseRouteTag(''), null);
});

const hostile: Array<[string, RegExp]> = [
  ['urlprefix-/x;return 200', /contains ";"/],
  ['urlprefix-/x;', /contains ";"/],
  ['urlprefix-/x{', /contains "\{"/],
  ['urlprefix-/x}', /contains "\}"/],
  ['urlprefix-/$host', /contains "\$"/],
  ["urlprefix-/it's", /contains "'"/],
  ['urlprefix-/"q"', /contains "\\""/],
  ['urlprefix-/a b', /contains " "/],
  ['urlprefix-/a\tb', /contains "\\t"/],
  ['urlprefix-/a\nb', /contains "\\n"/],
  ['urlprefix-/a%2e%2e', /contains "%"/],
  ['urlprefix-/a#b', /contains "#"/],
  ['urlprefix-/a?b', /contains "\?"/],
  ['urlprefix-/a\\b', /contains "\\\\"/],
  ['urlprefix-/api/../admin', /"\.\." segment/],
  ['urlprefix-/..', /"\.\." segment/],
  ['urlprefix-/./x', /"\." or/],
  ['urlprefix-/a//b', /empty segment/],
  ['urlprefix-//', /ends with "\/"/],
  ['urlprefix-/api/', /ends with "\/"/],
  ['urlprefix-=/api/', /ends with "\/"/],
  ['urlprefix-api', /does not start with "\/"/],
  ['urlprefix-example.com/api', /does not start with "\/"/],
  ['urlprefix-', /is empty/],
  ['urlprefix-=', /is empty/],
  ['urlprefix-==/x', /does not start with "\/"/],
  [`urlprefix-/${'a'.repeat(MAX_ROUTE_PATH)}`, /longer than 128/],
  ['urlprefix-/_balancer', /reserved/],
  ['urlprefix-/_balancer/x', /reserved/],
  ['urlprefix-=/_balancer/status', /reserved/],
  ['urlprefix-/_gateway', /reserved/],
  ['urlprefix-/_gateway/a/b', /reserved/],
  ['urlprefix-/ü', /contains "ü"/],
];

for (const [tag, reason] of hostile) {
  test(`refused: ${JSON.stringify(tag)}`, (t) => {
    const parsed = parseRouteTag(tag);
    t.truthy(parsed && 'error' in parsed, JSON.stringify(parsed));
    t.regex((parsed as { error: string }).error, reason);
  });
}

test('a path of exactly 128 characters is allowed', (t) => {
  const path = `/${'a'.repeat(MAX_ROUTE_PATH - 1)}`;
  t.deepEqual(parseRouteTag(`urlprefix-${path}`), { path, exact: false });
});

test('reserved means the path itself or under it, not a longer name', (t) => {
  t.true(isReservedPath('/_balancer'));
  t.true(isReservedPath('/_gateway/x'));
  t.false(isReservedPath('/_balancers'));
  t.deepEqual(parseRouteTag('urlprefix-/_gatewayx'), { path: '/_gatewayx', exact: false });
});

test('ROUTES: comma-separated, blanks ignored, duplicates once, empty means none', (t) => {
  t.deepEqual(parseRoutesEnv('=/,/api/users'), [
    { path: '/', exact: true },
    { path: '/api/users', exact: false },
  ]);
  t.deepEqual(parseRoutesEnv(' /a , /a ,, =/a '), [
    { path: '/a', exact: false },
    { path: '/a', exact: true },
  ]);
  t.deepEqual(parseRoutesEnv(''), []);
  t.deepEqual(parseRoutesEnv(' , '), []);
});

test('ROUTES: a bad route throws naming it', (t) => {
  t.throws(() => parseRoutesEnv('=/,/x;y'), { message: /route "\/x;y" contains ";"/ });
  t.throws(() => parseRoutesEnv('/_balancer'), { message: /reserved/ });
});
