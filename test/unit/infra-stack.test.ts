// The real program under the SDK's mock runtime: what it declares for several configs, and how a
// change of `replicas` changes the declaration.
import { isDeepStrictEqual } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { MAX_REPLICAS } from '../../infra/config';
import { scratchCopy } from '../helpers/scratch-copy';
import { recordStack, type ProgramError, type RecordedResource, type RecordedStack } from '../helpers/record-stack';

const T = {
  container: 'docker:index/container:Container',
  image: 'docker:index/image:Image',
  network: 'docker:index/network:Network',
  volume: 'docker:index/volume:Volume',
  command: 'command:local:Command',
  provider: 'pulumi:providers:docker',
};
const COMPONENTS = [
  'cnp:infra:StackNetwork',
  'cnp:infra:AppBundle',
  'cnp:infra:LogCollector',
  'cnp:infra:Discovery',
  'cnp:infra:ServiceReplicas',
  'cnp:infra:Balancer',
];
const STACK_LABEL = 'io.consul-nginx-pulumi.stack';

const ofType = (record: RecordedStack, type: string) => record.resources.filter((r) => r.type === type);
/** The resolved inputs the tests read, across the Docker and command resources (each has only its own). */
interface DeclaredInputs {
  name: string;
  labels: { label: string; value: string }[];
  networkMode?: string;
  networksAdvanced: { name: string }[];
  ports?: { ip: string; external: number; internal: number; protocol: string }[];
  publishAllPorts?: boolean;
  logDriver?: string;
  logOpts: Record<string, string>;
  imageName: string;
  skipPush: boolean;
  build: { args: Record<string, string>; context: string; dockerfile: string };
  create: string;
  triggers: string[];
  image: string;
  restart: string;
  memory: number;
  memorySwap: number;
  healthcheck?: { tests?: string[] };
  entrypoints: string[];
  command: string[];
  volumes: { volumeName: string; containerPath: string }[];
  wait: boolean;
  destroyGraceSeconds: number;
  envs: string[];
  host: string;
}
const inputs = (r: RecordedResource) => r.inputs as unknown as DeclaredInputs;
const containerNamed = (record: RecordedStack, name: string) => {
  const found = ofType(record, T.container).find((c) => inputs(c).name === name);
  if (!found) throw new Error(`no container named ${name}`);
  return found;
};
const outputs = (r: RecordedResource) => r.outputs as { repoDigest: string };
const SHA256_ID = /^sha256:[0-9a-f]{64}$/;
const env = (container: RecordedResource) =>
  Object.fromEntries(inputs(container).envs.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));

interface Expected {
  stack: string;
  replicas: number;
  bindAddress: string;
  ports: { balancer: number; consul: number; collector: number };
  baseImage: string;
  consulImage: string;
  serviceName: string;
}

