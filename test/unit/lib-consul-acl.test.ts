import test from 'ava';
import {
  aclPlan,
  activityRole,
  agentAclHcl,
  balancerRules,
  consulVersionOfImage,
  deriveTokenId,
  managementTokenKey,
  outboxKeyPrefix,
  replicaRole,
  replicaRules,
  roleToken,
  stackRoles,
  usersKeyPrefix,
} from '../../lib/consul-acl';

const MANAGEMENT = '0d9db986-0adb-4d4c-a2df-09081559dc58';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test("the management token's key follows the image's version: master before 1.11, initial_management after and when unknown", (t) => {
  t.deepEqual(consulVersionOfImage('cnp-consul:1.8.7'), { major: 1, minor: 8 });
  t.deepEqual(consulVersionOfImage('hashicorp/consul:1.20'), { major: 1, minor: 20 });
  t.deepEqual(consulVersionOfImage('registry.local:5000/consul:v1.10.3-ent'), { major: 1, minor: 10 });
  t.is(consulVersionOfImage('hashicorp/consul:latest'), undefined);
  t.is(consulVersionOfImage('registry.local:5000/consul'), undefined, 'a registry port is not a version');
  t.is(managementTokenKey({ major: 1, minor: 8 }), 'master');
  t.is(managementTokenKey({ major: 1, minor: 10 }), 'master');
  t.is(managementTokenKey({ major: 1, minor: 11 }), 'initial_management');
  t.is(managementTokenKey({ major: 1, minor: 20 }), 'initial_management');
  t.is(managementTokenKey(undefined), 'initial_management');
  t.regex(agentAclHcl({ management: 'm', agent: 'a' }, { major: 1, minor: 8 }), /tokens \{ master = "m" agent = "a" \}/);
  t.regex(agentAclHcl({ agent: 'a' }, { major: 1, minor: 8 }), /tokens \{ agent = "a" \}/, 'a client agent: no management token');
});

test('role tokens are UUIDs derived from the management token: stable, distinct per role, unrelated across management tokens', (t) => {
  const replica = roleToken(MANAGEMENT, 'replica-hello');
  t.regex(replica, UUID);
  t.is(roleToken(MANAGEMENT, 'replica-hello'), replica);
  t.not(roleToken(MANAGEMENT, 'balancer-hello'), replica);
  t.not(roleToken('another-management-token', 'replica-hello'), replica);
  t.not(deriveTokenId(MANAGEMENT, 'accessor:replica-hello'), replica, 'the AccessorID is not the SecretID');
  t.false(replica.includes(MANAGEMENT.slice(0, 8)));
});

test('the rules grant each role only what it needs', (t) => {
  t.is(usersKeyPrefix('hello'), 'hello/users');
  t.is(
    replicaRules('hello'),
    [
      'service "hello" { policy = "write" }',
      'key_prefix "hello/users/" { policy = "write" }',
      'key_prefix "hello/outbox/" { policy = "write" }',
      'service "nats" { policy = "read" }',
      'node_prefix "" { policy = "read" }',
    ].join('\n'),
  );
  // The gateway reads every service (any may ask for routes) and nothing else.
  t.is(balancerRules(), ['service_prefix "" { policy = "read" }', 'node_prefix "" { policy = "read" }'].join('\n'));
  const plan = aclPlan(MANAGEMENT, stackRoles('hello', ['node-a', 'node-b']));
  t.deepEqual(
    plan.policies.map((p) => p.name),
    ['agent-node-a', 'agent-node-b', 'replica-hello', 'balancer', 'activity', 'broker-nats'],
  );
  t.is(
    plan.policies.find((p) => p.name === 'activity')!.rules,
    ['service "activity" { policy = "write" }', 'service "nats" { policy = "read" }', 'node_prefix "" { policy = "read" }'].join('\n'),
  );
  // The broker's registration token writes that one service and nothing else.
  t.is(plan.policies.find((p) => p.name === 'broker-nats')!.rules, 'service "nats" { policy = "write" }');
  t.regex(plan.policies[0].rules, /^node "node-a" \{ policy = "write" \}/);
  const replicaToken = plan.tokens.find((k) => k.policies[0] === replicaRole('hello').role)!;
  t.is(replicaToken.secretId, roleToken(MANAGEMENT, 'replica-hello'));
  t.regex(replicaToken.accessorId, UUID);
});

test("the activity role registers only its own service and reads the broker's; the outbox is beside the users", (t) => {
  t.is(outboxKeyPrefix('hello'), 'hello/outbox');
  t.is(replicaRules('hello', 'broker'), replicaRules('hello').replace('service "nats"', 'service "broker"'));
  t.deepEqual(activityRole(), {
    role: 'activity',
    description: 'replicas of the activity service activity: register activity, find the broker',
    rules: ['service "activity" { policy = "write" }', 'service "nats" { policy = "read" }', 'node_prefix "" { policy = "read" }'].join(
      '\n',
    ),
  });
  t.is(activityRole('feed').role, 'activity-feed', 'another name, another role');
  t.regex(activityRole('feed').rules, /^service "feed" \{ policy = "write" \}/);
  t.notRegex(activityRole().rules, /key_prefix/, 'it reads no key');
});
