import test from 'ava';
import { makeTestCertificates } from '../../harness/tls';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { NetworkInterfaceInfo } from 'node:os';
import { ConfigError } from '../../lib/config-error';
import { parseConfig, type HostFacts } from '../../replica/config';
import { serviceDefinition } from '../../replica/registration';

const iface = (address: string, internal: boolean, family: 'IPv4' | 'IPv6' = 'IPv4') =>
  ({ address, internal, family, netmask: '', mac: '', cidr: null }) as NetworkInterfaceInfo;

const container: HostFacts = {
  hostname: 'c0ffee',
  interfaces: { lo: [iface('127.0.0.1', true)], eth0: [iface('fe80::1', false, 'IPv6'), iface('172.18.0.5', false)] },
};

test('defaults: port 8080 on 0.0.0.0, name hello, id from name+host+port, the container address, local Consul', (t) => {
  t.deepEqual(parseConfig({}, container), {
    ports: { first: 8080, last: 8080 },
    host: '0.0.0.0',
    serviceName: 'hello',
    serviceId: 'hello-c0ffee-8080',
    serviceAddress: '172.18.0.5',
    consul: { secure: false, host: '127.0.0.1', port: 8500, url: 'http://127.0.0.1:8500' },
    consulToken: undefined,
    routes: [
      { path: '/', exact: true },
      { path: '/api/users', exact: false },
    ],
    tls: undefined,
  });
});

test('TLS_CERT_FILE and TLS_KEY_FILE: HTTPS with the pair read once; either alone, a key of another certificate or an unreadable file is refused, naming the variable and never the key', async (t) => {
  const certs = await makeTestCertificates();
  const other = await makeTestCertificates();
  t.teardown(() => Promise.all([certs.remove(), other.remove()]));
  const tls = parseConfig({ TLS_CERT_FILE: certs.certFile, TLS_KEY_FILE: certs.keyFile }, container).tls!;
  t.is(tls.cert, fs.readFileSync(certs.certFile, 'utf8').trim() + '\n');
  t.true(tls.key.includes('PRIVATE KEY'));
  const refused = (env: Record<string, string>) => t.throws(() => parseConfig(env, container), { instanceOf: ConfigError }).message;
  t.regex(
    refused({ TLS_CERT_FILE: certs.certFile }),
    /TLS_KEY_FILE = "" is not allowed: use the private key's file, as TLS_CERT_FILE is set/,
  );
  t.regex(refused({ TLS_KEY_FILE: certs.keyFile }), /TLS_CERT_FILE = "" is not allowed/);
  const wrong = refused({ TLS_CERT_FILE: certs.certFile, TLS_KEY_FILE: other.keyFile });
  t.regex(wrong, /TLS_KEY_FILE = ".*" is not allowed: use the private key of the certificate in/);
  t.false(wrong.includes('PRIVATE KEY'));
  t.regex(
    refused({ TLS_CERT_FILE: '/nonexistent/cert.pem', TLS_KEY_FILE: certs.keyFile }),
    /TLS_CERT_FILE \(\/nonexistent\/cert.pem\) cannot be read \(ENOENT\)/,
  );
});

test('CONSUL_HTTP_TOKEN is the Consul token; a value that cannot be a header is rejected without showing it', (t) => {
  t.is(
    parseConfig({ CONSUL_HTTP_TOKEN: ' 0d9db986-0adb-4d4c-a2df-09081559dc58 ' }, container).consulToken,
    '0d9db986-0adb-4d4c-a2df-09081559dc58',
  );
  const error = t.throws(() => parseConfig({ CONSUL_HTTP_TOKEN: 'secret part\nX-Evil: 1' }, container), { instanceOf: ConfigError });
  t.regex(error.message, /CONSUL_HTTP_TOKEN is not allowed \(value not shown\)/);
  t.notRegex(error.message, /secret part/);
});

test('CONSUL_HTTP_TOKEN_FILE names a file holding the token (how the stack hands it over); CONSUL_HTTP_TOKEN wins; errors name the file, never the value', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-token-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'consul-token');
  fs.writeFileSync(file, '0d9db986-0adb-4d4c-a2df-09081559dc58\n');
  t.is(parseConfig({ CONSUL_HTTP_TOKEN_FILE: file }, container).consulToken, '0d9db986-0adb-4d4c-a2df-09081559dc58');
  t.is(parseConfig({ CONSUL_HTTP_TOKEN_FILE: file, CONSUL_HTTP_TOKEN: 'from-env' }, container).consulToken, 'from-env');
  const missing = t.throws(() => parseConfig({ CONSUL_HTTP_TOKEN_FILE: path.join(dir, 'none') }, container), { instanceOf: ConfigError });
  t.regex(missing.message, /CONSUL_HTTP_TOKEN_FILE \(.*none\) cannot be read \(ENOENT\)/);
  fs.writeFileSync(file, 'secret part\nX-Evil: 1');
  const bad = t.throws(() => parseConfig({ CONSUL_HTTP_TOKEN_FILE: file }, container), { instanceOf: ConfigError });
  t.regex(bad.message, /CONSUL_HTTP_TOKEN_FILE \(.*consul-token\) is not allowed \(value not shown\)/);
  t.notRegex(bad.message, /secret part/);
});

test('explicit values are used as given', (t) => {
  const config = parseConfig(
    {
      PORT: '9001',
      HOST: '127.0.0.1',
      SERVICE_NAME: 'users-api',
      SERVICE_ID: 'users-api-1',
      SERVICE_ADDRESS: '127.0.0.1',
      CONSUL_HTTP_ADDR: 'https://consul.internal:8501',
    },
    container,
  );
  t.like(config, {
    ports: { first: 9001, last: 9001 },
    host: '127.0.0.1',
    serviceName: 'users-api',
    serviceId: 'users-api-1',
    serviceAddress: '127.0.0.1',
  });
  t.deepEqual(config.consul, { secure: true, host: 'consul.internal', port: 8501, url: 'https://consul.internal:8501' });
});

