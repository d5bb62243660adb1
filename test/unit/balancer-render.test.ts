import test from 'ava';
import { hostNamesOf, selectUpstreams, type HealthEntry, type Resolution } from '../../balancer/consul-entries';
import { ADMIN_STREAMS_PER_CLIENT, interleaveByHost, locationMatches, renderNginxConfig, type NginxSettings } from '../../balancer/render';
import type { GatewayService, GatewayTable } from '../../balancer/routing';
import { hostPort as formatHostPort } from '../../lib/endpoints';
import { parseRoutesEnv } from '../../lib/routes';
import { RENDER_SETTINGS } from '../helpers/nginx-settings';

// Every instance Consul reports carries the node's serfHealth; a checked one also carries its own check.
const checks = (id: string) => [
  { CheckID: 'serfHealth', ServiceID: '' },
  { CheckID: `service:${id}`, ServiceID: id },
];
const entry = (id: string, serviceAddress: string, port: number, nodeAddress = '10.9.9.9'): HealthEntry => ({
  Node: { Node: 'node1', Address: nodeAddress },
  Service: { ID: id, Service: 'hello', Address: serviceAddress, Port: port },
  Checks: checks(id),
});

const settings: NginxSettings = RENDER_SETTINGS;

test('no entries select no upstream', (t) => {
  t.deepEqual(selectUpstreams([]), { upstreams: [], dropped: [] });
});

test('one entry selects its service address and port', (t) => {
  t.deepEqual(selectUpstreams([entry('a', '127.0.0.1', 3000)]), { upstreams: ['127.0.0.1:3000'], dropped: [] });
});

test('many entries come out sorted, whatever order Consul used', (t) => {
  const { upstreams } = selectUpstreams([entry('c', '10.0.0.3', 80), entry('a', '10.0.0.1', 80), entry('b', '10.0.0.2', 8080)]);
  t.deepEqual(upstreams, ['10.0.0.1:80', '10.0.0.2:8080', '10.0.0.3:80']);
});

test("an empty service address falls back to the node address (Consul's rule)", (t) => {
  t.deepEqual(selectUpstreams([entry('a', '', 3000, '192.0.2.7')]).upstreams, ['192.0.2.7:3000']);
});

test('an entry with neither address is dropped and reported', (t) => {
  const result = selectUpstreams([entry('lost', '', 3000, ''), entry('ok', '127.0.0.1', 3001)]);
  t.deepEqual(result.upstreams, ['127.0.0.1:3001']);
  t.is(result.dropped.length, 1);
  t.is(result.dropped[0].id, 'lost');
  t.regex(result.dropped[0].reason, /no address/);
});

test('port 0 and missing ports are dropped and reported', (t) => {
  const noPort: HealthEntry = { Node: { Address: '127.0.0.1' }, Service: { ID: 'noport', Address: '127.0.0.1' }, Checks: checks('noport') };
  const result = selectUpstreams([entry('zero', '127.0.0.1', 0), noPort]);
  t.deepEqual(result.upstreams, []);
  t.deepEqual(
    result.dropped.map((d) => d.id),
    ['zero', 'noport'],
  );
  t.regex(result.dropped[0].reason, /port 0/);
});

test('an instance without a health check of its own is dropped and reported, whatever its node checks say', (t) => {
  const serfOnly: HealthEntry = { ...entry('serf-only', '127.0.0.1', 3001), Checks: [{ CheckID: 'serfHealth', ServiceID: '' }] };
  const none: HealthEntry = { ...entry('none', '127.0.0.1', 3002), Checks: [] };
  const missing: HealthEntry = { Node: { Address: '127.0.0.1' }, Service: { ID: 'missing', Address: '127.0.0.1', Port: 3003 } };
  const othersCheck: HealthEntry = { ...entry('borrowed', '127.0.0.1', 3004), Checks: checks('someone-else') };
  const result = selectUpstreams([serfOnly, none, missing, othersCheck, entry('checked', '127.0.0.1', 3000)]);
  t.deepEqual(result.upstreams, ['127.0.0.1:3000']);
  t.deepEqual(
    result.dropped.map((d) => d.id),
    ['serf-only', 'none', 'missing', 'borrowed'],
  );
  for (const d of result.dropped) t.regex(d.reason, /no health check of its own/);
  t.deepEqual(hostNamesOf([{ ...entry('n', 'unchecked.example', 80), Checks: [] }]), [], 'an unchecked name is not even looked up');
});

