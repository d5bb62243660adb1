// Consul's ACLs on the recorded stack: what the agent is told, which token each role gets, that every
// token is a Pulumi secret, and that the ACL step runs after Consul and before the roles that need it.
import test from 'ava';
import { UUID_COMMAND } from '../../infra/consul-acl';
import { agentRole, balancerRole, replicaRole, roleToken } from '../../lib/consul-acl';
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
const envOf = (r: RecordedResource) =>
  Object.fromEntries((r.inputs.envs as string[]).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));

for (const c of CASES) {
  test(`Consul's ACLs: default deny, tokens per role, all of them secrets (${c.label})`, async (t) => {
    const record = await recordStack({ config: c.config });
    const management = record.outputs.consulToken as string;
    t.regex(management, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    t.deepEqual(record.secretOutputs, ['consulToken'], 'only the Consul token is a secret output, shown with --show-secrets');

    // Generated once: a command that prints a UUID, with no triggers, so it never runs again.
    const generator = named(record, COMMAND, 'consul-management-token');
    t.deepEqual(generator.inputs, { create: UUID_COMMAND });

    const consul = named(record, CONTAINER, 'discovery-consul');
    const node = (consul.inputs.command as string[]).find((a) => a.startsWith('-node='))!.slice('-node='.length);
    const acl = (consul.inputs.command as string[]).filter((a) => a.startsWith('-hcl=acl'));
    t.deepEqual(acl, [
      '-hcl=acl { enabled = true default_policy = "deny" down_policy = "extend-cache" enable_token_persistence = true ' +
        `tokens { ${c.tokenKey} = "${management}" agent = "${roleToken(management, agentRole(node).role)}" } }`,
    ]);
    t.is(envOf(consul).CONSUL_HTTP_TOKEN, management, "the health check's CLI authenticates with it");
    t.deepEqual([...consul.secretInputs].sort(), ['command', 'envs']);

    const replicas = record.resources.filter((r) => r.type === CONTAINER && r.options.parent === 'replicas');
    t.true(replicas.length > 0);
    for (const replica of replicas) {
      t.is(envOf(replica).CONSUL_HTTP_TOKEN, roleToken(management, replicaRole(c.service).role));
      t.deepEqual(replica.secretInputs, ['envs']);
      t.true(replica.options.dependsOn.includes('consul-acl-init'), 'replicas start once their token exists');
    }
    const balancer = named(record, CONTAINER, 'balancer-container');
    t.is(envOf(balancer).CONSUL_HTTP_TOKEN, roleToken(management, balancerRole(c.service).role));
    t.deepEqual(balancer.secretInputs, ['envs']);
    t.true(balancer.options.dependsOn.includes('consul-acl-init'));
    const tokens = new Set([management, envOf(replicas[0]).CONSUL_HTTP_TOKEN, envOf(balancer).CONSUL_HTTP_TOKEN]);
    t.is(tokens.size, 3, 'every role has its own token');

    const init = named(record, COMMAND, 'consul-acl-init');
    t.deepEqual(init.inputs.environment, {
      CONSUL_HTTP_ADDR: 'http://127.0.0.1:8500',
      CONSUL_HTTP_TOKEN: management,
      ACL_SERVICE_NAME: c.service,
      ACL_AGENT_NODES: node,
    });
    t.deepEqual(init.secretInputs, ['environment']);
    t.true(init.options.dependsOn.includes('discovery-consul'), 'it runs once Consul is healthy');
    // A new Consul container or data volume may hold no ACL state: the step runs again.
    t.true((init.inputs.triggers as string[]).includes('discovery-consul-id'));
    t.true(
      (init.inputs.triggers as string[]).includes(named(record, 'docker:index/volume:Volume', 'discovery-data').inputs.name as string),
    );
  });
}

test('the generated token is stable: a second recording of the same stack (another `pulumi up`) gives the same', async (t) => {
  const [a, b] = [await recordStack(), await recordStack({ config: { replicas: 3 } })];
  t.is(a.outputs.consulToken, b.outputs.consulToken);
  t.deepEqual(named(a, CONTAINER, 'discovery-consul').inputs.command, named(b, CONTAINER, 'discovery-consul').inputs.command);
});
