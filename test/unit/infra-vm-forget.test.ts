// The dead-VM command's rules (scripts/vm-forget.ts) on the VM layout the program declares, recorded under the
// SDK's mock runtime: which resources belong to a VM, that nothing outside a replicas/activity VM depends on it
// (so `pulumi state delete` of exactly those drops nothing else), and which VMs it refuses, with what message.
import { isDeepStrictEqual } from 'node:util';
import test from 'ava';
import { checkForgettable, vmResources, type StateResource } from '../../scripts/vm-forget';
import { recordStack, type RecordedStack } from '../helpers/record-stack';

const vm = (name: string, port: number, address: string, roles: string[]) => ({
  name,
  ssh: { host: '127.0.0.1', port, user: 'root' },
  privateAddress: address,
  roles,
});
const COURSE_VMS = [
  vm('vm1', 2201, '172.31.0.11', ['discovery', 'balancer']),
  vm('vm2', 2202, '172.31.0.12', ['collector', 'replicas', 'broker', 'activity']),
  vm('vm3', 2203, '172.31.0.13', ['replicas', 'activity']),
];

/** The record as `pulumi stack export` would hold it: URNs, parents, provider references and dependencies. */
function asState(record: RecordedStack): StateResource[] {
  const urnOf = new Map(record.resources.map((r) => [r.name, `urn:pulumi:dev::consul-nginx-pulumi::${r.type}::${r.name}`]));
  const urn = (name: string) => urnOf.get(name)!;
  return record.resources.map((r) => ({
    urn: urn(r.name),
    type: r.type,
    custom: r.custom,
    ...(r.options.parent ? { parent: urn(r.options.parent) } : {}),
    ...(r.options.provider ? { provider: `${urn(r.options.provider)}::0f0e0d0c` } : {}),
    dependencies: r.options.dependencies.map(urn),
  }));
}

const names = (urns: string[]) => urns.map((u) => u.split('::').pop()!).sort();

test('a replicas + activity VM: its host, provider, network, Consul agent and replicas, and nothing outside depends on them', async (t) => {
  const state = asState(await recordStack({ config: { vms: COURSE_VMS, replicas: 4, activityReplicas: 2 } }));
  const { urns, dependents } = vmResources(state, 'vm3');
  t.deepEqual(names(urns), [
    'vm3',
    'vm3-activity',
    'vm3-activity-2',
    'vm3-activity-image',
    'vm3-bootstrap',
    'vm3-consul',
    'vm3-consul-agent',
    'vm3-consul-data',
    'vm3-consul-image',
    'vm3-consul-secrets',
    'vm3-consul-secrets-activity',
    'vm3-consul-secrets-consul',
    'vm3-consul-secrets-holder',
    'vm3-consul-secrets-replica',
    'vm3-consul-tls',
    'vm3-docker',
    'vm3-host-key',
    'vm3-network',
    'vm3-network-bridge',
    'vm3-replica-tls',
    'vm3-replicas',
    'vm3-replicas-2',
    'vm3-replicas-4',
    'vm3-replicas-image',
    'vm3-syslog-tls',
    'vm3-syslog-tls-files',
  ]);
  t.deepEqual(dependents, [], 'the ACL step waits for the discovery VM only; no other VM refers to vm3');
});

test('a VM that others need has dependents: the collector and broker VM, the discovery VM', async (t) => {
  const state = asState(await recordStack({ config: { vms: COURSE_VMS, replicas: 4 } }));
  const vm2 = vmResources(state, 'vm2').dependents;
  t.true(vm2.includes('vm1-balancer-gateway depends on vm2-collector-container'));
  t.true(vm2.includes('broker-registration depends on vm2-consul-agent'));
  t.deepEqual(vmResources(state, 'vm1').dependents.sort(), [
    'consul-acl-init depends on vm1-consul-agent',
    'consul-acl-init depends on vm1-consul-data',
  ]);
  t.deepEqual(vmResources(state, 'vm9'), { urns: [], dependents: [] }, 'a VM the state does not hold: nothing');
});