test('IPv6 addresses are bracketed, also when Consul already bracketed them', (t) => {
  const result = selectUpstreams([entry('a', '::1', 3000), entry('b', '[fd00::2]', 3001), entry('c', '', 3002, '2001:db8::5')]);
  t.deepEqual(result.upstreams, ['[2001:db8::5]:3002', '[::1]:3000', '[fd00::2]:3001']);
  t.is(formatHostPort('::1', 80), '[::1]:80');
  t.is(formatHostPort('127.0.0.1', 80), '127.0.0.1:80');
});

test('duplicates render once and are reported', (t) => {
  const result = selectUpstreams([entry('a', '127.0.0.1', 3000), entry('a2', '127.0.0.1', 3000), entry('b', '', 3000, '127.0.0.1')]);
  t.deepEqual(result.upstreams, ['127.0.0.1:3000']);
  t.deepEqual(
    result.dropped.map((d) => d.id),
    ['a2', 'b'],
  );
});

test('host names are rendered as the addresses they resolved to; addresses that could inject nginx syntax are dropped', (t) => {
  const resolved = new Map<string, Resolution>([['replica-1.internal', { addresses: ['10.0.0.5'] }]]);
  const result = selectUpstreams([entry('h', 'Replica-1.Internal', 3000), entry('evil', '1.2.3.4; include /etc/passwd', 3000)], resolved);
  t.deepEqual(result, {
    upstreams: ['10.0.0.5:3000'],
    dropped: [{ id: 'evil', reason: 'address "1.2.3.4; include /etc/passwd" is neither an IP literal nor a host name' }],
  });
});

test('a host name that does not resolve, or was not looked up, is dropped with the reason; the rest stays', (t) => {
  const resolved = new Map<string, Resolution>([['does-not-exist.invalid', { error: 'ENOTFOUND' }]]);
  const result = selectUpstreams(
    [entry('bad', 'does-not-exist.invalid', 8080), entry('unasked', 'other.internal', 8080), entry('ok', '127.0.0.1', 3000)],
    resolved,
  );
  t.deepEqual(result, {
    upstreams: ['127.0.0.1:3000'],
    dropped: [
      { id: 'bad', reason: 'host name does-not-exist.invalid does not resolve: ENOTFOUND' },
      { id: 'unasked', reason: 'host name other.internal does not resolve: it was not looked up' },
    ],
  });
});

test("an IPv6 zone id is dropped with the reason, as an address and among a name's addresses", (t) => {
  const resolved = new Map<string, Resolution>([
    ['link.internal', { addresses: ['fe80::1%eth0'] }],
    ['mixed.internal', { addresses: ['fe80::2%eth0', '10.0.0.6'] }],
  ]);
  const result = selectUpstreams(
    [
      entry('zone', 'fe80::1%lo', 8080),
      entry('zone2', '[fe80::1%25lo]', 8080),
      entry('link', 'link.internal', 80),
      entry('mixed', 'mixed.internal', 80),
    ],
    resolved,
  );
  t.deepEqual(result, {
    upstreams: ['10.0.0.6:80'],
    dropped: [
      { id: 'zone', reason: 'address "fe80::1%lo" carries an IPv6 zone id, which nginx cannot load as an upstream' },
      { id: 'zone2', reason: 'address "fe80::1%25lo" carries an IPv6 zone id, which nginx cannot load as an upstream' },
      {
        id: 'link',
        reason:
          'host name link.internal resolves to nothing nginx can load: fe80::1%eth0 carries an IPv6 zone id, which nginx cannot load as an upstream',
      },
    ],
  });
});

test('a name resolving to several addresses renders each; one already present counts as a duplicate', (t) => {
  const resolved = new Map<string, Resolution>([
    ['pool.internal', { addresses: ['10.0.0.2', '2001:DB8::2', '10.0.0.1'] }],
    ['same.internal', { addresses: ['10.0.0.1'] }],
  ]);
  const result = selectUpstreams([entry('pool', 'pool.internal', 80), entry('same', 'same.internal', 80)], resolved);
  t.deepEqual(result, {
    upstreams: ['10.0.0.1:80', '10.0.0.2:80', '[2001:db8::2]:80'],
    dropped: [{ id: 'same', reason: 'duplicate of 10.0.0.1:80' }],
  });
});

