// Single components of the Pulumi program under the SDK's mock runtime, constructed without the whole
// program (as pulumi-awsx tests its components): what each declares from its own args and options.
import * as docker from '@pulumi/docker';
import * as pulumi from '@pulumi/pulumi';
import test from 'ava';
import { Balancer } from '../../infra/balancer';
import { AppBundle } from '../../infra/bundle';
import { LogCollector } from '../../infra/collector';
import { stackContainer } from '../../infra/container-settings';
import { ConsulAgent } from '../../infra/consul-agent';
import { StackNaming } from '../../infra/naming';
import { StackNetwork } from '../../infra/network';
import { ACTIVITY_REPLICAS, ServiceReplicas } from '../../infra/replicas';
import { Broker, brokerRegistration } from '../../infra/broker';
import { SecretFiles } from '../../infra/secret-files';
import { REPO_ROOT, recordStack, type RecordedResource, type RecordedStack } from '../helpers/record-stack';

const CONTAINER = 'docker:index/container:Container';
const IMAGE = 'docker:index/image:Image';
const naming = new StackNaming('cnp', 'unit');
const GOSSIP_KEY = Buffer.alloc(32, 7).toString('base64');

interface ContainerInputs {
  name: string;
  image: string;
  restart: string;
  memory: number;
  memorySwap: number;
  labels: { label: string; value: string }[];
  logDriver?: string;
  logOpts?: Record<string, string>;
  ports?: { ip: string; external: number; internal: number }[];
  networkMode?: string;
  envs: string[];
  volumes?: { volumeName: string; containerPath: string }[];
  networksAdvanced: { name: string; aliases: string[] }[];
  healthcheck?: { tests: string[] };
  entrypoints?: string[];
  command?: string[];
  wait?: boolean;
}
const inputs = (r: RecordedResource) => r.inputs as unknown as ContainerInputs;
const ofType = (record: RecordedStack, type: string) => record.resources.filter((r) => r.type === type);
const labelsOf = (r: RecordedResource) => Object.fromEntries(inputs(r).labels.map((l) => [l.label, l.value]));

/** The components every role needs: the network, the bundle step, the collector; and a stand-in for Consul. */
function foundation() {
  const network = new StackNetwork('network', { naming });
  const bundle = new AppBundle('bundle', { repoRoot: REPO_ROOT });
  const collector = new LogCollector('collector', {
    naming,
    networkName: network.networkName,
    repoRoot: REPO_ROOT,
    baseImage: 'cnp-base:bookworm',
    publishAddress: '127.0.0.1',
    collectorPort: 5514,
    dockerHost: '',
  });
  const consul = new docker.Container('consul-stand-in', { image: 'cnp-consul:1.8.7' });
  const role = {
    naming,
    networkName: network.networkName,
    collector,
    bundle: bundle.build,
    repoRoot: REPO_ROOT,
    baseImage: 'cnp-base:bookworm',
    serviceName: 'hello',
    consulHttpAddr: 'http://cnp-unit-consul:8500',
    secrets: { volumeName: 'cnp-unit-secrets-role', containerPath: '/run/secrets', readOnly: true },
  };
  return { bundle, role, consul };
}

