// Consul's ACLs on the recorded stack: what the agent is told, which token each role gets, that every
// token is a Pulumi secret, and that the ACL step runs after Consul and before the roles that need it.
import test from 'ava';
import { UUID_COMMAND } from '../../infra/consul-acl';
import { activityRole, agentRole, balancerRole, brokerRole, replicaRole, roleToken } from '../../lib/consul-acl';
import { recordStack, type RecordedResource, type RecordedStack } from '../helpers/record-stack';

const CONTAINER = 'docker:index/container:Container';
const COMMAND = 'command:local:Command';

const CASES = [
  { label: 'default image hashicorp/consul:1.20', config: {}, service: 'hello', tokenKey: 'initial_management' },
  {
    label: 'offline image cnp-consul:1.8.7, service echo',
    config: { consulImage: 'cnp-consul:1.8.7', serviceName: 'echo' },
    service: 'echo',
    tokenKey: 'master',
  },
] as const;

const named = (record: RecordedStack, type: string, name: string): RecordedResource => {
  const found = record.resources.find((r) => r.type === type && r.name === name);
  if (!found) throw new Error(`no ${type} ${name} in the record`);
  return found;
};
/** A file the host's holder of secret files uploads (infra/secret-files.ts), by its path in the holder. */
const uploaded = (record: RecordedStack, holder: string, file: string): string | undefined =>
  (named(record, CONTAINER, holder).inputs.uploads as { file: string; content: string }[]).find((u) => u.file === file)?.content;
/** The token a role's container reads: the file its env names, in the role's secrets volume. */
const tokenOf = (record: RecordedStack, holder: string, container: RecordedResource, role: string): string | undefined => {
  if (envOf(container).CONSUL_HTTP_TOKEN_FILE !== '/run/secrets/consul-token') return undefined;
  const mounted = (container.inputs.volumes as { volumeName: string; containerPath: string; readOnly: boolean }[]).find(
    (v) => v.containerPath === '/run/secrets',
  );
  if (!mounted?.readOnly || !mounted.volumeName.endsWith(`-secrets-${role}`)) return undefined;
  return uploaded(record, holder, `/secrets/${role}/consul-token`);
};
const envOf = (r: RecordedResource) =>
  Object.fromEntries((r.inputs.envs as string[]).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));