test('hostNamesOf lists each valid host name once, lower-cased and sorted; IP literals and bad entries are not names', (t) => {
  const names = hostNamesOf([
    entry('a', 'B.internal', 80),
    entry('b', 'a.internal', 80),
    entry('c', 'b.internal', 81),
    entry('d', '10.0.0.1', 80),
    entry('e', '::1', 80),
    entry('f', 'x.internal', 0),
    entry('g', 'bad name', 80),
    entry('h', '', 80, 'node.internal'),
  ]);
  t.deepEqual(names, ['a.internal', 'b.internal', 'node.internal']);
});

test('entries missing Service or Node objects do not throw', (t) => {
  const result = selectUpstreams([{}, { Service: null, Node: null }]);
  t.deepEqual(result.upstreams, []);
  t.is(result.dropped.length, 2);
});

/** A routed service; routes as in ROUTES (`=/,/api/users`). */
const svc = (name: string, routes: string, upstreams: string[]): GatewayService => ({ name, routes: parseRoutesEnv(routes), upstreams });
/** hello as it registers by default, with these upstreams. */
const hello = (upstreams: string[]): GatewayTable => ({ services: [svc('hello', '=/,/api/users', upstreams)] });
const EMPTY: GatewayTable = { services: [] };

/** Each `location` block of a server block: its match and its body. */
function locations(block: string): Array<{ match: string; body: string }> {
  return [...block.matchAll(/\n {4}location (.+?) \{\n([\s\S]*?)\n {4}\}/g)].map((m) => ({ match: m[1], body: m[2] }));
}

const jsonOf = (body: string, code: number) => JSON.parse(new RegExp(`return ${code} '(.*)';`).exec(body)![1]) as Record<string, string>;

test('a service with no passing instance gets its JSON 503 on its routes only, and no upstream block', (t) => {
  const text = renderNginxConfig(settings, { services: [svc('hello', '=/', []), svc('activity', '/api/activity', ['127.0.0.1:4000'])] });
  t.false(text.includes('upstream svc_hello'));
  t.true(text.includes('upstream svc_activity {'));
  const pub = locations(serverBlock(text, '127.0.0.1:8080'));
  const root = pub.find((l) => l.match === '= /')!;
  t.like(jsonOf(root.body, 503), { error: 'service unavailable', service: 'hello' });
  t.true(root.body.includes('add_header Retry-After 1 always;'));
  t.true(root.body.includes('default_type application/json;'));
  t.true(pub.find((l) => l.match === '^~ /api/activity/')!.body.includes('proxy_pass http://svc_activity;'));
  t.like(jsonOf(pub.find((l) => l.match === '/')!.body, 404), { error: 'not found' });
});

