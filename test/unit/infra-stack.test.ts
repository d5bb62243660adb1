// The real program under the SDK's mock runtime: each behaviour of the declaration, checked for three
// configs; how a change of `replicas` or of the code changes it; bad config values.
import { isDeepStrictEqual } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { MAX_REPLICAS } from '../../infra/config';
import { scratchCopy } from '../helpers/scratch-copy';
import { GOSSIP_KEY_SCRIPT } from '../../infra/gossip-key';
import { CONSUL_TLS_SCRIPT } from '../../infra/consul-tls';
import { shortImageId } from '../../infra/naming';
import { replicaVersion } from '../../infra/replicas';
import { PUBLIC_TLS_STEP } from '../../infra/public-tls';
import {
  MOCK_GOSSIP_KEY,
  mockPem,
  recordStack,
  type ProgramError,
  type RecordOptions,
  type RecordedResource,
  type RecordedStack,
} from '../helpers/record-stack';

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
  'cnp:infra:ConsulAgent',
  'cnp:infra:SecretFiles',
  'cnp:infra:ServiceReplicas',
  'cnp:infra:Balancer',
  'cnp:infra:Broker',
];
/** Components declared more than once: hello's replicas and the activity replicas. */
const COMPONENT_COUNTS: Record<string, number> = { 'cnp:infra:ServiceReplicas': 2 };
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
  triggers?: string[];
  environment?: Record<string, string>;
  image: string;
  restart: string;
  memory: number;
  memorySwap: number;
  user?: string;
  readOnly?: boolean;
  tmpfs?: Record<string, string>;
  capabilities?: { drops?: string[]; adds?: string[] };
  securityOpts?: string[];
  cpus?: string;
  ulimits?: { name: string; soft: number; hard: number }[];
  privileged?: boolean;
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
/** The content of a secret file the holder uploads, by its path in the holder (`/secrets/<role>/<file>`). */
const secretFile = (d: { secretsHolder: RecordedResource }, file: string): string => {
  const upload = (d.secretsHolder.inputs.uploads as { file: string; content: string }[]).find((u) => u.file === file);
  if (!upload) throw new Error(`no uploaded file ${file}`);
  return upload.content;
};
const env = (container: RecordedResource) =>
  Object.fromEntries(inputs(container).envs.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));

interface Expected {
  stack: string;
  replicas: number;
  activityReplicas: number;
  gatewayRateLimit: number;
  bindAddress: string;
  ports: { balancer: number; balancerHttps: number; balancerAdmin: number; consul: number; collector: number };
  baseImage: string;
  consulImage: string;
  natsImage: string;
  serviceName: string;
  activityDurableInactiveSeconds: number;
  outboxMaxEntries: number;
}

const defaults: Expected = {
  stack: 'dev',
  replicas: 1,
  activityReplicas: 1,
  gatewayRateLimit: 1000,
  bindAddress: '127.0.0.1',
  ports: { balancer: 8080, balancerHttps: 8443, balancerAdmin: 8081, consul: 8500, collector: 5514 },
  baseImage: 'node:20-bookworm-slim',
  consulImage: 'hashicorp/consul:1.20',
  natsImage: 'nats:2.9-alpine',
  serviceName: 'hello',
  activityDurableInactiveSeconds: 3600,
  outboxMaxEntries: 10000,
};

/** Three configs, each recorded once and checked by every behaviour below. */
const CASES: { label: string; options: RecordOptions; expected: Expected }[] = [
  { label: 'replicas 1, all defaults', options: { stack: 'dev' }, expected: defaults },
  {
    label: 'replicas 2, activity replicas 3, rate limit off, other ports, IPv6, another service',
    options: {
      stack: 'staging',
      config: {
        replicas: 2,
        activityReplicas: 3,
        gatewayRateLimit: 0,
        balancerPort: 18080,
        balancerHttpsPort: 18443,
        balancerAdminPort: 18081,
        consulUiPort: 18500,
        collectorPort: 15514,
        bindAddress: '::1',
        serviceName: 'echo',
        activityDurableInactiveSeconds: 30,
        outboxMaxEntries: 500,
      },
    },
    expected: {
      ...defaults,
      stack: 'staging',
      replicas: 2,
      activityReplicas: 3,
      gatewayRateLimit: 0,
      bindAddress: '::1',
      ports: { balancer: 18080, balancerHttps: 18443, balancerAdmin: 18081, consul: 18500, collector: 15514 },
      serviceName: 'echo',
      activityDurableInactiveSeconds: 30,
      outboxMaxEntries: 500,
    },
  },
  {
    label: 'bind address 0.0.0.0 (every interface)',
    options: { stack: 'open', config: { bindAddress: '0.0.0.0' } },
    expected: { ...defaults, stack: 'open', bindAddress: '0.0.0.0' },
  },
  {
    label: 'replicas 5, offline images',
    options: {
      stack: 'ci',
      config: {
        replicas: 5,
        baseImage: 'cnp-base:bookworm',
        consulImage: 'cnp-consul:1.8.7',
        natsImage: 'cnp-nats:2.9',
        gatewayRateLimit: 250,
      },
    },
    expected: {
      ...defaults,
      stack: 'ci',
      replicas: 5,
      gatewayRateLimit: 250,
      baseImage: 'cnp-base:bookworm',
      consulImage: 'cnp-consul:1.8.7',
      natsImage: 'cnp-nats:2.9',
    },
  },
];