for (const c of CASES) {
  test(`Consul's ACLs: default deny, tokens per role, all of them secrets (${c.label})`, async (t) => {
    const record = await recordStack({ config: c.config });
    const management = record.outputs.consulToken as string;
    t.regex(management, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    t.deepEqual(
      record.secretOutputs.sort(),
      ['balancerAdminToken', 'consulToken'],
      'only the two tokens are secret outputs, shown with --show-secrets',
    );

    // Generated once: a command that prints a UUID, with no triggers, so it never runs again.
    const generator = named(record, COMMAND, 'consul-management-token');
    t.deepEqual(generator.inputs, { create: UUID_COMMAND });

    const consul = named(record, CONTAINER, 'consul-agent');
    const node = (consul.inputs.command as string[]).find((a) => a.startsWith('-node='))!.slice('-node='.length);
    const holder = 'consul-secrets-holder';
    t.is(
      uploaded(record, holder, '/secrets/consul/agent.hcl')!.split('\n')[1],
      'acl { enabled = true default_policy = "deny" down_policy = "extend-cache" enable_token_persistence = true ' +
        `tokens { ${c.tokenKey} = "${management}" agent = "${roleToken(management, agentRole(node).role)}" } }`,
    );
    t.true((consul.inputs.command as string[]).includes('-config-file=/run/secrets/agent.hcl'));
    t.is(envOf(consul).CONSUL_HTTP_TOKEN_FILE, '/run/secrets/management-token', "the health check's CLI authenticates with it");
    t.is(uploaded(record, holder, '/secrets/consul/management-token'), management);
    t.deepEqual(consul.secretInputs, []);

    const replicas = record.resources.filter((r) => r.type === CONTAINER && r.options.parent === 'replicas');
    t.true(replicas.length > 0);
    for (const replica of replicas) {
      t.is(tokenOf(record, holder, replica, 'replica'), roleToken(management, replicaRole(c.service).role));
      t.deepEqual(replica.secretInputs, []);
      t.true(replica.options.dependsOn.includes('consul-acl-init'), 'replicas start once their token exists');
    }
    const balancer = named(record, CONTAINER, 'balancer-gateway');
    t.is(tokenOf(record, holder, balancer, 'balancer'), roleToken(management, balancerRole().role));
    t.deepEqual(balancer.secretInputs, []);
    t.true(balancer.options.dependsOn.includes('consul-acl-init'));
    const activity = record.resources.filter((r) => r.type === CONTAINER && r.options.parent === 'activity');
    t.true(activity.length > 0);
    for (const replica of activity) {
      t.is(tokenOf(record, holder, replica, 'activity'), roleToken(management, activityRole().role));
      t.deepEqual(replica.secretInputs, []);
      t.true(replica.options.dependsOn.includes('consul-acl-init'));
    }
    const registration = named(record, COMMAND, 'broker-registration');
    const brokerToken = (registration.inputs.environment as Record<string, string>).CONSUL_HTTP_TOKEN;
    t.is(brokerToken, roleToken(management, brokerRole().role));
    t.deepEqual(registration.secretInputs, ['environment']);
    const tokens = new Set([
      management,
      tokenOf(record, holder, replicas[0], 'replica'),
      tokenOf(record, holder, balancer, 'balancer'),
      tokenOf(record, holder, activity[0], 'activity'),
      brokerToken,
    ]);
    t.is(tokens.size, 5, 'every role has its own token');

    const init = named(record, COMMAND, 'consul-acl-init');
    t.deepEqual(init.inputs.environment, {
      CONSUL_HTTP_ADDR: 'http://127.0.0.1:8500',
      CONSUL_HTTP_TOKEN: management,
      ACL_SERVICE_NAME: c.service,
      ACL_AGENT_NODES: node,
    });
    t.deepEqual(init.secretInputs, ['environment']);
    t.true(init.options.dependsOn.includes('consul-agent'), 'it runs once Consul is healthy');
    // A new Consul container or data volume may hold no ACL state: the step runs again.
    t.true((init.inputs.triggers as string[]).includes('consul-agent-id'));
    t.true((init.inputs.triggers as string[]).includes(named(record, 'docker:index/volume:Volume', 'consul-data').inputs.name as string));
  });
}

test('the generated token is stable: a second recording of the same stack (another `pulumi up`) gives the same', async (t) => {
  const [a, b] = [await recordStack(), await recordStack({ config: { replicas: 3 } })];
  t.is(a.outputs.consulToken, b.outputs.consulToken);
  t.deepEqual(named(a, CONTAINER, 'consul-agent').inputs.command, named(b, CONTAINER, 'consul-agent').inputs.command);
});

// ---- on VMs: every agent with ACLs, the init step through an SSH tunnel to the first server's VM ----

const VMS = [
  {
    name: 'vm1',
    ssh: { host: '127.0.0.1', port: 2201, user: 'root' },
    privateAddress: '172.31.0.11',
    publicAddress: '127.0.0.1',
    roles: ['discovery', 'balancer'],
  },
  {
    name: 'vm2',
    ssh: { host: '127.0.0.1', port: 2202, user: 'deploy' },
    privateAddress: '172.31.0.12',
    roles: ['collector', 'replicas', 'broker', 'activity'],
  },
  { name: 'vm3', ssh: { host: 'vm3.example', user: 'root' }, privateAddress: '172.31.0.13', roles: ['replicas'] },
];
const SSH_KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n';

test("on VMs every agent has ACLs with its own agent token; replicas and the balancer get their role's token after the init step", async (t) => {
  const record = await recordStack({
    config: { vms: VMS, replicas: 4, consulImage: 'cnp-consul:1.8.7' },
    secrets: { sshPrivateKey: SSH_KEY },
  });
  const management = record.outputs.consulToken as string;
  const agentTokens = new Set<string>();
  for (const vm of ['vm1', 'vm2', 'vm3']) {
    const agent = named(record, CONTAINER, `${vm}-consul-agent`);
    const acl = uploaded(record, `${vm}-consul-secrets-holder`, '/secrets/consul/agent.hcl')!.split('\n')[1];
    const agentToken = roleToken(management, agentRole(vm).role);
    agentTokens.add(agentToken);
    // vm1 runs the server (discovery): only a server holds the management token, for its raft health check.
    const server = vm === 'vm1';
    t.is(
      acl,
      'acl { enabled = true default_policy = "deny" down_policy = "extend-cache" enable_token_persistence = true ' +
        `tokens { ${server ? `master = "${management}" ` : ''}agent = "${agentToken}" } }`,
    );
    t.false(JSON.stringify(agent.inputs).includes(management), `${vm}: the management token is nowhere in its inputs`);
    t.deepEqual(agent.secretInputs, []);
    if (server) {
      t.is(envOf(agent).CONSUL_HTTP_TOKEN_FILE, '/run/secrets/management-token', `${vm}: the health check's CLI authenticates with it`);
      t.is(uploaded(record, `${vm}-consul-secrets-holder`, '/secrets/consul/management-token'), management);
    } else {
      t.false('CONSUL_HTTP_TOKEN_FILE' in envOf(agent), `${vm}: a client holds no management token`);
      t.is(uploaded(record, `${vm}-consul-secrets-holder`, '/secrets/consul/management-token'), undefined);
      t.deepEqual((agent.inputs.healthcheck as { tests: string[] }).tests.slice(0, 3), ['CMD', 'consul', 'catalog']);
    }
  }
  t.is(agentTokens.size, 3, 'each VM agent has its own token');

  const replicas = record.resources.filter((r) => r.type === CONTAINER && /^vm\d-replicas-\d+$/.test(r.name));
  t.is(replicas.length, 4);
  for (const replica of [...replicas, named(record, CONTAINER, 'vm1-balancer-gateway')]) {
    const [role, acl] = replica.name.includes('balancer') ? ['balancer', balancerRole()] : ['replica', replicaRole('hello')];
    const holder = `${replica.name.split('-')[0]}-consul-secrets-holder`;
    t.is(tokenOf(record, holder, replica, role), roleToken(management, acl.role), replica.name);
    t.deepEqual(replica.secretInputs, []);
    t.true(replica.options.dependsOn.includes('consul-acl-init'), `${replica.name} starts once its token exists`);
  }
});

test("on VMs the ACL init step reaches the first server through an SSH tunnel with the docker providers ssh options, after every server's agent", async (t) => {
  const vms = [
    VMS[0],
    { ...VMS[1], roles: ['discovery', 'collector', 'replicas', 'broker', 'activity'] },
    { ...VMS[2], roles: ['discovery', 'replicas'] },
  ];
  const record = await recordStack({ config: { vms, consulUiPort: 8600 }, secrets: { sshPrivateKey: SSH_KEY } });
  const management = record.outputs.consulToken as string;
  const init = named(record, COMMAND, 'consul-acl-init');
  const providerOpts = JSON.parse(named(record, 'pulumi:providers:docker', 'vm1-docker').inputs.sshOpts as string) as string[];
  t.true(providerOpts.includes('-i'));
  t.is(init.inputs.create, 'node --import tsx infra/acl-init.ts');
  t.deepEqual(init.inputs.environment, {
    // Consul's address on the far side of the tunnel: the VM's loopback, where the agent's API listens.
    CONSUL_HTTP_ADDR: 'http://127.0.0.1:8600',
    CONSUL_HTTP_TOKEN: management,
    ACL_SERVICE_NAME: 'hello',
    ACL_AGENT_NODES: 'vm1,vm2,vm3',
    ACL_SSH_TARGET: 'root@127.0.0.1',
    ACL_SSH_PORT: '2201',
    ACL_SSH_OPTS: JSON.stringify(providerOpts),
  });
  t.deepEqual(init.secretInputs, ['environment']);
  t.deepEqual(
    [...init.options.dependsOn].sort(),
    ['ssh-files', 'vm1-consul-agent', 'vm2-consul-agent', 'vm3-consul-agent'],
    "after the key file and every server's agent (here every VM is a server)",
  );
  // Runs again when a server's container or data volume is new (the servers hold the ACL state).
  const triggers = init.inputs.triggers as string[];
  for (const vm of ['vm1', 'vm2', 'vm3']) {
    t.true(triggers.includes(`${vm}-consul-agent-id`), vm);
    t.true(triggers.includes(named(record, 'docker:index/volume:Volume', `${vm}-consul-data`).inputs.name as string), vm);
  }
  t.is(triggers.length, 1 + 2 * 3);
});