test('one upstream block per service, with a server line each, keepalive, retries and the upstream header on the admin side', (t) => {
  const text = renderNginxConfig(settings, {
    services: [svc('activity', '/api/activity', ['127.0.0.1:4000']), svc('hello', '=/,/api/users', ['127.0.0.1:3000', '[::1]:3001'])],
  });
  const block = /upstream svc_hello \{([\s\S]*?)\n {2}\}/.exec(text)![1];
  t.deepEqual(
    block
      .split('\n')
      .filter((l) => l.trim().startsWith('server '))
      .map((l) => l.trim()),
    ['server 127.0.0.1:3000 max_fails=1 fail_timeout=2s;', 'server [::1]:3001 max_fails=1 fail_timeout=2s;'],
  );
  t.regex(text, /upstream svc_activity \{\n {4}server 127\.0\.0\.1:4000 max_fails=1 fail_timeout=2s;\n {4}keepalive 32;/);
  for (const directive of [
    'keepalive 32;',
    'proxy_http_version 1.1;',
    'proxy_set_header Connection "";',
    'proxy_next_upstream error timeout;',
    'proxy_next_upstream_tries 0;',
    'proxy_connect_timeout 500ms;',
    'proxy_read_timeout 30s;',
    'client_max_body_size 1m;',
  ]) {
    t.true(text.includes(directive), directive);
  }
  // Retrying non-idempotent requests must stay off; nothing turns off nginx's X-Accel-Buffering (SSE).
  t.false(text.includes('non_idempotent'));
  t.false(text.includes('proxy_ignore_headers'));
  t.false(text.includes('return 503'));
  const admin = locations(serverBlock(text, '127.0.0.1:8081'));
  for (const match of ['= /', '= /api/users', '^~ /api/users/', '= /api/activity', '^~ /api/activity/']) {
    const location = admin.find((l) => l.match === match);
    t.truthy(location, `admin routes ${match} as the public listener does`);
    t.true(location!.body.includes('add_header X-Upstream-Addr $upstream_addr always;'), match);
  }
  t.regex(
    text,
    /location @svc_hello_bad_gateway \{[^}]*return 502 '\{"error":"bad gateway","detail":"no instance of hello answered","service":"hello"\}';/,
  );
  t.regex(text, /location @svc_activity_gateway_timeout \{[^}]*return 504 /);
});

test('routes: exact is `location =`, a prefix is the path and whole segments under it, `/` is the catch-all', (t) => {
  const none = new Set<string>();
  t.deepEqual(locationMatches({ path: '/', exact: true }, none), ['= /']);
  t.deepEqual(locationMatches({ path: '/api/users', exact: false }, none), ['= /api/users', '^~ /api/users/']);
  t.deepEqual(locationMatches({ path: '/', exact: false }, none), ['/']);
  t.deepEqual(
    locationMatches({ path: '/api', exact: false }, new Set(['/api'])),
    ['^~ /api/'],
    'an exact route on the same path takes the path',
  );
});

test('the gateway answers unknown paths with a JSON 404, unless a service holds the prefix /', (t) => {
  const pub = locations(serverBlock(renderNginxConfig(settings, hello(['127.0.0.1:3000'])), '127.0.0.1:8080'));
  t.deepEqual(
    pub.filter((l) => !l.match.startsWith('@') && !l.match.includes('_balancer') && !l.match.includes('_gateway')).map((l) => l.match),
    ['= /', '= /api/users', '^~ /api/users/', '/'],
  );
  t.like(jsonOf(pub.find((l) => l.match === '/')!.body, 404), { error: 'not found', detail: 'no service is routed at this path' });
  const catchAll = locations(
    serverBlock(renderNginxConfig(settings, { services: [svc('web', '/', ['127.0.0.1:3000'])] }), '127.0.0.1:8080'),
  );
  const root = catchAll.filter((l) => l.match === '/');
  t.is(root.length, 1, 'one location / only');
  t.true(root[0].body.includes('proxy_pass http://svc_web;'));
});

test('one path claimed exactly by one service and as a prefix by another renders each location once', (t) => {
  const text = renderNginxConfig(settings, { services: [svc('a', '=/api', ['127.0.0.1:1']), svc('b', '/api', ['127.0.0.1:2'])] });
  const pub = locations(serverBlock(text, '127.0.0.1:8080'));
  const matches = pub.map((l) => l.match);
  t.is(new Set(matches).size, matches.length, `no duplicate location: ${matches.join(' | ')}`);
  t.true(pub.find((l) => l.match === '= /api')!.body.includes('svc_a'));
  t.true(pub.find((l) => l.match === '^~ /api/')!.body.includes('svc_b'));
});

test('no table: every path is the JSON 404, and no upstream block', (t) => {
  const text = renderNginxConfig(settings, EMPTY);
  t.false(text.includes('upstream '));
  t.false(text.includes('proxy_pass http://svc_'));
  t.like(jsonOf(locations(serverBlock(text, '127.0.0.1:8080')).find((l) => l.match === '/')!.body, 404), { error: 'not found' });
});

test('paths, listen address, status and access-log ports come from the settings', (t) => {
  const text = renderNginxConfig({ ...settings, listenAddress: '::1', listenPort: 9090, workDir: '/w/' }, EMPTY);
  t.true(text.includes('listen [::1]:9090;'));
  t.true(text.includes('pid /w/nginx.pid;'));
  t.true(text.includes('client_body_temp_path /w/temp/client_body;'));
  t.true(text.includes('proxy_pass http://127.0.0.1:4001;'));
  t.true(text.includes('access_log syslog:server=127.0.0.1:4002,'));
  t.true(text.includes('worker_processes 1;'));
  const direct = renderNginxConfig({ ...settings, accessLog: { stdout: true }, workerProcesses: 2 }, EMPTY);
  t.true(direct.includes('access_log /dev/stdout json_lines;'));
  t.true(direct.includes('worker_processes 2;'));
  t.false(direct.includes('syslog:'));
  t.true(text.includes('daemon off;'));
  t.true(text.includes('error_log stderr warn;'));
});

test('REUSE_PORT puts reuseport on both TCP listeners; the admin listener also has its Unix socket in the work dir', (t) => {
  const shared = renderNginxConfig({ ...settings, reusePort: true, workDir: '/w/' }, EMPTY);
  t.true(shared.includes('    listen 127.0.0.1:8080 reuseport;\n'));
  t.true(shared.includes('    listen 127.0.0.1:8081 reuseport;\n'));
  const alone = renderNginxConfig(settings, EMPTY);
  t.false(alone.includes('reuseport'));
  // The reload check and the health check ask this socket: it belongs to this balancer alone.
  const admin = serverBlock(shared, '127.0.0.1:8081 reuseport');
  t.true(admin.includes('\n    listen unix:/w/admin.sock;\n'));
  t.false(serverBlock(shared, '127.0.0.1:8080 reuseport').includes('unix:'));
});

test('the config generation is served for the watcher to confirm a reload', (t) => {
  t.regex(renderNginxConfig(settings, hello(['127.0.0.1:3000']), 42), /location = \/_balancer\/generation \{[^}]*return 200 "42";/);
  t.regex(renderNginxConfig(settings, EMPTY), /return 200 "0";/);
});

test('a user directive is rendered only when a worker user is given (nginx started as root)', (t) => {
  t.false(/^user /m.test(renderNginxConfig(settings, EMPTY)));
  t.true(
    renderNginxConfig({ ...settings, workerUser: { user: 'www-data', group: 'www-data' } }, EMPTY).includes('user www-data www-data;'),
  );
});

test('the access log format is JSON with the fields an operator needs', (t) => {
  const text = renderNginxConfig(settings, EMPTY);
  const format = /log_format json_lines escape=json '(.*)';/.exec(text)![1];
  // Fill nginx variables with plausible values: the result must parse as JSON.
  const sample = format.replace(/\$(status|body_bytes_sent|request_time)\b/g, '1').replace(/\$[a-z_0-9]+/g, 'x');
  t.like(JSON.parse(sample), { source: 'nginx', msg: 'request', status: 1, upstream: 'x' });
});

test('rendering is pure: same table, same text; resolved names reach it as addresses, never as the name', (t) => {
  const resolved = new Map<string, Resolution>([['replica-1.internal', { addresses: ['10.0.0.5'] }]]);
  const { upstreams, dropped } = selectUpstreams(
    [entry('h', 'replica-1.internal', 3000), entry('bad', 'does-not-exist.invalid', 3000)],
    resolved,
  );
  t.deepEqual(upstreams, ['10.0.0.5:3000']);
  t.deepEqual(
    dropped.map((d) => d.id),
    ['bad'],
  );
  const text = renderNginxConfig(settings, hello(upstreams));
  t.is(text, renderNginxConfig(settings, hello([...upstreams])));
  t.true(text.includes('    server 10.0.0.5:3000 max_fails=1 fail_timeout=2s;\n'));
  t.false(text.includes('internal'));
  t.false(text.includes('invalid'));
});

/** The text of the server block that listens on `listen`. */
function serverBlock(text: string, listen: string): string {
  const blocks = text.split(/\n {2}server \{/).slice(1);
  const block = blocks.find((b) => b.includes(`\n    listen ${listen};`));
  if (!block) throw new Error(`no server listens on ${listen}`);
  return block;
}

for (const upstreams of [['127.0.0.1:3000'], []]) {
  test(`the public listener shows neither the status nor the upstream; the admin listener does (${upstreams.length} upstreams)`, (t) => {
    const text = renderNginxConfig(settings, hello(upstreams), 7);
    const pub = serverBlock(text, '127.0.0.1:8080');
    const admin = serverBlock(text, '127.0.0.1:8081');
    t.false(pub.includes('X-Upstream-Addr'));
    t.false(pub.includes(`proxy_pass http://127.0.0.1:${settings.statusPort}`));
    for (const reserved of ['= /_balancer', '^~ /_balancer/', '= /_gateway', '^~ /_gateway/']) {
      const location = locations(pub).find((l) => l.match === reserved);
      t.like(jsonOf(location!.body, 404), { error: 'not found' }, reserved);
    }
    t.true(admin.includes('location = /_balancer/status {'));
    t.true(admin.includes(`proxy_pass http://127.0.0.1:${settings.statusPort};`));
    t.regex(admin, /location = \/_balancer\/generation \{[^}]*return 200 "7";/);
    t.is(admin.includes('add_header X-Upstream-Addr $upstream_addr always;'), upstreams.length > 0);
    t.is(pub.includes('proxy_pass http://svc_hello;'), upstreams.length > 0);
  });
}

test('the public listener limits requests in flight per client address with a JSON 429; the admin one does not', (t) => {
  const text = renderNginxConfig(
    { ...settings, connLimitPerClient: 37 },
    { services: [svc('hello', '=/,/api/users', ['127.0.0.1:3000']), svc('idle', '/idle', [])] },
  );
  t.true(text.includes('limit_conn_zone $binary_remote_addr zone=per_client:1m;'));
  t.true(text.includes('limit_conn_status 429;'));
  const pub = serverBlock(text, '127.0.0.1:8080');
  t.true(pub.includes('limit_conn per_client 37;'));
  t.false(serverBlock(text, '127.0.0.1:8081').includes('limit_conn per_client'));
  // error_page is inherited only by locations that set none, so every public location names the 429 itself.
  for (const location of pub
    .split('    location ')
    .slice(1)
    .filter((l) => !l.startsWith('@'))) {
    t.true(location.includes('error_page 429 = @too_many;'), location.split('\n')[0]);
  }
  const tooMany = /location @too_many \{[^}]*return 429 '(.*)';/.exec(pub);
  t.like(JSON.parse(tooMany![1]), { error: 'too many requests' });
});

test('the public listener limits requests per second per client address (limit_req, 429, Retry-After); 0 turns it off', (t) => {
  const text = renderNginxConfig({ ...settings, rateLimitPerClient: 50, rateBurstPerClient: 80 }, hello(['127.0.0.1:3000']));
  t.true(text.includes('limit_req_zone $binary_remote_addr zone=rate_per_client:10m rate=50r/s;'));
  t.true(text.includes('limit_req_status 429;'));
  t.true(serverBlock(text, '127.0.0.1:8080').includes('limit_req zone=rate_per_client burst=80 nodelay;'));
  t.false(serverBlock(text, '127.0.0.1:8081').includes('limit_req '));
  t.regex(serverBlock(text, '127.0.0.1:8080'), /location @too_many \{[^}]*add_header Retry-After 1 always;[^}]*return 429 /);
  const off = renderNginxConfig({ ...settings, rateLimitPerClient: 0 }, hello(['127.0.0.1:3000']));
  t.false(off.includes('limit_req'));
});

test('connection slots and timeouts are sized for a slow-header flood', (t) => {
  const text = renderNginxConfig(settings, EMPTY);
  for (const directive of [
    'worker_connections 4096;',
    'worker_rlimit_nofile 8256;',
    'client_header_timeout 5s;',
    'client_body_timeout 10s;',
    'send_timeout 10s;',
    'keepalive_timeout 15s;',
    'reset_timedout_connection on;',
  ]) {
    t.true(text.includes(directive), directive);
  }
});

test('upstreams are rendered with hosts taking turns, so a retry after a failed one goes to another host', (t) => {
  const vm2 = ['10.0.0.12:21001', '10.0.0.12:21003', '10.0.0.12:21005'];
  const vm3 = ['10.0.0.13:21002', '10.0.0.13:21004', '10.0.0.13:21006'];
  t.deepEqual(interleaveByHost([...vm3, ...vm2].reverse()), [vm2[0], vm3[0], vm2[1], vm3[1], vm2[2], vm3[2]]);
  t.deepEqual(interleaveByHost(['[fd00::2]:80', '[fd00::1]:81', '[fd00::1]:80']), ['[fd00::1]:80', '[fd00::2]:80', '[fd00::1]:81']);
  t.deepEqual(interleaveByHost(['127.0.0.1:2', '127.0.0.1:1']), ['127.0.0.1:1', '127.0.0.1:2'], 'one host: sorted');
  t.deepEqual(interleaveByHost([]), []);
  const config = renderNginxConfig(settings, hello([...vm2, ...vm3]));
  const servers = [...config.matchAll(/^ {4}server (\S+) /gm)].map((m) => m[1]);
  t.deepEqual(servers, interleaveByHost([...vm2, ...vm3]));
});

test("nginx's own answers never take a type from the path's extension", (t) => {
  t.regex(renderNginxConfig(settings, EMPTY), /\n {2}types \{ \}\n/);
});

test('stream paths: their open requests are counted per client address apart; the evidence page streams per address too', (t) => {
  const text = renderNginxConfig(
    {
      ...settings,
      streamLimitPerClient: 7,
      streamPaths: [
        { path: '/api/activity/stream', exact: false },
        { path: '/v1.0/feed', exact: true },
      ],
    },
    hello(['127.0.0.1:3000']),
  );
  const map = /map \$uri \$stream_client \{\n([^}]*)\}/.exec(text)![1];
  t.deepEqual(
    map
      .trim()
      .split('\n')
      .map((l) => l.trim()),
    [
      'default "";',
      '/api/activity/stream $binary_remote_addr;',
      '"~^/api/activity/stream/" $binary_remote_addr;',
      '/v1.0/feed $binary_remote_addr;',
    ],
    'a prefix route and everything under it (whole segments), an exact one alone',
  );
  t.true(text.includes('limit_conn_zone $stream_client zone=streams_per_client:1m;'));
  t.true(serverBlock(text, '127.0.0.1:8080').includes('limit_conn streams_per_client 7;'));
  const escaped = renderNginxConfig({ ...settings, streamPaths: [{ path: '/v1.0', exact: false }] }, hello([]));
  t.true(escaped.includes('"~^/v1\\.0/" $binary_remote_addr;'), 'a dot matches only a dot');

  const admin = serverBlock(text, '127.0.0.1:8081');
  for (const path of ['/_balancer/events', '/_balancer/activity']) {
    const location = admin.split(`location = ${path} {`)[1].split('    }')[0];
    t.true(location.includes(`limit_conn admin_streams_per_client ${ADMIN_STREAMS_PER_CLIENT};`), path);
    t.true(location.includes('error_page 429 = @too_many;'), path);
  }
  t.true(admin.includes('location @too_many {'));
});