test('ServiceReplicas alone with 3 replicas: three containers on one image, each after the collector and Consul, created before the old ones go', async (t) => {
  const record = await recordStack({
    declare: () => {
      const { bundle, role, consul } = foundation();
      new ServiceReplicas('replicas', { ...role, sourceHash: bundle.serviceSourceHash, indices: [1, 2, 3] }, { dependsOn: [consul] });
    },
  });
  const replicas = ofType(record, CONTAINER).filter((c) => c.options.parent === 'replicas');
  const image = ofType(record, IMAGE).find((i) => i.options.parent === 'replicas')!;
  const shortId = (image.outputs.repoDigest as string).slice(7, 19);
  t.deepEqual(
    replicas.map((c) => inputs(c).name),
    [1, 2, 3].map((n) => `cnp-unit-replica-${n}-${shortId}`),
  );
  for (const [index, replica] of replicas.entries()) {
    t.is(inputs(replica).image, image.outputs.repoDigest as string);
    t.deepEqual(replica.options.dependsOn, ['collector-container', 'consul-stand-in']);
    t.false(replica.options.deleteBeforeReplace, 'its name changes with the image, so old and new coexist');
    t.is(labelsOf(replica)['io.consul-nginx-pulumi.replica'], String(index + 1));
    t.is(inputs(replica).logOpts?.tag, inputs(replica).name);
  }
  // The image builds while Consul starts: only the replicas' containers wait for it, not the component
  // (children cannot register before their parent) nor the image.
  const component = record.resources.find((r) => r.type === 'cnp:infra:ServiceReplicas')!;
  t.deepEqual(component.options.dependsOn, []);
  t.deepEqual(image.options.dependsOn, ['bundle-build']);
  t.deepEqual(
    record.resources.filter((r) => r.options.parent === 'replicas').map((r) => r.type),
    [IMAGE, CONTAINER, CONTAINER, CONTAINER],
  );
});

test('ServiceReplicas of the activity kind: activity-<n> containers on the activity image, its role, the broker service name, unpublished', async (t) => {
  const record = await recordStack({
    declare: () => {
      const { bundle, role, consul } = foundation();
      new ServiceReplicas(
        'activity',
        { ...role, kind: ACTIVITY_REPLICAS, serviceName: 'activity', sourceHash: bundle.activitySourceHash, indices: [1, 2] },
        { dependsOn: [consul] },
      );
    },
  });
  const image = ofType(record, IMAGE).find((i) => i.options.parent === 'activity')!;
  t.is((image.inputs as { imageName: string }).imageName, 'cnp-activity:unit');
  t.regex((image.inputs as { build: { context: string } }).build.context, /\/activity$/);
  const shortId = (image.outputs.repoDigest as string).slice(7, 19);
  const containers = ofType(record, CONTAINER).filter((c) => c.options.parent === 'activity');
  t.deepEqual(
    containers.map((c) => inputs(c).name),
    [1, 2].map((n) => `cnp-unit-activity-${n}-${shortId}`),
  );
  for (const [index, c] of containers.entries()) {
    t.is(labelsOf(c)['io.consul-nginx-pulumi.role'], 'activity');
    t.deepEqual(inputs(c).networksAdvanced[0].aliases, [`activity-${index + 1}`]);
    t.true(inputs(c).envs.includes('SERVICE_NAME=activity'));
    t.true(inputs(c).envs.includes('NATS_SERVICE=nats'));
    t.true(inputs(c).envs.includes(`SERVICE_ID=${inputs(c).name}`));
    // ROUTES is left to the service's default (/api/activity).
    t.false(inputs(c).envs.some((e) => e.startsWith('ROUTES=')));
    t.is(inputs(c).ports, undefined);
    // The readiness gate of hello's replicas: /health on its own PORT, and passing in Consul.
    t.deepEqual(inputs(c).healthcheck?.tests, ['CMD', 'node', '/app/readiness-probe.js']);
    t.true(inputs(c).wait);
    t.deepEqual(c.options.dependsOn, ['collector-container', 'consul-stand-in']);
  }
});