test('the ACL step of a stack deployed before waited for every agent: the command names that dependency', (t) => {
  const urn = (type: string, name: string) => `urn:pulumi:dev::p::${type}::${name}`;
  const host = urn('cnp:infra:VmHost', 'vm3');
  const provider = urn('cnp:infra:VmHost$pulumi:providers:docker', 'vm3-docker');
  const agent = urn('cnp:infra:ConsulAgent$docker:index/container:Container', 'vm3-consul-agent');
  const state: StateResource[] = [
    { urn: host, type: 'cnp:infra:VmHost', custom: false },
    { urn: provider, type: 'pulumi:providers:docker', custom: true, parent: host },
    { urn: agent, type: 'docker:index/container:Container', custom: true, provider: `${provider}::id-1` },
    { urn: urn('command:local:Command', 'consul-acl-init'), type: 'command:local:Command', custom: true, dependencies: [agent] },
  ];
  t.deepEqual(vmResources(state, 'vm3'), {
    urns: [host, provider, agent],
    dependents: ['consul-acl-init depends on vm3-consul-agent'],
  });
});

test('only a VM whose roles are all replicas or activity is taken; the refusal names the roles and what to do instead', (t) => {
  t.notThrows(() => checkForgettable(COURSE_VMS, 'vm3'));
  t.notThrows(() => checkForgettable([vm('vm4', 22, '10.0.0.4', ['activity'])], 'vm4'));
  const vm2 = t.throws(() => checkForgettable(COURSE_VMS, 'vm2'));
  t.regex(
    vm2.message,
    /^vm2 holds the roles collector, replicas, broker, activity: only a VM whose roles are all among replicas, activity can be left behind .* A VM with collector, broker cannot: bring it back, .*infra\/README.md/,
  );
  t.regex(
    t.throws(() => checkForgettable(COURSE_VMS, 'vm1')).message,
    /^vm1 holds the roles discovery, balancer: .*A VM with discovery, balancer cannot/,
  );
  t.regex(
    t.throws(() => checkForgettable(COURSE_VMS, 'vm7')).message,
    /^vm7 is not in the stack's vms \(vm1, vm2, vm3\): run this before removing it/,
  );
});

test('vm3 removed from vms: its replicas are declared on vm2, the ACL step names the agents left, nothing else of vm1 and vm2 changes', async (t) => {
  const key = (r: RecordedStack['resources'][number]) => `${r.type}::${r.name}`;
  const before = await recordStack({ config: { vms: COURSE_VMS, replicas: 4 } });
  const after = await recordStack({ config: { vms: COURSE_VMS.slice(0, 2), replicas: 4 } });
  const kept = new Map(before.resources.filter((r) => !r.name.startsWith('vm3')).map((r) => [key(r), r]));
  const added = after.resources.filter((r) => !kept.has(key(r))).map((r) => r.name);
  t.deepEqual(added.sort(), ['vm2-replicas-2', 'vm2-replicas-4']);
  const changed = after.resources.filter((r) => kept.has(key(r)) && !isDeepStrictEqual(r, kept.get(key(r)))).map((r) => r.name);
  t.deepEqual(changed, ['consul-acl-init']);
  const environment = (r: RecordedStack['resources'][number]) => (r.inputs.environment as Record<string, string>).ACL_AGENT_NODES;
  t.is(environment(kept.get('command:local:Command::consul-acl-init')!), 'vm1,vm2,vm3');
  t.is(environment(after.resources.find((r) => r.name === 'consul-acl-init')!), 'vm1,vm2');
  t.deepEqual(
    (after.outputs.replicaNames as string[]).map((n) => n.replace(/-[0-9a-f]{12}$/, '')),
    [1, 2, 3, 4].map((n) => `cnp-dev-replica-${n}`),
  );
});

test("the ACL step waits for the servers' agents only; the other agents start after it, when their token exists", async (t) => {
  const record = await recordStack({ config: { vms: COURSE_VMS, replicas: 4 } });
  const named = (name: string) => record.resources.find((r) => r.name === name)!;
  t.deepEqual(named('consul-acl-init').options.dependsOn, ['ssh-files', 'vm1-consul-agent']);
  t.false(named('vm1-consul-agent').options.dependsOn.includes('consul-acl-init'), 'the server comes first');
  for (const vm of ['vm2', 'vm3']) t.true(named(`${vm}-consul-agent`).options.dependsOn.includes('consul-acl-init'), vm);
});