/** Everything the design says about one declaration. */
function assertDeclaredStack(t: ExecutionContext, record: RecordedStack, x: Expected): void {
  const prefix = `cnp-${x.stack}`;
  const name = (role: string) => `${prefix}-${role}`;
  // A replica's name carries the short id of the image it runs.
  const serviceImage = ofType(record, T.image).find((i) => inputs(i).imageName === `cnp-service:${x.stack}`)!;
  const serviceImageId = outputs(serviceImage).repoDigest;
  t.regex(serviceImageId, SHA256_ID);
  const replicaNames = Array.from({ length: x.replicas }, (_, i) => name(`replica-${i + 1}-${serviceImageId.slice(7, 19)}`));

  // Count and type of each resource.
  const counts: Record<string, number> = {};
  for (const r of record.resources) counts[r.type] = (counts[r.type] ?? 0) + 1;
  t.deepEqual(counts, {
    ...Object.fromEntries(COMPONENTS.map((c) => [c, 1])),
    [T.network]: 1,
    [T.volume]: 2,
    [T.image]: 3,
    [T.command]: 1,
    [T.container]: x.replicas + 3,
  });

  // Names: unique per type (the engine's rule), and Docker object names unique and stack-prefixed.
  const urnKeys = record.resources.map((r) => `${r.type}::${r.name}`);
  t.is(new Set(urnKeys).size, urnKeys.length);
  const dockerObjects = [...ofType(record, T.container), ...ofType(record, T.network), ...ofType(record, T.volume)];
  const objectNames = dockerObjects.map((r) => inputs(r).name);
  t.is(new Set(objectNames).size, objectNames.length);
  for (const n of objectNames) t.true(n.startsWith(`${prefix}-`), n);
  t.deepEqual(
    ofType(record, T.container)
      .map((c) => inputs(c).name)
      .sort(),
    [name('balancer'), name('collector'), name('consul'), ...replicaNames].sort(),
  );

  // Every Docker object carries the stack's labels.
  for (const r of dockerObjects) {
    const labels = inputs(r).labels as { label: string; value: string }[];
    t.true(
      labels.some((l) => l.label === STACK_LABEL && l.value === x.stack),
      `${r.name} has the stack label`,
    );
  }

  // Every container on the stack network, and only on it.
  const networkName = inputs(ofType(record, T.network)[0]).name;
  t.is(networkName, name('net'));
  for (const c of ofType(record, T.container)) {
    t.is(inputs(c).networkMode, undefined);
    t.deepEqual(
      (inputs(c).networksAdvanced as { name: string }[]).map((n) => n.name),
      [networkName],
      `${inputs(c).name} network`,
    );
  }

  // Only the three expected ports are published, all on the bind address.
  const published = ofType(record, T.container).flatMap((c) =>
    (inputs(c).ports ?? []).map((p) => `${inputs(c).name} ${p.ip} ${p.external}->${p.internal}/${p.protocol}`),
  );
  t.deepEqual(
    published.sort(),
    [
      `${name('balancer')} ${x.bindAddress} ${x.ports.balancer}->8080/tcp`,
      `${name('collector')} ${x.bindAddress} ${x.ports.collector}->5514/tcp`,
      `${name('consul')} ${x.bindAddress} ${x.ports.consul}->8500/tcp`,
    ].sort(),
  );
  for (const c of ofType(record, T.container)) t.not(inputs(c).publishAllPorts, true);

  // Every non-collector container logs to the collector and is created after it.
  const collector = containerNamed(record, name('collector'));
  const syslogHost = x.bindAddress.includes(':') ? `[${x.bindAddress}]` : x.bindAddress;
  for (const c of ofType(record, T.container).filter((c) => c !== collector)) {
    t.is(inputs(c).logDriver, 'syslog');
    t.like(inputs(c).logOpts, {
      'syslog-address': `tcp://${syslogHost}:${x.ports.collector}`,
      'syslog-format': 'rfc5424',
      tag: inputs(c).name,
      // A collector outage must not block a container's writes to stdout.
      mode: 'non-blocking',
    });
    t.true(c.options.dependsOn.includes(collector.name), `${inputs(c).name} dependsOn the collector`);
  }
  t.not(inputs(collector).logDriver, 'syslog');

  // Images: built locally from this repo's folders on the configured base; Consul's from its config.
  const images = ofType(record, T.image);
  t.deepEqual(images.map((i) => inputs(i).imageName).sort(), [
    `cnp-balancer:${x.stack}`,
    `cnp-collector:${x.stack}`,
    `cnp-service:${x.stack}`,
  ]);
  for (const image of images) {
    t.is(inputs(image).skipPush, true);
    t.is(inputs(image).build.args.BASE_IMAGE, x.baseImage);
    t.regex(inputs(image).build.context, /\/(service|balancer|collector)$/);
    t.is(inputs(image).build.dockerfile, `${inputs(image).build.context}/Dockerfile`);
  }
  const bundle = ofType(record, T.command)[0];
  t.is(inputs(bundle).create, 'npm run build');
  for (const part of ['service', 'balancer']) {
    const image = images.find((i) => inputs(i).imageName === `cnp-${part}:${x.stack}`)!;
    t.deepEqual(image.options.dependsOn, [bundle.name], `${part} image waits for the bundle`);
    t.true(inputs(bundle).triggers.includes(inputs(image).build.args.SOURCE_HASH));
  }
  // Containers run a built image by its id (what the provider reports as repoDigest), so a rebuild replaces them.
  const builtIds = new Set(images.map((i) => outputs(i).repoDigest));
  for (const image of images) t.regex(outputs(image).repoDigest, SHA256_ID);
  t.is(builtIds.size, 3);
  const consul = containerNamed(record, name('consul'));
  t.is(inputs(consul).image, x.consulImage);
  for (const c of ofType(record, T.container).filter((c) => c !== consul)) t.true(builtIds.has(inputs(c).image));

  // Options a careful operator sets.
  for (const c of ofType(record, T.container)) {
    const isReplica = replicaNames.includes(inputs(c).name);
    // Fixed names and published ports cannot exist twice; replicas' names change with their image instead.
    t.is(c.options.deleteBeforeReplace, !isReplica, `${inputs(c).name} deleteBeforeReplace`);
    t.true(['unless-stopped', 'always'].includes(inputs(c).restart));
    t.true(inputs(c).memory >= 64 && inputs(c).memory <= 1024);
    t.is(inputs(c).memorySwap, inputs(c).memory, `${inputs(c).name} declares its swap limit (no swap)`);
    t.truthy(inputs(c).healthcheck?.tests?.length, `${inputs(c).name} has a health check`);
    t.deepEqual(c.options.replaceOnChanges, ['healthcheck'], `${inputs(c).name}: a health check edit replaces`);
  }

  // Consul: explicit entrypoint, arguments and data path on a named volume; UI on.
  const consulData = ofType(record, T.volume).find((v) => inputs(v).name === name('consul-data'))!;
  t.deepEqual(inputs(consul).entrypoints, ['consul']);
  t.deepEqual(inputs(consul).command.slice(0, 7), [
    'agent',
    '-server',
    '-bootstrap-expect=1',
    '-ui',
    '-client=0.0.0.0',
    '-bind=0.0.0.0',
    '-data-dir=/consul/data',
  ]);
  t.deepEqual(inputs(consul).volumes, [{ volumeName: inputs(consulData).name, containerPath: '/consul/data' }]);

  // Collector: a volume for its files.
  const logs = ofType(record, T.volume).find((v) => inputs(v).name === name('logs'))!;
  t.deepEqual(inputs(collector).volumes, [{ volumeName: inputs(logs).name, containerPath: '/var/log/stack' }]);
  t.is(inputs(collector).wait, true);

  // Replicas: own SERVICE_ID, no SERVICE_ADDRESS, pointed at Consul by name, a drain grace.
  for (const replicaName of replicaNames) {
    const replica = containerNamed(record, replicaName);
    const vars = env(replica);
    t.is(vars.SERVICE_ID, replicaName);
    // The engine's readiness gate: healthy once Consul lists the replica as passing.
    t.true(inputs(replica).wait);
    t.deepEqual(inputs(replica).healthcheck?.tests, ['CMD', 'node', '/app/readiness-probe.js']);
    t.is(vars.SERVICE_NAME, x.serviceName);
    t.is(vars.CONSUL_HTTP_ADDR, `http://${name('consul')}:8500`);
    t.false('SERVICE_ADDRESS' in vars);
    t.true(inputs(replica).destroyGraceSeconds >= 10);
    t.true(replica.options.dependsOn.includes(consul.name));
  }

  // Balancer: pointed at Consul and the service name, listening on 8080 on all its interfaces.
  t.like(env(containerNamed(record, name('balancer'))), {
    CONSUL_HTTP_ADDR: `http://${name('consul')}:8500`,
    SERVICE_NAME: x.serviceName,
    LISTEN_PORT: '8080',
    LISTEN_ADDRESS: '0.0.0.0',
  });

  // No explicit provider: the local engine.
  t.is(ofType(record, T.provider).length, 0);

  // Stack outputs.
  const urlHost = x.bindAddress.includes(':') ? `[${x.bindAddress}]` : x.bindAddress;
  t.is(record.outputs.balancerUrl, `http://${urlHost}:${x.ports.balancer}`);
  t.is(record.outputs.consulUiUrl, `http://${urlHost}:${x.ports.consul}/ui/`);
  t.deepEqual(record.outputs.replicaNames, replicaNames);
  t.is(record.outputs.logsCommand, `docker exec ${name('collector')} tail -n 100 -F /var/log/stack/all.log`);
}

