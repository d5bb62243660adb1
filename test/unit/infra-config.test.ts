import { DEFAULT_RATE_LIMIT_PER_CLIENT } from '../../lib/client-limits';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import {
  ALLOWED,
  CONFIG_NAMESPACE,
  DEFAULTS,
  MAX_GATEWAY_RATE_LIMIT,
  MAX_REPLICAS,
  parseConfig,
  UNDECLARED_KEYS,
  type ConfigKey,
} from '../../infra/config';
import { hashSources } from '../../lib/sources';
import { makeTestCertificates } from '../../harness/tls';
import { REPO_ROOT, programEntry, readProjectFile, readStackConfig } from '../helpers/record-stack';

test('no values set gives the documented defaults', (t) => {
  t.deepEqual(parseConfig({}), DEFAULTS);
  t.is(DEFAULTS.replicas, 1);
  t.is(DEFAULTS.bindAddress, '127.0.0.1');
  t.is(DEFAULTS.activityReplicas, 1);
  t.is(DEFAULTS.gatewayRateLimit, DEFAULT_RATE_LIMIT_PER_CLIENT, "the balancer's own default");
  t.is(DEFAULTS.natsImage, 'nats:2.9-alpine');
});

test('activityReplicas has the bounds of replicas; gatewayRateLimit takes 0 (off) up to its maximum', (t) => {
  t.is(parseConfig({ activityReplicas: '1' }).activityReplicas, 1);
  t.is(parseConfig({ activityReplicas: String(MAX_REPLICAS) }).activityReplicas, MAX_REPLICAS);
  t.is(parseConfig({ gatewayRateLimit: '0' }).gatewayRateLimit, 0);
  t.is(parseConfig({ gatewayRateLimit: String(MAX_GATEWAY_RATE_LIMIT) }).gatewayRateLimit, MAX_GATEWAY_RATE_LIMIT);
  t.is(parseConfig({ natsImage: 'cnp-nats:2.9' }).natsImage, 'cnp-nats:2.9');
  // Counted apart: one key never changes the other.
  t.like(parseConfig({ replicas: '4', activityReplicas: '2' }), { replicas: 4, activityReplicas: 2 });
});

test('activityDurableInactiveSeconds: an hour by default, from 1 s to the stream age of 7 days; anything else names the key and the range', (t) => {
  t.is(DEFAULTS.activityDurableInactiveSeconds, 3600);
  t.is(parseConfig({ activityDurableInactiveSeconds: '1' }).activityDurableInactiveSeconds, 1);
  t.is(parseConfig({ activityDurableInactiveSeconds: '604800' }).activityDurableInactiveSeconds, 604800);
  for (const bad of ['0', '604801', '1.5', 'hour']) {
    const error = t.throws(() => parseConfig({ activityDurableInactiveSeconds: bad }));
    t.true(error.message.includes(`activityDurableInactiveSeconds = "${bad}" is not allowed`), error.message);
    t.regex(error.message, /a whole number of seconds from 1 to 604800/);
  }
});

test("outboxMaxEntries: 10,000 by default (the service's own, lib/outbox-bound.ts), from 1 to 100,000; anything else names the key and the range", (t) => {
  t.is(DEFAULTS.outboxMaxEntries, 10_000);
  t.is(parseConfig({ outboxMaxEntries: '1' }).outboxMaxEntries, 1);
  t.is(parseConfig({ outboxMaxEntries: '100000' }).outboxMaxEntries, 100_000);
  for (const bad of ['0', '100001', '2.5', 'many']) {
    const error = t.throws(() => parseConfig({ outboxMaxEntries: bad }));
    t.true(error.message.includes(`outboxMaxEntries = "${bad}" is not allowed`), error.message);
    t.regex(error.message, /a whole number of events from 1 to 100000/);
  }
});