test('Broker alone: nats-server with JetStream on its own volume, a /healthz check, no published port; published on a VM address when asked', async (t) => {
  const record = await recordStack({
    declare: () => {
      const { role } = foundation();
      const common = { naming, networkName: role.networkName, collector: role.collector, repoRoot: REPO_ROOT, natsImage: 'cnp-nats:2.9' };
      const broker = new Broker('broker', common);
      new Broker('vm-broker', { ...common, naming: new StackNaming('cnp', 'vms'), publishOn: '10.0.0.5' });
      brokerRegistration(
        'broker-registration',
        {
          repoRoot: REPO_ROOT,
          consulHttpAddr: 'http://127.0.0.1:8500',
          token: pulumi.secret('unit-broker-token'),
          brokerAddress: broker.address,
          agentIdentity: ['agent-id'],
        },
        {},
      );
    },
  });
  const image = ofType(record, IMAGE).find((i) => i.name === 'broker-image')!;
  t.like(image.inputs, { imageName: 'cnp-broker:unit', build: { args: { BASE_IMAGE: 'cnp-nats:2.9' } } });
  const volume = record.resources.find((r) => r.name === 'broker-data')!;
  t.is(volume.inputs.name, 'cnp-unit-nats-data');
  const nats = ofType(record, CONTAINER).find((c) => c.name === 'broker-container')!;
  t.is(inputs(nats).name, 'cnp-unit-nats');
  t.deepEqual(inputs(nats).entrypoints, ['nats-server']);
  t.true(inputs(nats).command!.includes('--jetstream'));
  t.true(inputs(nats).command!.includes('--store_dir=/data'));
  t.deepEqual(inputs(nats).volumes, [{ volumeName: 'cnp-unit-nats-data', containerPath: '/data' }]);
  t.deepEqual(inputs(nats).healthcheck?.tests.slice(-1), ['http://127.0.0.1:8222/healthz']);
  t.is(inputs(nats).ports, undefined, 'on one host nothing reaches it from outside the stack network');
  t.is(inputs(nats).logDriver, 'syslog');
  t.is(labelsOf(nats)['io.consul-nginx-pulumi.role'], 'broker');
  t.true(nats.options.deleteBeforeReplace);
  t.true(inputs(nats).wait);
  const onVm = ofType(record, CONTAINER).find((c) => c.name === 'vm-broker-container')!;
  t.like(inputs(onVm).ports, [
    { ip: '10.0.0.5', external: 4222, internal: 4222 },
    { ip: '10.0.0.5', external: 8222, internal: 8222 },
  ]);
  const step = record.resources.find((r) => r.name === 'broker-registration')!;
  t.like(step.inputs, {
    create: 'node --import tsx infra/register-broker.ts',
    environment: { CONSUL_HTTP_ADDR: 'http://127.0.0.1:8500', CONSUL_HTTP_TOKEN: 'unit-broker-token', BROKER_ADDRESS: 'cnp-unit-nats' },
  });
  t.true(step.secretInputs.includes('environment'), 'the token is a secret input');
});

test('Balancer alone: a holder published on its public and admin ports, and the gateway in its namespace after the collector and Consul, created before the old one goes', async (t) => {
  const record = await recordStack({
    declare: () => {
      const { bundle, role, consul } = foundation();
      new Balancer(
        'balancer',
        {
          ...role,
          sourceHash: bundle.balancerSourceHash,
          bindAddress: '::1',
          balancerPort: 18080,
          balancerHttpsPort: 18443,
          adminAddress: '::1',
          balancerAdminPort: 18081,
          rateLimitPerClient: 7,
        },
        { dependsOn: consul },
      );
    },
  });
  const [holder, balancer] = ofType(record, CONTAINER).filter((c) => c.options.parent === 'balancer');
  t.is(holder.name, 'balancer-ports');
  t.is(inputs(holder).name, 'cnp-unit-balancer');
  // The HTTPS port too, though nothing listens there without TLS: turning TLS on then keeps the holder.
  t.like(inputs(holder).ports, [
    { ip: '::1', external: 18080, internal: 8080 },
    { ip: '::1', external: 18443, internal: 8443 },
    { ip: '::1', external: 18081, internal: 8081 },
  ]);
  t.true(inputs(balancer).envs.includes('LISTEN_PORT=8080'));
  t.false(inputs(balancer).envs.some((e) => e.startsWith('TLS_')));
  t.true(holder.options.deleteBeforeReplace, 'its ports cannot be published twice');
  t.is(balancer.name, 'balancer-gateway');
  t.regex(inputs(balancer).name, /^cnp-unit-balancer-[0-9a-f]{12}$/);
  t.is(inputs(balancer).networkMode, 'container:balancer-ports-id');
  t.is(inputs(balancer).ports, undefined);
  t.deepEqual(balancer.options.dependsOn, ['collector-container', 'consul-stand-in']);
  t.false(balancer.options.deleteBeforeReplace);
  // The gateway's per-client limit reaches the balancer; it no longer follows one configured service.
  t.true(inputs(balancer).envs.includes('RATE_LIMIT_PER_CLIENT=7'));
  // The paths each service may serve come from the deploy, not from what replicas register.
  t.true(inputs(balancer).envs.includes('ROUTE_OWNERS=hello:=/,/api/users;activity:/api/activity'));
  t.false(inputs(balancer).envs.some((e) => e.startsWith('SERVICE_NAME=')));
  const image = ofType(record, IMAGE).find((i) => i.options.parent === 'balancer')!;
  t.deepEqual(image.options.dependsOn, ['bundle-build']);
  t.is(inputs(balancer).image, image.outputs.repoDigest as string);
});