/** A recorded declaration and the names the design derives from its config. */
interface Declared {
  record: RecordedStack;
  x: Expected;
  prefix: string;
  name(role: string): string;
  replicaNames: string[];
  activityNames: string[];
  containers: RecordedResource[];
  dockerObjects: RecordedResource[];
  collector: RecordedResource;
  consul: RecordedResource;
  nats: RecordedResource;
  /** The container created, never started, that holds the uploaded secret files (infra/secret-files.ts). */
  secretsHolder: RecordedResource;
  /** The container that holds the balancer's ports and network namespace (fixed name `<prefix>-balancer`). */
  balancerPorts: RecordedResource;
  /** The balancer proper, nginx and its watcher, in the holder's namespace (`<prefix>-balancer-<version>`). */
  gateway: RecordedResource;
  /** The bind address as it appears in a URL (IPv6 in brackets). */
  urlHost: string;
  /** Where the collector's port is published: loopback of the bind address's family, whatever that is. */
  collectorHost: string;
}

const recorded = new Map<string, Promise<RecordedStack>>();
async function declared(c: (typeof CASES)[number]): Promise<Declared> {
  if (!recorded.has(c.label)) recorded.set(c.label, recordStack(c.options));
  const record = await recorded.get(c.label)!;
  const x = c.expected;
  const prefix = `cnp-${x.stack}`;
  const name = (role: string) => `${prefix}-${role}`;
  // A replica's name carries the short id of the image it runs.
  const serviceImage = ofType(record, T.image).find((i) => inputs(i).imageName === `cnp-service:${x.stack}`)!;
  const serviceImageId = outputs(serviceImage).repoDigest;
  // Both services have settings of their own: their names carry a digest of them and the image's id.
  const serviceVersion = shortImageId(
    replicaVersion(serviceImageId, ['USER_EVENTS_REPLICAS=1', `OUTBOX_MAX_ENTRIES=${x.outboxMaxEntries}`]),
  );
  const replicaNames = Array.from({ length: x.replicas }, (_, i) => name(`replica-${i + 1}-${serviceVersion}`));
  const activityImage = ofType(record, T.image).find((i) => inputs(i).imageName === `cnp-activity:${x.stack}`)!;
  const activityImageId = outputs(activityImage).repoDigest;
  const activityVersion = shortImageId(
    replicaVersion(activityImageId, [`ACTIVITY_DURABLE_INACTIVE_SECONDS=${x.activityDurableInactiveSeconds}`, 'USER_EVENTS_REPLICAS=1']),
  );
  const activityNames = Array.from({ length: x.activityReplicas }, (_, i) => name(`activity-${i + 1}-${activityVersion}`));
  return {
    record,
    x,
    prefix,
    name,
    replicaNames,
    activityNames,
    // The containers that run: all but the holder of the secret files, which is created and never started.
    containers: ofType(record, T.container).filter((c) => c.inputs.start !== false),
    secretsHolder: containerNamed(record, name('secrets')),
    dockerObjects: [...ofType(record, T.container), ...ofType(record, T.network), ...ofType(record, T.volume)],
    collector: containerNamed(record, name('collector')),
    consul: containerNamed(record, name('consul')),
    nats: containerNamed(record, name('nats')),
    balancerPorts: containerNamed(record, name('balancer')),
    gateway: ofType(record, T.container).find((c) => c.name === 'balancer-gateway')!,
    urlHost: x.bindAddress.includes(':') ? `[${x.bindAddress}]` : x.bindAddress,
    collectorHost: x.bindAddress.includes(':') ? '::1' : '127.0.0.1',
  };
}

/** One behaviour of the declared stack, checked for every config. */
function behaviour(title: string, check: (t: ExecutionContext, d: Declared) => void): void {
  for (const c of CASES) test(`${title} (${c.label})`, async (t) => check(t, await declared(c)));
}

behaviour(
  'declares one provider, one network, three volumes and one per role holding secret files, six images, the bundle, gossip-key, Consul-token, admin-token, ACL-init and broker-registration steps and a container per replica of each service plus five (one the holder of the secret files)',
  (t, d) => {
    const counts: Record<string, number> = {};
    for (const r of d.record.resources) counts[r.type] = (counts[r.type] ?? 0) + 1;
    t.deepEqual(counts, {
      ...Object.fromEntries(COMPONENTS.map((c) => [c, COMPONENT_COUNTS[c] ?? 1])),
      [T.provider]: 1,
      [T.network]: 1,
      [T.volume]: 3 + 4,
      [T.image]: 6,
      [T.command]: 6,
      [T.container]: d.x.replicas + d.x.activityReplicas + 6,
    });
    t.regex(inputs(d.gateway).name, new RegExp(`^${d.name('balancer')}-[0-9a-f]{12}$`));
    t.deepEqual(
      d.containers.map((c) => inputs(c).name).sort(),
      [
        d.name('balancer'),
        inputs(d.gateway).name,
        d.name('collector'),
        d.name('consul'),
        d.name('nats'),
        ...d.replicaNames,
        ...d.activityNames,
      ].sort(),
    );
  },
);