test('PORT may be a range FIRST-LAST (the replica listens on its first free port), with SERVICE_ID set', (t) => {
  t.deepEqual(parseConfig({ PORT: '21001-21040', SERVICE_ID: 'r-1' }, container).ports, { first: 21001, last: 21040 });
  t.deepEqual(parseConfig({ PORT: '9000-9000' }, container), parseConfig({ PORT: '9000' }, container));
  // The default id names the port, which a range leaves open until the replica has bound one.
  const error = t.throws(() => parseConfig({ PORT: '21001-21040' }, container), { instanceOf: ConfigError });
  t.is(
    error.message,
    'PORT = "21001-21040" is not allowed: use a single port when SERVICE_ID is unset (the default id names the port), or set SERVICE_ID too',
  );
});

test('CONSUL_HTTP_ADDR may omit the scheme, as with Consul tools; IPv6 literals lose their brackets', (t) => {
  t.like(parseConfig({ CONSUL_HTTP_ADDR: 'consul:8500' }, container).consul, { secure: false, host: 'consul', port: 8500 });
  t.like(parseConfig({ CONSUL_HTTP_ADDR: 'http://[::1]:8500' }, container).consul, { host: '::1', port: 8500 });
});

test('SERVICE_ADDRESS defaults to HOST when bound to one address, and to loopback when there is no external IPv4', (t) => {
  t.is(parseConfig({ HOST: '127.0.0.1' }, container).serviceAddress, '127.0.0.1');
  t.is(parseConfig({}, { hostname: 'h', interfaces: { lo: [iface('127.0.0.1', true)] } }).serviceAddress, '127.0.0.1');
});

test('an empty or blank variable means the default, as if it were unset', (t) => {
  const blank = { PORT: '', HOST: ' ', SERVICE_NAME: '', SERVICE_ID: '  ', SERVICE_ADDRESS: '', CONSUL_HTTP_ADDR: ' ' };
  t.deepEqual(parseConfig(blank, container), parseConfig({}, container));
});

const bad: Array<[string, string]> = [
  ['PORT', 'abc'],
  ['PORT', '0'],
  ['PORT', '65536'],
  ['PORT', '80.5'],
  ['PORT', '-1'],
  ['PORT', '21040-21001'],
  ['PORT', '21001-'],
  ['PORT', '0-10'],
  ['PORT', '65000-65536'],
  ['PORT', '21001-21040-21080'],
  ['HOST', 'not an address'],
  ['HOST', 'example.com'],
  ['SERVICE_NAME', 'has space'],
  ['SERVICE_NAME', 'web_1'],
  ['SERVICE_NAME', 'slash/name'],
  ['SERVICE_NAME', '-leading'],
  ['SERVICE_ID', 'with/slash'],
  ['SERVICE_ID', 'x'.repeat(200)],
  ['SERVICE_ADDRESS', 'http://x'],
  ['CONSUL_HTTP_ADDR', 'http://'],
  ['CONSUL_HTTP_ADDR', 'ftp://consul:21'],
  ['CONSUL_HTTP_ADDR', 'http://consul:8500/v1'],
  ['CONSUL_HTTP_ADDR', 'http://consul:99999'],
  ['CONSUL_HTTP_ADDR', '::::'],
];

for (const [name, value] of bad) {
  test(`${name}=${JSON.stringify(value.length > 20 ? value.slice(0, 20) + '…' : value)} is rejected with a message naming ${name}`, (t) => {
    const error = t.throws(() => parseConfig({ [name]: value }, container), { instanceOf: ConfigError });
    t.true(error.message.startsWith(`${name} = ${JSON.stringify(value.trim())} is not allowed: use `), error.message);
  });
}

test('ROUTES: hello asks for exactly / and /api/users by default; empty means no route', (t) => {
  t.deepEqual(parseConfig({}, container).routes, [
    { path: '/', exact: true },
    { path: '/api/users', exact: false },
  ]);
  t.deepEqual(parseConfig({ ROUTES: '/api/v2' }, container).routes, [{ path: '/api/v2', exact: false }]);
  t.deepEqual(parseConfig({ ROUTES: '' }, container).routes, []);
  t.deepEqual(parseConfig({ ROUTES: ' ' }, container).routes, []);
});

test('ROUTES: a bad route stops the service with a message naming ROUTES and what is allowed', (t) => {
  for (const bad of ['/x;return 200', '/_balancer', '/a/../b', 'api', '/api/']) {
    const error = t.throws(() => parseConfig({ ROUTES: `=/,${bad}` }, container), { instanceOf: ConfigError });
    t.true(error.message.startsWith(`ROUTES = ${JSON.stringify(`=/,${bad}`)} is not allowed: use a comma-separated list`), error.message);
    t.regex(error.message, /prefixed with "="/);
  }
});

test('the registration carries one urlprefix- tag per route', (t) => {
  const config = { ...parseConfig({ ROUTES: '=/,/api/users' }, container), port: 8080 };
  t.deepEqual(serviceDefinition(config).tags, ['urlprefix-=/', 'urlprefix-/api/users']);
  t.deepEqual(serviceDefinition({ ...config, routes: [] }).tags, []);
});

test('the registration advertises the port the replica bound, and checks /health there', (t) => {
  const config = parseConfig({ PORT: '21001-21040', SERVICE_ID: 'r-1', HOST: '10.0.0.12' }, container);
  t.like(serviceDefinition({ ...config, port: 21003 }), { address: '10.0.0.12', port: 21003, checkUrl: 'http://10.0.0.12:21003/health' });
});