test('Balancer with HTTPS: the public routes on 8443 with the files of its secrets, 8080 redirects; a new certificate names a new gateway', async (t) => {
  const declare = (publicHttp: 'redirect' | 'off', cert: string) => () => {
    const { bundle, role, consul } = foundation();
    new Balancer(
      'balancer',
      {
        ...role,
        sourceHash: bundle.balancerSourceHash,
        bindAddress: '127.0.0.1',
        balancerPort: 18080,
        balancerHttpsPort: 18443,
        tls: { cert, key: pulumi.secret('key'), publicHttp },
        adminAddress: '127.0.0.1',
        balancerAdminPort: 18081,
        rateLimitPerClient: 7,
      },
      { dependsOn: consul },
    );
  };
  const gatewayOf = async (publicHttp: 'redirect' | 'off', cert: string) =>
    ofType(await recordStack({ declare: declare(publicHttp, cert) }), CONTAINER).find((c) => c.name === 'balancer-gateway')!;
  const redirect = await gatewayOf('redirect', 'cert one');
  for (const env of [
    'LISTEN_PORT=8443',
    'TLS_CERT_FILE=/run/secrets/public-cert.pem',
    'TLS_KEY_FILE=/run/secrets/public-key.pem',
    'PUBLIC_HTTPS_PORT=18443',
    'PUBLIC_HTTP=redirect',
    'HTTP_REDIRECT_PORT=8080',
  ]) {
    t.true(inputs(redirect).envs.includes(env), env);
  }
  t.false(
    inputs(redirect).envs.some((e) => e.includes('cert one')),
    'the certificate reaches it as a file',
  );
  const off = await gatewayOf('off', 'cert one');
  t.true(inputs(off).envs.includes('PUBLIC_HTTP=off'));
  t.false(inputs(off).envs.some((e) => e.startsWith('HTTP_REDIRECT_PORT=')));
  t.is(inputs(await gatewayOf('redirect', 'cert one')).name, inputs(redirect).name);
  t.not(inputs(await gatewayOf('redirect', 'cert two')).name, inputs(redirect).name, 'a renewed certificate starts a new gateway');
});