behaviour('every resource and Docker object has a unique name, and Docker objects carry the stack prefix', (t, d) => {
  // Unique per type: the engine's rule for logical names.
  const urnKeys = d.record.resources.map((r) => `${r.type}::${r.name}`);
  t.is(new Set(urnKeys).size, urnKeys.length);
  const objectNames = d.dockerObjects.map((r) => inputs(r).name);
  t.is(new Set(objectNames).size, objectNames.length);
  for (const n of objectNames) t.true(n.startsWith(`${d.prefix}-`), n);
});

behaviour('every Docker object carries the stack label', (t, d) => {
  for (const r of d.dockerObjects) {
    t.true(
      inputs(r).labels.some((l) => l.label === STACK_LABEL && l.value === d.x.stack),
      `${r.name} has the stack label`,
    );
  }
});

behaviour("every container is on the stack network and only on it (the balancer's gateway in its holder's namespace)", (t, d) => {
  const networkName = inputs(ofType(d.record, T.network)[0]).name;
  t.is(networkName, d.name('net'));
  t.is(inputs(d.gateway).networkMode, `container:${d.balancerPorts.name}-id`, 'the holder by id (mocked): a new holder, a new gateway');
  t.deepEqual(inputs(d.gateway).networksAdvanced ?? [], []);
  for (const c of d.containers.filter((c) => c !== d.gateway)) {
    t.is(inputs(c).networkMode, undefined);
    t.deepEqual(
      inputs(c).networksAdvanced.map((n) => n.name),
      [networkName],
      `${inputs(c).name} network`,
    );
  }
});

behaviour(
  'only the balancer (public, HTTPS and admin), Consul and syslog ports are published: all but syslog on the bind address, syslog on loopback',
  (t, d) => {
    const published = d.containers.flatMap((c) =>
      (inputs(c).ports ?? []).map((p) => `${inputs(c).name} ${p.ip} ${p.external}->${p.internal}/${p.protocol}`),
    );
    t.deepEqual(
      published.sort(),
      [
        `${d.name('balancer')} ${d.x.bindAddress} ${d.x.ports.balancer}->8080/tcp`,
        `${d.name('balancer')} ${d.x.bindAddress} ${d.x.ports.balancerHttps}->8443/tcp`,
        `${d.name('balancer')} ${d.x.bindAddress} ${d.x.ports.balancerAdmin}->8081/tcp`,
        // Never on bindAddress: an exposed bind address must not expose the unauthenticated syslog listener.
        `${d.name('collector')} ${d.collectorHost} ${d.x.ports.collector}->5514/tcp`,
        `${d.name('consul')} ${d.x.bindAddress} ${d.x.ports.consul}->8500/tcp`,
      ].sort(),
    );
    for (const c of d.containers) t.not(inputs(c).publishAllPorts, true);
  },
);

behaviour('every container but the collector logs to the collector without blocking, and is created after it', (t, d) => {
  for (const c of d.containers.filter((c) => c !== d.collector)) {
    t.is(inputs(c).logDriver, 'syslog');
    t.like(inputs(c).logOpts, {
      'syslog-address': `tcp://${d.collectorHost.includes(':') ? `[${d.collectorHost}]` : d.collectorHost}:${d.x.ports.collector}`,
      'syslog-format': 'rfc5424',
      // Every version of the balancer's gateway logs into one file, under the holder's fixed name.
      tag: c === d.gateway ? d.name('balancer') : inputs(c).name,
      // A collector outage must not block a container's writes to stdout.
      mode: 'non-blocking',
    });
    t.true(c.options.dependsOn.includes(d.collector.name), `${inputs(c).name} dependsOn the collector`);
  }
  t.not(inputs(d.collector).logDriver, 'syslog');
});