test('with the admin login, the admin port is a front that asks the watcher first and passes every request to the admin server on its socket', (t) => {
  const text = renderNginxConfig({ ...settings, adminLogin: true }, hello(['127.0.0.1:3000']));
  const front = serverBlock(text, '127.0.0.1:8081');
  t.regex(front, /^\n {4}listen 127\.0\.0\.1:8081;\n {4}auth_request \/_balancer\/auth;\n {4}error_page 401 = @admin_unauthorized;\n/);
  const byMatch = new Map(locations(front).map((l) => [l.match, l.body]));
  t.deepEqual(
    [...byMatch.keys()],
    ['/', '= /_balancer/evidence', '= /_balancer/login', '= /_balancer/auth', '@admin_unauthorized', '@admin_login'],
  );
  // Every path but the login form goes to the admin server, with no return ahead of the check (a return
  // would answer before auth_request runs) and without the token.
  for (const match of ['/', '= /_balancer/evidence']) {
    t.true(byMatch.get(match)!.includes('proxy_pass http://unix:/tmp/work/admin.sock:;'), match);
    t.true(byMatch.get(match)!.includes('proxy_set_header Authorization "";'), match);
  }
  t.false(
    /\n {6}return /.test(
      [...byMatch]
        .filter(([m]) => !m.startsWith('@'))
        .map(([, b]) => b)
        .join('\n'),
    ),
  );
  t.true(byMatch.get('= /_balancer/evidence')!.includes('error_page 401 = @admin_login;'));
  t.true(byMatch.get('= /_balancer/login')!.includes('auth_request off;'));
  t.true(byMatch.get('= /_balancer/auth')!.includes('internal;'));
  t.like(jsonOf(byMatch.get('@admin_unauthorized')!, 401), { error: 'unauthorized', login: '/_balancer/login' });
  // The admin server itself no longer listens on TCP; it counts streams per the client the front names.
  const admin = text.split(/\n {2}server \{/).find((b) => b.includes('location = /_balancer/status {'))!;
  t.false(/listen 127\.0\.0\.1:8081/.test(admin));
  t.true(admin.includes('listen unix:/tmp/work/admin.sock;'));
  t.true(admin.includes('set_real_ip_from unix:;'));
  t.true(admin.includes('limit_conn admin_streams_per_client'));
  // Without it the admin port is the admin server, as before.
  const open = renderNginxConfig(settings, hello(['127.0.0.1:3000']));
  t.false(open.includes('auth_request'));
  t.true(serverBlock(open, '127.0.0.1:8081').includes('location = /_balancer/status {'));
});