for (const taken of ['activity', 'nats']) {
  test(`serviceName = ${JSON.stringify(taken)} is refused: the stack registers a service of that name itself`, (t) => {
    const error = t.throws(() => parseConfig({ serviceName: taken }));
    t.true(error.message.includes(`consul-nginx-pulumi:serviceName = "${taken}" is not allowed`), error.message);
    t.regex(error.message, /names of the stack's activity service and broker; use another name/);
  });
}

test('good values are parsed into their types', (t) => {
  const config = parseConfig({
    replicas: String(MAX_REPLICAS),
    balancerPort: '18080',
    balancerAdminPort: '18081',
    consulUiPort: '18500',
    collectorPort: '15514',
    bindAddress: '::1',
    dockerHost: 'ssh://deploy@vm-1.example:2222',
    baseImage: 'cnp-base:bookworm',
    consulImage: 'registry.local:5000/team/consul:1.20@sha256:' + 'a'.repeat(64),
    serviceName: 'hello-2',
  });
  t.is(config.replicas, MAX_REPLICAS);
  t.is(config.balancerPort, 18080);
  t.is(config.balancerAdminPort, 18081);
  t.is(config.bindAddress, '::1');
  t.is(config.dockerHost, 'ssh://deploy@vm-1.example:2222');
  t.is(config.consulImage.startsWith('registry.local:5000/'), true);
  t.is(parseConfig({ dockerHost: '' }).dockerHost, '');
  t.is(parseConfig({ dockerHost: 'ssh://root@[2001:db8::1]' }).dockerHost, 'ssh://root@[2001:db8::1]');
});

const badValues: [ConfigKey, string][] = [
  ['replicas', '0'],
  ['replicas', '-1'],
  ['replicas', '2.5'],
  ['replicas', 'abc'],
  ['replicas', String(MAX_REPLICAS + 1)],
  ['replicas', ''],
  ['balancerPort', '0'],
  ['balancerPort', '65536'],
  ['balancerAdminPort', '0'],
  ['consulUiPort', 'http'],
  ['collectorPort', '-5'],
  ['bindAddress', 'localhost'],
  ['bindAddress', '256.1.1.1'],
  ['bindAddress', '127.0.0.1:80'],
  ['dockerHost', 'tcp://vm:2375'],
  ['dockerHost', 'ssh://vm'],
  ['dockerHost', 'ssh://u@vm:99999'],
  ['dockerHost', 'ssh://u@[not-ipv6]'],
  ['baseImage', 'Not An Image!'],
  ['consulImage', ''],
  ['serviceName', 'Hello_World'],
  ['activityReplicas', '0'],
  ['activityReplicas', String(MAX_REPLICAS + 1)],
  ['activityReplicas', 'two'],
  ['gatewayRateLimit', '-1'],
  ['gatewayRateLimit', '0.5'],
  ['gatewayRateLimit', String(MAX_GATEWAY_RATE_LIMIT + 1)],
  ['gatewayRateLimit', 'unlimited'],
  ['natsImage', 'NATS!'],
  ['balancerHttpsPort', '0'],
  ['publicTls', 'true'],
];

for (const [key, value] of badValues) {
  test(`${key} = ${JSON.stringify(value)} throws one Error naming key, value and what is allowed`, (t) => {
    const error = t.throws(() => parseConfig({ [key]: value }), { instanceOf: Error });
    t.true(error.message.includes(`consul-nginx-pulumi:${key}`), error.message);
    t.true(error.message.includes(JSON.stringify(value)), error.message);
    t.true(error.message.includes(ALLOWED[key]), error.message);
  });
}

test('two published ports on the same number are refused', (t) => {
  const error = t.throws(() => parseConfig({ balancerPort: '8500' }));
  t.regex(error.message, /consulUiPort = "8500".*equals balancerPort/);
  const admin = t.throws(() => parseConfig({ balancerAdminPort: '5514' }));
  t.regex(admin.message, /collectorPort = "5514".*equals balancerAdminPort/);
});

test('publicTls: off by default; on takes a certificate and key given together and matching, or none (the stack makes one)', async (t) => {
  const certs = await makeTestCertificates();
  const other = await makeTestCertificates();
  t.teardown(() => Promise.all([certs.remove(), other.remove()]));
  const cert = fs.readFileSync(certs.certFile, 'utf8');
  const key = fs.readFileSync(certs.keyFile, 'utf8');
  t.like(parseConfig({}), {
    publicTls: 'off',
    publicHttp: 'redirect',
    balancerHttpsPort: 8443,
    publicTlsCertificate: '',
    publicTlsKey: '',
  });
  t.like(parseConfig({ publicTls: 'on', publicHttp: 'off' }), { publicTls: 'on', publicHttp: 'off', publicTlsCertificate: '' });
  const given = parseConfig({ publicTls: 'on', publicTlsCertificate: cert, publicTlsKey: key }, CONFIG_NAMESPACE, ['publicTlsKey']);
  t.is(given.publicTlsCertificate, cert);

  const refused = (raw: Record<string, string>, secrets = ['publicTlsKey']) =>
    t.throws(() => parseConfig(raw, CONFIG_NAMESPACE, secrets)).message;
  t.regex(
    refused({ publicTlsCertificate: cert }),
    /publicTlsCertificate is not allowed with publicTls off: .*set publicTls on, or unset publicTlsCertificate/,
  );
  t.regex(refused({ publicTls: 'on', publicTlsCertificate: cert }), /publicTlsCertificate is set without publicTlsKey, .*give both/);
  t.regex(refused({ publicTls: 'on', publicTlsKey: key }), /publicTlsKey is set without publicTlsCertificate/);
  const wrongKey = refused({ publicTls: 'on', publicTlsCertificate: cert, publicTlsKey: fs.readFileSync(other.keyFile, 'utf8') });
  t.regex(wrongKey, /publicTlsKey \(a secret, value not shown\) is not allowed: it is not the private key of publicTlsCertificate/);
  t.false(wrongKey.includes('PRIVATE KEY'), 'no key material in the error');
  t.regex(refused({ publicTls: 'on', publicTlsCertificate: cert, publicTlsKey: key }, []), /publicTlsKey is set as plain text/);
  t.regex(
    refused({ publicTls: 'on', publicTlsCertificate: 'not a certificate', publicTlsKey: key }),
    /publicTlsCertificate holds no PEM certificate, which is not allowed/,
  );
  t.regex(refused({ balancerHttpsPort: '8081' }), /balancerAdminPort = "8081".*equals balancerHttpsPort/);
});

test('an unknown key is refused with the list of known keys', (t) => {
  const error = t.throws(() => parseConfig({ replica: '3' }));
  t.regex(error.message, /unknown config key consul-nginx-pulumi:replica; known keys: replicas, /);
});

test("Pulumi.yaml declares every key but vms, bindAddress and the secrets with type and description, and its defaults equal config.ts's", (t) => {
  t.is(readProjectFile().name, CONFIG_NAMESPACE);
  const declared = readProjectFile().config as Record<string, { type: string; description: string; default?: unknown }>;
  const declarable = (Object.keys(DEFAULTS) as ConfigKey[]).filter((key) => !UNDECLARED_KEYS.includes(key));
  t.deepEqual(UNDECLARED_KEYS.slice().sort(), [
    'bindAddress',
    'consulGossipKey',
    'publicTlsCertificate',
    'publicTlsKey',
    'sshPrivateKey',
    'vms',
  ]);
  t.deepEqual(Object.keys(declared).sort(), declarable.sort());
  for (const key of declarable) {
    const entry = declared[key];
    t.is(entry.type, typeof DEFAULTS[key] === 'number' ? 'integer' : 'string', key);
    t.true(typeof entry.description === 'string' && entry.description.length > 10, key);
    // The CLI refuses to run a stack that lacks a value for a declared key with no default.
    t.true('default' in entry, `${key} states a default`);
    t.is(entry.default, DEFAULTS[key], `default of ${key}`);
  }
});

test("the program entry the engine loads (no main in Pulumi.yaml: package.json's main) is infra/index.ts, and Pulumi.dev.yaml's values are valid", (t) => {
  t.is(programEntry(), path.join(REPO_ROOT, 'infra', 'index.ts'));
  t.true(fs.existsSync(programEntry()));
  const values = readStackConfig('dev');
  t.true(Object.keys(values).length > 0);
  t.notThrows(() => parseConfig(values));
});

test('the source hash changes when a source file changes and ignores dist/ and READMEs', (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-hash-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.mkdirSync(path.join(root, 'service', 'dist'), { recursive: true });
  fs.writeFileSync(path.join(root, 'service', 'main.ts'), 'export const a = 1;\n');
  const first = hashSources(root, ['service']);
  fs.writeFileSync(path.join(root, 'service', 'dist', 'main.js'), 'built output');
  t.is(hashSources(root, ['service']), first);
  fs.writeFileSync(path.join(root, 'service', 'README.md'), '# notes');
  t.is(hashSources(root, ['service']), first, 'a README beside the code is not part of the bundle');
  fs.writeFileSync(path.join(root, 'service', 'main.ts'), 'export const a = 2;\n');
  t.not(hashSources(root, ['service']), first);
});