behaviour(
  'images are built locally from the repo folders on the base image (Consul on consulImage), the bundled ones after the bundle step',
  (t, d) => {
    const images = ofType(d.record, T.image);
    t.deepEqual(images.map((i) => inputs(i).imageName).sort(), [
      `cnp-activity:${d.x.stack}`,
      `cnp-balancer:${d.x.stack}`,
      `cnp-broker:${d.x.stack}`,
      `cnp-collector:${d.x.stack}`,
      `cnp-consul:${d.x.stack}`,
      `cnp-service:${d.x.stack}`,
    ]);
    const ownBase: Record<string, string> = { [`cnp-consul:${d.x.stack}`]: d.x.consulImage, [`cnp-broker:${d.x.stack}`]: d.x.natsImage };
    for (const image of images) {
      t.is(inputs(image).skipPush, true);
      t.is(inputs(image).build.args.BASE_IMAGE, ownBase[inputs(image).imageName] ?? d.x.baseImage);
      t.regex(inputs(image).build.context, /\/(service|activity|balancer|collector|consul|broker)$/);
      t.is(inputs(image).build.dockerfile, `${inputs(image).build.context}/Dockerfile`);
    }
    const bundle = ofType(d.record, T.command).find((c) => c.name === 'bundle-build')!;
    t.is(inputs(bundle).create, 'npm run build');
    for (const part of ['service', 'activity', 'balancer']) {
      const image = images.find((i) => inputs(i).imageName === `cnp-${part}:${d.x.stack}`)!;
      t.deepEqual(image.options.dependsOn, [bundle.name], `${part} image waits for the bundle`);
      t.true(inputs(bundle).triggers!.includes(inputs(image).build.args.SOURCE_HASH));
    }
  },
);

behaviour('containers run the built images by id, so a rebuild replaces them', (t, d) => {
  const images = ofType(d.record, T.image);
  const builtIds = new Set(images.map((i) => outputs(i).repoDigest));
  for (const image of images) t.regex(outputs(image).repoDigest, SHA256_ID);
  t.is(builtIds.size, 6);
  for (const c of d.containers) t.true(builtIds.has(inputs(c).image), `${inputs(c).name} runs a built image`);
});

behaviour(
  "fixed-name containers are deleted before they are replaced; replicas of either service and the balancer's gateway are not (their names change)",
  (t, d) => {
    for (const c of d.containers) {
      const versioned = [...d.replicaNames, ...d.activityNames, inputs(d.gateway).name].includes(inputs(c).name);
      t.is(c.options.deleteBeforeReplace, !versioned, `${inputs(c).name} deleteBeforeReplace`);
    }
  },
);

behaviour('every container restarts unless stopped, has a memory limit without swap, and a health check whose edit replaces it', (t, d) => {
  for (const c of d.containers) {
    t.true(['unless-stopped', 'always'].includes(inputs(c).restart));
    t.true(inputs(c).memory >= 16 && inputs(c).memory <= 1024);
    t.is(inputs(c).memorySwap, inputs(c).memory, `${inputs(c).name} declares its swap limit (no swap)`);
    t.truthy(inputs(c).healthcheck?.tests?.length, `${inputs(c).name} has a health check`);
    t.deepEqual(c.options.replaceOnChanges, ['healthcheck', 'tmpfs'], `${inputs(c).name}: a health check or tmpfs edit replaces`);
  }
});

/** Each role's hardening, stated in full (infra/container-settings.ts ROLE_SETTINGS and hardening()). */
const HARDENED = {
  consul: { user: 'consul', memory: 256, cpus: '1', tmpfs: { '/tmp': 'rw,noexec,nosuid,nodev,size=16m' } },
  collector: {
    user: '10001:10001',
    memory: 128,
    cpus: '0.5',
    tmpfs: {
      '/run/syslog-ng': 'rw,noexec,nosuid,nodev,size=1m,uid=10001,gid=10001',
      '/var/lib/syslog-ng': 'rw,noexec,nosuid,nodev,size=1m,uid=10001,gid=10001',
      '/tmp': 'rw,noexec,nosuid,nodev,size=8m',
    },
  },
  replica: { user: '10001:10001', memory: 256, cpus: '1', tmpfs: { '/tmp': 'rw,noexec,nosuid,nodev,size=16m' } },
  balancer: { user: '10001:10001', memory: 256, cpus: '1', tmpfs: { '/tmp': 'rw,noexec,nosuid,nodev,size=64m' } },
  'balancer-ports': { user: '10001:10001', memory: 16, cpus: '0.1', tmpfs: {} },
  activity: { user: '10001:10001', memory: 256, cpus: '1', tmpfs: { '/tmp': 'rw,noexec,nosuid,nodev,size=16m' } },
  broker: { user: '10001:10001', memory: 256, cpus: '1', tmpfs: { '/tmp': 'rw,noexec,nosuid,nodev,size=8m' } },
};