const defaults: Expected = {
  stack: 'dev',
  replicas: 1,
  bindAddress: '127.0.0.1',
  ports: { balancer: 8080, consul: 8500, collector: 5514 },
  baseImage: 'node:20-bookworm-slim',
  consulImage: 'hashicorp/consul:1.20',
  serviceName: 'hello',
};

test('replicas 1 (all defaults): the declared stack is what the design says', async (t) => {
  assertDeclaredStack(t, await recordStack({ stack: 'dev' }), defaults);
});

test('replicas 2 with other ports, an IPv6 bind address and another service name', async (t) => {
  const record = await recordStack({
    stack: 'staging',
    config: { replicas: 2, balancerPort: 18080, consulUiPort: 18500, collectorPort: 15514, bindAddress: '::1', serviceName: 'echo' },
  });
  assertDeclaredStack(t, record, {
    ...defaults,
    stack: 'staging',
    replicas: 2,
    bindAddress: '::1',
    ports: { balancer: 18080, consul: 18500, collector: 15514 },
    serviceName: 'echo',
  });
});

test('replicas 5 with the offline image overrides', async (t) => {
  const record = await recordStack({
    stack: 'ci',
    config: { replicas: 5, baseImage: 'cnp-base:bookworm', consulImage: 'cnp-consul:1.8.7' },
  });
  assertDeclaredStack(t, record, {
    ...defaults,
    stack: 'ci',
    replicas: 5,
    baseImage: 'cnp-base:bookworm',
    consulImage: 'cnp-consul:1.8.7',
  });
});

