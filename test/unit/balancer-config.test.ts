import test from 'ava';
import { parseConfig, readAdminToken } from '../../balancer/config';
import { ConfigError } from '../../lib/config-error';

test('defaults work for a developer on loopback', (t) => {
  const config = parseConfig({});
  t.deepEqual(config, {
    consul: { host: '127.0.0.1', port: 8500, secure: false, url: 'http://127.0.0.1:8500' },
    consulToken: undefined,
    listenAddress: '127.0.0.1',
    listenPort: 8080,
    tls: undefined,
    upstreamCaFile: undefined,
    adminTls: undefined,
    adminAddress: '127.0.0.1',
    adminPort: 8081,
    reusePort: false,
    connLimitPerClient: 100,
    rateLimitPerClient: 1000,
    rateBurstPerClient: 2000,
    streamPaths: [{ path: '/api/activity/stream', exact: false }],
    streamLimitPerClient: 16,
    adminToken: undefined,
    routeOwners: undefined,
    nginxBin: 'nginx',
    workDir: undefined,
    emptyGraceMs: 10_000,
  });
});

test('every variable is read', (t) => {
  const config = parseConfig({
    CONSUL_HTTP_ADDR: 'https://consul.internal:8501',
    LISTEN_ADDRESS: '::',
    LISTEN_PORT: '9000',
    ADMIN_ADDRESS: '10.0.0.5',
    ADMIN_PORT: '9001',
    REUSE_PORT: 'true',
    CONN_LIMIT_PER_CLIENT: '20',
    RATE_LIMIT_PER_CLIENT: '50',
    RATE_BURST_PER_CLIENT: '10',
    STREAM_PATHS: '/events,=/api/feed',
    STREAM_LIMIT_PER_CLIENT: '4',
    ROUTE_OWNERS: 'hello:=/,/api/users; activity:/api/activity',
    NGINX_BIN: '/usr/sbin/nginx',
    WORK_DIR: '/run/balancer',
    EMPTY_GRACE_MS: '2500',
    CONSUL_HTTP_TOKEN: '0d9db986-0adb-4d4c-a2df-09081559dc58',
  });
  t.is(config.consulToken, '0d9db986-0adb-4d4c-a2df-09081559dc58');
  t.deepEqual(config.consul, { host: 'consul.internal', port: 8501, secure: true, url: 'https://consul.internal:8501' });
  t.is(config.listenAddress, '::');
  t.is(config.listenPort, 9000);
  t.is(config.adminAddress, '10.0.0.5');
  t.is(config.adminPort, 9001);
  t.true(config.reusePort);
  t.is(config.connLimitPerClient, 20);
  t.is(config.rateLimitPerClient, 50);
  t.is(config.rateBurstPerClient, 10);
  t.deepEqual(config.streamPaths, [
    { path: '/events', exact: false },
    { path: '/api/feed', exact: true },
  ]);
  t.is(config.streamLimitPerClient, 4);
  t.deepEqual(
    config.routeOwners,
    new Map([
      [
        'hello',
        [
          { path: '/', exact: true },
          { path: '/api/users', exact: false },
        ],
      ],
      ['activity', [{ path: '/api/activity', exact: false }]],
    ]),
  );
  t.is(config.nginxBin, '/usr/sbin/nginx');
  t.is(config.workDir, '/run/balancer');
  t.is(config.emptyGraceMs, 2500);
});

test("CONSUL_HTTP_ADDR without a scheme means http, like Consul's CLI; IPv6 hosts lose their brackets", (t) => {
  t.deepEqual(parseConfig({ CONSUL_HTTP_ADDR: 'consul:8500' }).consul, {
    host: 'consul',
    port: 8500,
    secure: false,
    url: 'http://consul:8500',
  });
  t.is(parseConfig({ CONSUL_HTTP_ADDR: 'http://[::1]:8500' }).consul.host, '::1');
});

test('an empty or blank variable means the default, as if it were unset', (t) => {
  const blank = {
    RATE_LIMIT_PER_CLIENT: ' ',
    LISTEN_ADDRESS: ' ',
    LISTEN_PORT: '',
    CONSUL_HTTP_ADDR: '',
    WORK_DIR: ' ',
    EMPTY_GRACE_MS: '',
  };
  t.deepEqual(parseConfig(blank), parseConfig({}));
});

const rejects = (env: NodeJS.ProcessEnv, variable: string, allowed: RegExp) =>
  test(`rejects ${JSON.stringify(env)} naming ${variable}`, (t) => {
    const error = t.throws(() => parseConfig(env), { instanceOf: ConfigError });
    t.true(error.message.startsWith(`${variable} = `), error.message);
    t.regex(error.message, allowed);
  });