behaviour(
  'every container is hardened: its user, a read-only root with tmpfs scratch, no capability, no-new-privileges, memory, CPU and process limits',
  (t, d) => {
    const roleOf = (c: RecordedResource) =>
      inputs(c).labels.find((l) => l.label === 'io.consul-nginx-pulumi.role')!.value as keyof typeof HARDENED;
    t.deepEqual(
      d.containers.map(roleOf).sort(),
      [
        'balancer',
        'balancer-ports',
        'broker',
        'collector',
        'consul',
        ...d.replicaNames.map(() => 'replica' as const),
        ...d.activityNames.map(() => 'activity' as const),
      ].sort(),
    );
    for (const c of d.containers) {
      const role = roleOf(c);
      const x = HARDENED[role];
      t.deepEqual(
        {
          user: inputs(c).user,
          readOnly: inputs(c).readOnly,
          tmpfs: inputs(c).tmpfs,
          capabilities: inputs(c).capabilities,
          securityOpts: inputs(c).securityOpts,
          memory: inputs(c).memory,
          memorySwap: inputs(c).memorySwap,
          cpus: inputs(c).cpus,
          ulimits: inputs(c).ulimits,
          privileged: inputs(c).privileged,
        },
        {
          user: x.user,
          readOnly: true,
          tmpfs: x.tmpfs,
          capabilities: { drops: ['ALL'] },
          securityOpts: ['no-new-privileges:true'],
          memory: x.memory,
          memorySwap: x.memory,
          cpus: x.cpus,
          ulimits: [{ name: 'nproc', soft: 4096, hard: 4096 }],
          privileged: undefined,
        },
        `${inputs(c).name} (${role})`,
      );
      // Data that outlives a container is on a named volume, never in the (read-only) image layers.
      for (const v of inputs(c).volumes ?? []) t.truthy(v.volumeName, `${inputs(c).name} mounts only named volumes`);
    }
  },
);

behaviour('Consul runs as a single server with its UI, its data on a named volume', (t, d) => {
  const consulData = ofType(d.record, T.volume).find((v) => inputs(v).name === d.name('consul-data'))!;
  t.deepEqual(inputs(d.consul).entrypoints, ['consul']);
  t.deepEqual(inputs(d.consul).command.slice(0, 7), [
    'agent',
    '-server',
    '-bootstrap-expect=1',
    '-ui',
    '-client=0.0.0.0',
    '-bind=0.0.0.0',
    '-data-dir=/consul/data',
  ]);
  for (const limit of ['http_max_conns_per_client = 100', 'kv_max_value_size = 65536'])
    t.true(
      inputs(d.consul).command.includes(`-hcl=limits { ${limit} }`),
      `Consul's own limit ${limit}, the one the tests' agents run with`,
    );
  t.deepEqual(inputs(d.consul).volumes, [
    { volumeName: inputs(consulData).name, containerPath: '/consul/data' },
    { volumeName: d.name('secrets-consul'), containerPath: '/run/secrets', readOnly: true },
  ]);
});

behaviour('the collector keeps its files on a volume, and the deploy waits until it listens', (t, d) => {
  const logs = ofType(d.record, T.volume).find((v) => inputs(v).name === d.name('logs'))!;
  t.deepEqual(inputs(d.collector).volumes, [{ volumeName: inputs(logs).name, containerPath: '/var/log/stack' }]);
  t.is(inputs(d.collector).wait, true);
});

behaviour(
  'each replica registers under its own name, finds Consul by name, is ready only once passing, and drains before removal',
  (t, d) => {
    for (const replicaName of d.replicaNames) {
      const replica = containerNamed(d.record, replicaName);
      const vars = env(replica);
      t.is(vars.SERVICE_ID, replicaName);
      // The engine's readiness gate: healthy once Consul lists the replica as passing.
      t.true(inputs(replica).wait);
      t.deepEqual(inputs(replica).healthcheck?.tests, ['CMD', 'node', '/app/readiness-probe.js']);
      t.is(vars.SERVICE_NAME, d.x.serviceName);
      t.is(vars.NATS_SERVICE, 'nats', 'its outbox relay finds the broker in Consul under this name');
      t.is(vars.OUTBOX_MAX_ENTRIES, String(d.x.outboxMaxEntries), 'outboxMaxEntries');
      t.is(vars.USER_EVENTS_REPLICAS, '1', 'one broker on one host: one copy of the stream');
      t.is(vars.CONSUL_HTTP_ADDR, `http://${d.name('consul')}:8500`);
      t.false('SERVICE_ADDRESS' in vars);
      t.true(inputs(replica).destroyGraceSeconds >= 10);
      t.true(replica.options.dependsOn.includes(d.consul.name));
    }
  },
);

behaviour(
  'each activity replica registers as activity under its own name with its role token, finds the broker in Consul, starts after it is registered, and drains before removal',
  (t, d) => {
    const registration = ofType(d.record, T.command).find((c) => c.name === 'broker-registration')!;
    for (const activityName of d.activityNames) {
      const replica = containerNamed(d.record, activityName);
      const vars = env(replica);
      t.like(vars, {
        SERVICE_NAME: 'activity',
        SERVICE_ID: activityName,
        NATS_SERVICE: 'nats',
        CONSUL_HTTP_ADDR: `http://${d.name('consul')}:8500`,
        PORT: '8080',
      });
      t.false('ROUTES' in vars, "ROUTES is left to the service's default, /api/activity");
      t.is(vars.ACTIVITY_DURABLE_INACTIVE_SECONDS, String(d.x.activityDurableInactiveSeconds), 'activityDurableInactiveSeconds');
      t.false('SERVICE_ADDRESS' in vars);
      t.is(vars.CONSUL_HTTP_TOKEN_FILE, '/run/secrets/consul-token');
      t.deepEqual(inputs(replica).volumes, [{ volumeName: d.name('secrets-activity'), containerPath: '/run/secrets', readOnly: true }]);
      t.not(secretFile(d, '/secrets/activity/consul-token'), secretFile(d, '/secrets/replica/consul-token'), 'a token of its own role');
      t.true(inputs(replica).wait);
      t.true(inputs(replica).destroyGraceSeconds >= 10);
      t.deepEqual(inputs(replica).ports, undefined);
      for (const dep of [d.consul.name, d.nats.name, registration.name]) t.true(replica.options.dependsOn.includes(dep), dep);
    }
  },
);