test('a new setting or certificate renames the replicas (create before delete, no name collision); the same ones keep the names', async (t) => {
  const namesWith = async (settings: string[], certificate?: string) =>
    ofType(
      await recordStack({
        declare: () => {
          const { bundle, role, consul } = foundation();
          new ServiceReplicas(
            'replicas',
            { ...role, sourceHash: bundle.serviceSourceHash, indices: [1], settings, certificate },
            { dependsOn: [consul] },
          );
        },
      }),
      CONTAINER,
    )
      .filter((c) => c.options.parent === 'replicas')
      .map((c) => inputs(c).name);
  const base = await namesWith([]);
  t.deepEqual(await namesWith([]), base);
  t.notDeepEqual(await namesWith(['ACTIVITY_DURABLE_INACTIVE_SECONDS=30']), base);
  const withCert = await namesWith([], 'certificate one');
  t.notDeepEqual(withCert, base);
  t.deepEqual(await namesWith([], 'certificate one'), withCert);
  t.notDeepEqual(await namesWith([], 'certificate two'), withCert, 'a renewed certificate rolls the replicas');
});

test('a renewed admin certificate names a new gateway', async (t) => {
  const gatewayName = async (cert: string) =>
    inputs(
      ofType(
        await recordStack({
          declare: () => {
            const { bundle, role, consul } = foundation();
            new Balancer(
              'balancer',
              {
                ...role,
                sourceHash: bundle.balancerSourceHash,
                bindAddress: '127.0.0.1',
                balancerPort: 18080,
                balancerHttpsPort: 18443,
                adminAddress: '127.0.0.1',
                balancerAdminPort: 18081,
                rateLimitPerClient: 7,
                adminTls: { cert },
              },
              { dependsOn: consul },
            );
          },
        }),
        CONTAINER,
      ).find((c) => c.name === 'balancer-gateway')!,
    ).name;
  t.is(await gatewayName('admin one'), await gatewayName('admin one'));
  t.not(await gatewayName('admin two'), await gatewayName('admin one'));
});

test('LogCollector alone: its container waits for nothing and keeps its own log local', async (t) => {
  const record = await recordStack({ declare: () => foundation() });
  const collector = ofType(record, CONTAINER).find((c) => c.name === 'collector-container')!;
  t.deepEqual(collector.options.dependsOn, []);
  t.is(inputs(collector).logDriver, 'json-file');
  t.true(collector.options.deleteBeforeReplace);
});

test('ConsulAgent alone on one host: Consul runs its own image built on consulImage, logs to the collector and starts after it', async (t) => {
  const record = await recordStack({
    declare: () => {
      const { role } = foundation();
      new ConsulAgent('consul', {
        naming,
        placement: { network: 'stack', nodeName: 'cnp-unit-consul', networkName: role.networkName, bindAddress: '127.0.0.1' },
        server: true,
        collector: role.collector,
        consulImage: 'cnp-consul:1.8.7',
        repoRoot: REPO_ROOT,
        httpPort: 8500,
        gossipKey: GOSSIP_KEY,
        managementToken: pulumi.secret('unit-management-token'),
        roleSecrets: {},
      });
    },
  });
  const consul = ofType(record, CONTAINER).find((c) => c.name === 'consul-agent')!;
  t.deepEqual((consul.inputs.command as string[]).slice(-2), ['-config-file=/run/secrets/agent.hcl', '-disable-keyring-file']);
  // The gossip key and the tokens reach it as a file in its secrets volume, uploaded into a holder that never runs.
  const holder = ofType(record, CONTAINER).find((c) => c.name === 'consul-secrets-holder')!;
  t.like(holder.inputs, { start: false, mustRun: false });
  const uploads = holder.inputs.uploads as { file: string; content: string; permissions: string }[];
  t.deepEqual(
    uploads.map((u) => `${u.file} ${u.permissions}`),
    ['/secrets/consul/agent.hcl 0444', '/secrets/consul/management-token 0444'],
  );
  t.true(uploads[0].content.startsWith(`encrypt = "${GOSSIP_KEY}"\nacl { enabled = true default_policy = "deny"`));
  t.is(uploads[1].content, 'unit-management-token');
  t.true(holder.secretInputs.includes('uploads'));
  t.deepEqual(
    inputs(consul).volumes!.map((v) => `${v.volumeName} ${v.containerPath}`),
    ['cnp-unit-consul-data /consul/data', 'cnp-unit-secrets-consul /run/secrets'],
  );
  t.false(JSON.stringify(consul.inputs).includes('unit-management-token'), 'no token in the container');
  t.false(JSON.stringify(consul.inputs).includes(GOSSIP_KEY), 'nor the gossip key');
  const image = ofType(record, IMAGE).find((i) => i.name === 'consul-image')!;
  t.is((image.inputs as { build: { args: Record<string, string> } }).build.args.BASE_IMAGE, 'cnp-consul:1.8.7');
  t.is(inputs(consul).image, (image.outputs as { repoDigest: string }).repoDigest);
  t.is((consul.inputs as { user: string }).user, 'consul');
  t.deepEqual(consul.options.dependsOn, ['collector-container', 'consul-secrets-holder'], 'after the holder of its files');
  t.is(inputs(consul).logDriver, 'syslog');
});