test(`replicas ${MAX_REPLICAS} (the maximum) declares that many distinct replicas`, async (t) => {
  const record = await recordStack({ config: { replicas: MAX_REPLICAS } });
  t.is((record.outputs.replicaNames as string[]).length, MAX_REPLICAS);
  t.is(ofType(record, T.container).length, MAX_REPLICAS + 3);
});

const byKey = (record: RecordedStack) => new Map(record.resources.map((r) => [`${r.type}::${r.name}`, r]));

test('raising replicas from 2 to 3 adds replica 3 and leaves everything else identical', async (t) => {
  const two = byKey(await recordStack({ config: { replicas: 2 } }));
  const three = byKey(await recordStack({ config: { replicas: 3 } }));
  const added = [...three.keys()].filter((k) => !two.has(k));
  t.deepEqual(added, [`${T.container}::replicas-3`]);
  t.regex(inputs(three.get(added[0])!).name, /^cnp-dev-replica-3-[0-9a-f]{12}$/);
  for (const [key, before] of two) {
    t.deepEqual(three.get(key), before, `${key} unchanged`);
  }
});

test('lowering replicas from 3 to 2 removes only the highest-numbered replica', async (t) => {
  const three = byKey(await recordStack({ config: { replicas: 3 } }));
  const two = byKey(await recordStack({ config: { replicas: 2 } }));
  const removed = [...three.keys()].filter((k) => !two.has(k));
  t.deepEqual(
    removed.map((k) => inputs(three.get(k)!).name.replace(/-[0-9a-f]{12}$/, '')),
    ['cnp-dev-replica-3'],
  );
  for (const [key, after] of two) t.deepEqual(after, three.get(key), `${key} unchanged`);
});