behaviour(
  'the broker runs nats-server with JetStream, its stream on a named volume, checked on /healthz, unpublished, logging to the collector',
  (t, d) => {
    const data = ofType(d.record, T.volume).find((v) => inputs(v).name === d.name('nats-data'))!;
    t.truthy(data);
    t.deepEqual(inputs(d.nats).volumes, [{ volumeName: inputs(data).name, containerPath: '/data' }]);
    t.deepEqual(inputs(d.nats).entrypoints, ['nats-server']);
    t.deepEqual(inputs(d.nats).command, [
      '--config=/etc/cnp/nats-server.conf',
      '--jetstream',
      '--store_dir=/data',
      '--port=4222',
      '--http_port=8222',
      `--server_name=${d.name('nats')}`,
    ]);
    t.deepEqual(inputs(d.nats).healthcheck?.tests, ['CMD', 'wget', '-q', '-T', '2', '-O', '/dev/null', 'http://127.0.0.1:8222/healthz']);
    t.is(inputs(d.nats).ports, undefined);
    t.is(inputs(d.nats).logDriver, 'syslog');
    t.is(inputs(d.nats).restart, 'unless-stopped');
    t.true(inputs(d.nats).wait, 'the services that depend on it start once it answers');
  },
);

behaviour(
  "the broker is registered in Consul by a step after the ACL init, with the broker role's token, on the one agent, checked by container name",
  (t, d) => {
    const step = ofType(d.record, T.command).find((c) => c.name === 'broker-registration')!;
    t.is(inputs(step).create, 'node --import tsx infra/register-broker.ts');
    const acl = ofType(d.record, T.command).find((c) => c.name === 'consul-acl-init')!;
    t.is(
      inputs(step).environment!.CONSUL_HTTP_ADDR,
      inputs(acl).environment!.CONSUL_HTTP_ADDR,
      "Consul's published port, as the ACL init uses",
    );
    t.like(inputs(step).environment, { BROKER_ADDRESS: d.name('nats'), BROKER_PORT: '4222', BROKER_MONITOR_PORT: '8222' });
    t.regex(inputs(step).environment!.CONSUL_HTTP_TOKEN, /^[0-9a-f-]{36}$/);
    t.not(inputs(step).environment!.CONSUL_HTTP_TOKEN, inputs(acl).environment!.CONSUL_HTTP_TOKEN, 'not the management token');
    t.false('ACL_SSH_TARGET' in inputs(step).environment!);
    t.true(step.secretInputs.includes('environment'));
    t.deepEqual(step.options.dependsOn, ['consul-agent', 'consul-acl-init']);
    // A new Consul container or data volume has lost the agent's services: the step runs again.
    t.deepEqual(
      inputs(step).triggers!.slice(1),
      [`${d.consul.name}-id`, d.name('consul-data')],
      'the container id (mocked) and the volume',
    );
  },
);

behaviour(
  "the balancer's holder publishes its ports, sets tcp_migrate_req for its namespace, and stays when the balancer is replaced",
  (t, d) => {
    const holder = d.balancerPorts;
    t.is(holder.name, 'balancer-ports');
    t.deepEqual(inputs(holder).healthcheck?.tests, ['NONE']);
    t.is(inputs(holder).command[0], 'sh', 'it only waits');
    t.deepEqual((holder.inputs as { sysctls?: Record<string, string> }).sysctls, { 'net.ipv4.tcp_migrate_req': '1' });
    // A new balancer image never replaces it: it runs nothing of the image.
    t.deepEqual(holder.options.ignoreChanges, ['image']);
    // An existing stack's one balancer container becomes the holder, deleted before it is replaced.
    t.deepEqual(holder.options.aliases, ['balancer-container']);
    t.true(holder.options.deleteBeforeReplace);
    t.deepEqual(
      inputs(holder).networksAdvanced.map((n) => n.name),
      [d.name('net')],
    );
  },
);