rejects({ LISTEN_PORT: '0' }, 'LISTEN_PORT', /1 to 65535/);
rejects({ LISTEN_PORT: '70000' }, 'LISTEN_PORT', /1 to 65535/);
rejects({ LISTEN_PORT: '80a' }, 'LISTEN_PORT', /whole number/);
rejects({ EMPTY_GRACE_MS: '-5' }, 'EMPTY_GRACE_MS', /whole number/);
rejects({ LISTEN_ADDRESS: 'localhost' }, 'LISTEN_ADDRESS', /IPv4 or IPv6/);
rejects({ RATE_LIMIT_PER_CLIENT: '-1' }, 'RATE_LIMIT_PER_CLIENT', /whole number from 0/);
rejects({ RATE_LIMIT_PER_CLIENT: '2.5' }, 'RATE_LIMIT_PER_CLIENT', /whole number from 0/);
rejects({ RATE_BURST_PER_CLIENT: 'lots' }, 'RATE_BURST_PER_CLIENT', /whole number from 0/);
rejects({ CONSUL_HTTP_ADDR: 'ftp://consul:21' }, 'CONSUL_HTTP_ADDR', /host:port/);
rejects({ CONSUL_HTTP_ADDR: 'http://consul:8500/v1' }, 'CONSUL_HTTP_ADDR', /host:port/);
rejects({ WORK_DIR: 'relative/dir' }, 'WORK_DIR', /absolute path/);
rejects({ ADMIN_ADDRESS: 'admin.local' }, 'ADMIN_ADDRESS', /IPv4 or IPv6/);
rejects({ ADMIN_PORT: '0' }, 'ADMIN_PORT', /1 to 65535/);
rejects({ LISTEN_PORT: '9000', ADMIN_PORT: '9000' }, 'ADMIN_PORT', /other than LISTEN_PORT \(9000\)/);
rejects({ REUSE_PORT: 'yes' }, 'REUSE_PORT', /true or false/);
rejects({ CONN_LIMIT_PER_CLIENT: '0' }, 'CONN_LIMIT_PER_CLIENT', /1 to 100000/);
rejects({ STREAM_LIMIT_PER_CLIENT: '0' }, 'STREAM_LIMIT_PER_CLIENT', /1 to 100000/);
rejects({ STREAM_PATHS: '/api/x;y' }, 'STREAM_PATHS', /comma-separated routes.*contains ";"/);
rejects({ ROUTE_OWNERS: 'hello' }, 'ROUTE_OWNERS', /SERVICE:ROUTES.*does not start with a service name/);
rejects({ ROUTE_OWNERS: 'Hello:/x' }, 'ROUTE_OWNERS', /does not start with a service name/);
rejects({ ROUTE_OWNERS: 'hello:/x;hello:/y' }, 'ROUTE_OWNERS', /hello is named twice/);
rejects({ ROUTE_OWNERS: 'hello:/api;activity:/api' }, 'ROUTE_OWNERS', /route \/api is granted to both hello and activity/);
rejects({ ROUTE_OWNERS: 'hello:/_balancer' }, 'ROUTE_OWNERS', /reserved/);
rejects({ ROUTE_OWNERS: ';' }, 'ROUTE_OWNERS', /no service is granted a route/);

test('the rate limit: 0 turns it off; the burst defaults to twice the rate', (t) => {
  t.like(parseConfig({ RATE_LIMIT_PER_CLIENT: '0' }), { rateLimitPerClient: 0, rateBurstPerClient: 0 });
  t.like(parseConfig({ RATE_LIMIT_PER_CLIENT: '30' }), { rateLimitPerClient: 30, rateBurstPerClient: 60 });
  t.like(parseConfig({ RATE_LIMIT_PER_CLIENT: '30', RATE_BURST_PER_CLIENT: '0' }), { rateLimitPerClient: 30, rateBurstPerClient: 0 });
});

test('SERVICE_NAME is no longer read: the gateway follows every routed service', (t) => {
  t.deepEqual(parseConfig({ SERVICE_NAME: 'web_1' }), parseConfig({}));
});

test('ADMIN_TOKEN_FILE: the token is read from the file it names, trimmed', (t) => {
  const files: Record<string, string> = { '/run/secrets/admin-token': 'Zq3-x_9vR2pL8mN4kT7wY1sB\n' };
  const read = (file: string) => files[file];
  t.is(readAdminToken({ ADMIN_TOKEN_FILE: '/run/secrets/admin-token' }, read), 'Zq3-x_9vR2pL8mN4kT7wY1sB');
  t.is(readAdminToken({}, read), undefined);
  t.is(readAdminToken({ ADMIN_TOKEN_FILE: ' ' }, read), undefined);
});

test('ADMIN_TOKEN_FILE: a file that cannot be read or holds no usable token stops the start, naming the variable and the file, never the value', (t) => {
  const missing = t.throws(() => parseConfig({ ADMIN_TOKEN_FILE: '/nonexistent/admin-token' }), { instanceOf: ConfigError });
  t.regex(missing.message, /^ADMIN_TOKEN_FILE \(\/nonexistent\/admin-token\) cannot be read \(ENOENT\): use a readable file/);
  for (const value of ['short-secret', 'a token with spaces in it', 'x'.repeat(257), '']) {
    const error = t.throws(() => readAdminToken({ ADMIN_TOKEN_FILE: '/f' }, () => value), { instanceOf: ConfigError });
    t.regex(error.message, /^ADMIN_TOKEN_FILE \(\/f\) is not allowed \(value not shown\): use a token of 16 to 256 printable ASCII/);
    if (value) t.false(error.message.includes(value), 'the value is not shown');
  }
});