test('two stacks declare no Docker object with the same name', async (t) => {
  const names = (record: RecordedStack) =>
    record.resources.filter((r) => r.type.startsWith('docker:')).map((r) => String(inputs(r).name ?? inputs(r).imageName));
  const dev = names(await recordStack({ stack: 'dev', config: { replicas: 2 } }));
  const other = names(await recordStack({ stack: 'other', config: { replicas: 2 } }));
  t.deepEqual(
    dev.filter((n) => other.includes(n)),
    [],
  );
});

test('dockerHost set: one docker provider for that host carries every Docker resource', async (t) => {
  const record = await recordStack({ config: { dockerHost: 'ssh://deploy@vm.example' } });
  const providers = ofType(record, T.provider);
  t.is(providers.length, 1);
  t.is(inputs(providers[0]).host, 'ssh://deploy@vm.example');
  for (const r of record.resources.filter((r) => r.type.startsWith('docker:'))) {
    t.is(r.options.provider, providers[0].name, `${r.name} uses the remote engine`);
  }
  t.is(ofType(record, T.command)[0].options.provider, undefined);
  t.is(record.outputs.logsCommand, 'docker -H ssh://deploy@vm.example exec cnp-dev-collector tail -n 100 -F /var/log/stack/all.log');
});

test('a code change under service/ gives the service image a new id and every replica a new name; nothing else changes', async (t) => {
  const copy = scratchCopy();
  t.teardown(() => copy.remove());
  const before = byKey(await recordStack({ projectDir: copy.dir, config: { replicas: 2 } }));
  copy.edit('service/app.ts', 'version: deps.version', 'version: `${deps.version}-changed`');
  const after = byKey(await recordStack({ projectDir: copy.dir, config: { replicas: 2 } }));
  t.deepEqual([...after.keys()], [...before.keys()]);
  const changed = [...after.keys()].filter((k) => !isDeepStrictEqual(after.get(k), before.get(k)));
  t.deepEqual(
    changed.sort(),
    [`${T.command}::bundle-build`, `${T.image}::replicas-image`, `${T.container}::replicas-1`, `${T.container}::replicas-2`].sort(),
  );
  const id = (k: string, r: Map<string, RecordedResource>) => outputs(r.get(k)!).repoDigest;
  t.not(id(`${T.image}::replicas-image`, after), id(`${T.image}::replicas-image`, before));
  for (const n of [1, 2]) {
    const [old, now] = [before, after].map((r) => inputs(r.get(`${T.container}::replicas-${n}`)!));
    t.not(now.name, old.name, 'a new name, so the new container can exist next to the old one');
    t.is(now.image, id(`${T.image}::replicas-image`, after));
  }
  // The same sources give the same id: a re-run changes nothing.
  const again = byKey(await recordStack({ projectDir: copy.dir, config: { replicas: 2 } }));
  for (const [key, resource] of after) t.deepEqual(again.get(key), resource, key);
});

const badConfigs: [string, string][] = [
  ['replicas', '0'],
  ['replicas', '-1'],
  ['replicas', '2.5'],
  ['replicas', 'abc'],
  ['replicas', String(MAX_REPLICAS + 1)],
  ['balancerPort', '70000'],
  ['consulUiPort', '0'],
  ['collectorPort', 'syslog'],
  ['bindAddress', '127.0.0.300'],
  ['dockerHost', 'tcp://vm:2375'],
  ['baseImage', 'UPPER:case'],
];

for (const [key, value] of badConfigs) {
  test(`the program stops on ${key}=${JSON.stringify(value)} before declaring any resource`, async (t) => {
    const error = (await t.throwsAsync(recordStack({ config: { [key]: value } }), { instanceOf: Error })) as ProgramError;
    t.true(error.message.includes(`consul-nginx-pulumi:${key} = ${JSON.stringify(value)} is not allowed: use `), error.message);
    t.deepEqual(error.resources, []);
  });
}