behaviour(
  'the balancer follows every service in Consul, limits each client to gatewayRateLimit and listens on 8080 on all its interfaces',
  (t, d) => {
    const balancer = d.gateway;
    t.false('SERVICE_NAME' in env(balancer), 'the gateway follows every service that asks for a route');
    t.like(env(balancer), {
      CONSUL_HTTP_ADDR: `http://${d.name('consul')}:8500`,
      RATE_LIMIT_PER_CLIENT: String(d.x.gatewayRateLimit),
      LISTEN_PORT: '8080',
      LISTEN_ADDRESS: '0.0.0.0',
      ADMIN_PORT: '8081',
      ADMIN_ADDRESS: '0.0.0.0',
      // Old and new share the ports while one replaces the other.
      REUSE_PORT: 'true',
      WORK_DIR: '/tmp/balancer',
    });
    // Healthy once its own nginx (the admin socket in WORK_DIR, never the shared port) serves what Consul said;
    // the engine waits for that before it deletes the old one.
    t.deepEqual(inputs(balancer).healthcheck?.tests, ['CMD', 'node', '/app/health-probe.js']);
    t.true(inputs(balancer).wait);
    t.true(balancer.options.dependsOn.includes(d.consul.name));
  },
);

behaviour(
  'without dockerHost one explicit provider for the local engine (no host: it honours DOCKER_HOST) carries every Docker resource',
  (t, d) => {
    const providers = ofType(d.record, T.provider);
    t.deepEqual(
      providers.map((p) => [p.name, inputs(p).host]),
      [['docker-local', undefined]],
    );
    for (const r of d.record.resources.filter((r) => r.type.startsWith('docker:'))) {
      t.is(r.options.provider, 'docker-local', `${r.name} names its provider`);
    }
  },
);

behaviour('Consul gossip is encrypted with the key the stack generated once, held as a secret', (t, d) => {
  const keyCommand = ofType(d.record, T.command).find((c) => c.name === 'consul-gossip-key')!;
  t.is(inputs(keyCommand).create, GOSSIP_KEY_SCRIPT);
  // No triggers and constant inputs: the engine never runs it again, so the key stays.
  t.is(inputs(keyCommand).triggers, undefined);
  t.deepEqual(inputs(d.consul).command.slice(-2), ['-config-file=/run/secrets/agent.hcl', '-disable-keyring-file']);
  t.true(secretFile(d, '/secrets/consul/agent.hcl').startsWith(`encrypt = "${MOCK_GOSSIP_KEY}"\n`));
  t.true(d.secretsHolder.secretInputs.includes('uploads'), 'the files are secret inputs of the holder');
});

behaviour(
  'no token and no gossip key in a running container: each reaches its role as a file, from a holder that is created and never started',
  (t, d) => {
    const management = String(d.record.outputs.consulToken);
    const secrets = [
      management,
      String(d.record.outputs.balancerAdminToken),
      MOCK_GOSSIP_KEY,
      ...['replica', 'activity', 'balancer'].map((role) => secretFile(d, `/secrets/${role}/consul-token`)),
    ];
    t.is(new Set(secrets).size, secrets.length);
    for (const container of d.containers) {
      const text = JSON.stringify(container.inputs);
      t.deepEqual(secrets.filter((secret) => text.includes(secret)).length, 0, `${container.name} holds no secret`);
    }
    t.like(inputs(d.secretsHolder), { start: false, mustRun: false });
    t.is(secretFile(d, '/secrets/consul/management-token'), management);
    t.is(secretFile(d, '/secrets/balancer/admin-token'), String(d.record.outputs.balancerAdminToken));
    t.is(env(d.gateway).ADMIN_TOKEN_FILE, '/run/secrets/admin-token', 'the admin listener asks for it');
    t.deepEqual(
      (d.secretsHolder.inputs.uploads as { file: string; permissions: string }[]).map((u) => `${u.file} ${u.permissions}`),
      [
        '/secrets/activity/consul-token 0444',
        '/secrets/balancer/consul-token 0444',
        '/secrets/balancer/admin-token 0444',
        '/secrets/consul/agent.hcl 0444',
        '/secrets/consul/management-token 0444',
        '/secrets/replica/consul-token 0444',
      ],
    );
  },
);

behaviour('the stack outputs give the balancer, evidence page and Consul UI URLs, the replica names and the logs command', (t, d) => {
  t.is(d.record.outputs.balancerUrl, `http://${d.urlHost}:${d.x.ports.balancer}`);
  t.is(d.record.outputs.balancerAdminUrl, `http://${d.urlHost}:${d.x.ports.balancerAdmin}`);
  t.is(d.record.outputs.evidencePageUrl, `http://${d.urlHost}:${d.x.ports.balancerAdmin}/_balancer/evidence`);
  t.is(d.record.outputs.consulUiUrl, `http://${d.urlHost}:${d.x.ports.consul}/ui/`);
  t.deepEqual(d.record.outputs.replicaNames, d.replicaNames);
  t.deepEqual(d.record.outputs.activityReplicaNames, d.activityNames);
  t.is(d.record.outputs.logsCommand, `docker exec ${d.name('collector')} tail -n 100 -F /var/log/stack/all.log`);
});