test('a role overrides any container default by setting it, and its dependsOn adds to the collector', async (t) => {
  const record = await recordStack({
    declare: () => {
      const { role, consul } = foundation();
      stackContainer(
        'custom',
        { naming, role: 'replica', logs: role.collector },
        { name: 'cnp-unit-custom', image: 'cnp-base:bookworm', restart: 'always', memory: 512, memorySwap: 512 },
        { deleteBeforeReplace: false, replaceOnChanges: [], dependsOn: consul },
      );
      stackContainer(
        'plain',
        { naming, role: 'replica', logs: role.collector },
        { name: 'cnp-unit-plain', image: 'cnp-base:bookworm' },
        {},
      );
    },
  });
  const custom = ofType(record, CONTAINER).find((c) => c.name === 'custom')!;
  t.like(inputs(custom), { restart: 'always', memory: 512, memorySwap: 512, logDriver: 'syslog' });
  t.like(custom.options, { deleteBeforeReplace: false, replaceOnChanges: [], dependsOn: ['collector-container', 'consul-stand-in'] });
  const plain = ofType(record, CONTAINER).find((c) => c.name === 'plain')!;
  t.like(inputs(plain), { restart: 'unless-stopped', memory: 256, memorySwap: 256 });
  t.like(plain.options, { deleteBeforeReplace: true, replaceOnChanges: ['healthcheck', 'tmpfs'], dependsOn: ['collector-container'] });
  t.is(labelsOf(plain)['io.consul-nginx-pulumi.role'], 'replica');
});

test('a dependsOn given as an Output is refused with a message naming what is allowed', async (t) => {
  const error = await t.throwsAsync(
    recordStack({
      declare: () => {
        const { consul } = foundation();
        stackContainer(
          'late',
          { naming, role: 'replica' },
          { name: 'cnp-unit-late', image: 'cnp-base:bookworm' },
          { dependsOn: pulumi.output([consul]) },
        );
      },
    }),
  );
  t.regex(error.message, /dependsOn .* is not allowed .*: use a resource or a list of resources/);
});

test("SecretFiles.versionOf: a digest of one role's files, which changes with them and not with another role's", async (t) => {
  const versions = async (files: Record<string, Record<string, string>>) => {
    const seen: Record<string, string> = {};
    await recordStack({
      declare: () => {
        const secrets = new SecretFiles('secrets', { naming, image: 'sha256:' + 'a'.repeat(64), files });
        for (const role of Object.keys(files)) secrets.versionOf(role).apply((v) => (seen[role] = v));
      },
    });
    return seen;
  };
  const base = await versions({ broker: { 'tls-cert.pem': 'one' }, replica: { 'consul-token': 'token' } });
  t.regex(base.broker, /^[0-9a-f]{16}$/);
  const renewed = await versions({ broker: { 'tls-cert.pem': 'two' }, replica: { 'consul-token': 'token' } });
  t.not(renewed.broker, base.broker, 'a new certificate: a new version, so the broker restarts');
  t.is(renewed.replica, base.replica, "another role's files leave it alone");
});