test(`replicas ${MAX_REPLICAS} (the maximum) declares that many distinct replicas`, async (t) => {
  const record = await recordStack({ config: { replicas: MAX_REPLICAS } });
  t.is((record.outputs.replicaNames as string[]).length, MAX_REPLICAS);
  t.is(ofType(record, T.container).length, MAX_REPLICAS + 1 + 6);
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

test('raising activityReplicas from 1 to 3 adds activity replicas 2 and 3 only; hello replicas and everything else stay identical', async (t) => {
  const one = byKey(await recordStack({ config: { replicas: 2, activityReplicas: 1 } }));
  const three = byKey(await recordStack({ config: { replicas: 2, activityReplicas: 3 } }));
  const added = [...three.keys()].filter((k) => !one.has(k));
  t.deepEqual(added, [`${T.container}::activity-2`, `${T.container}::activity-3`]);
  for (const key of added) t.regex(inputs(three.get(key)!).name, /^cnp-dev-activity-[23]-[0-9a-f]{12}$/);
  for (const [key, before] of one) t.deepEqual(three.get(key), before, `${key} unchanged`);
});

test('scaling either service touches only its own containers', async (t) => {
  const base = byKey(await recordStack({ config: { replicas: 2, activityReplicas: 2 } }));
  const moreHello = byKey(await recordStack({ config: { replicas: 4, activityReplicas: 2 } }));
  const fewerActivity = byKey(await recordStack({ config: { replicas: 2, activityReplicas: 1 } }));
  const differing = (a: Map<string, RecordedResource>, b: Map<string, RecordedResource>) =>
    [...new Set([...a.keys(), ...b.keys()])].filter((k) => !isDeepStrictEqual(a.get(k), b.get(k))).sort();
  t.deepEqual(differing(base, moreHello), [`${T.container}::replicas-3`, `${T.container}::replicas-4`]);
  t.deepEqual(differing(base, fewerActivity), [`${T.container}::activity-2`]);
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
  for (const c of ofType(record, T.command)) t.is(c.options.provider, undefined);
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
  ['activityReplicas', '0'],
  ['activityReplicas', String(MAX_REPLICAS + 1)],
  ['gatewayRateLimit', '-1'],
  ['gatewayRateLimit', '1.5'],
  ['natsImage', 'nats 2.9'],
];

for (const [key, value] of badConfigs) {
  test(`the program stops on ${key}=${JSON.stringify(value)} before declaring any resource`, async (t) => {
    const error = (await t.throwsAsync(recordStack({ config: { [key]: value } }), { instanceOf: Error })) as ProgramError;
    t.true(error.message.includes(`consul-nginx-pulumi:${key} = ${JSON.stringify(value)} is not allowed: use `), error.message);
    t.deepEqual(error.resources, []);
  });
}

test('publicTls on: the stack makes a CA and a certificate for the public address, the balancer gets both files, balancerUrl is https and the CA an output', async (t) => {
  const record = await recordStack({ stack: 'tls', config: { publicTls: 'on', balancerHttpsPort: 18443 } });
  const steps = ofType(record, T.command);
  const ca = steps.find((c) => c.name === 'public-tls-ca')!;
  const own = steps.find((c) => c.name === PUBLIC_TLS_STEP)!;
  t.is(inputs(ca).create, `${CONSUL_TLS_SCRIPT} ca`);
  t.is(inputs(own).create, `${CONSUL_TLS_SCRIPT} agent`);
  t.is(inputs(own).environment!.SANS, 'DNS:localhost,IP:127.0.0.1,IP:::1');
  t.is(inputs(own).environment!.CA_CERT, mockPem('public-tls-ca').split('-----BEGIN PRIVATE KEY')[0]);
  t.is(record.outputs.balancerUrl, 'https://127.0.0.1:18443');
  t.is(record.outputs.balancerCaCertificate, inputs(own).environment!.CA_CERT, 'the CA is an output');
  const holder = ofType(record, T.container).find((c) => c.inputs.start === false)!;
  const secretFile = (file: string) => (holder.inputs.uploads as { file: string; content: string }[]).find((u) => u.file === file)?.content;
  t.is(secretFile('/secrets/balancer/public-cert.pem'), mockPem(PUBLIC_TLS_STEP).split('-----BEGIN PRIVATE KEY')[0]);
  t.true(secretFile('/secrets/balancer/public-key.pem')!.includes(`mock key of ${PUBLIC_TLS_STEP}`));
  const gateway = ofType(record, T.container).find((c) => c.name === 'balancer-gateway')!;
  t.like(env(gateway), { LISTEN_PORT: '8443', PUBLIC_HTTP: 'redirect', HTTP_REDIRECT_PORT: '8080', PUBLIC_HTTPS_PORT: '18443' });
  // Off, none of it is declared.
  const off = await recordStack({ stack: 'tls' });
  t.false(ofType(off, T.command).some((c) => c.name.startsWith('public-tls')));
  t.is(off.outputs.balancerCaCertificate, '');
});
