// Consul's ACLs as the stack sets them, against a real Consul 1.8.7: anonymous requests get nothing,
// each role's token allows only what its role needs, the replica and the balancer work end to end with
// their tokens, and the ACL init step (infra/acl-init.ts, as the stack runs it) is idempotent.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import test from 'ava';
import { startBalancer, type RunningBalancer } from '../../harness/balancer';
import { startConsul, type ConsulAgent } from '../../harness/consul';
import { stopAll } from '../../harness/processes';
import { startReplica, type Replica } from '../../harness/service';
import { roleToken } from '../../lib/consul-acl';

const SERVICE = 'hello';
let consul: ConsulAgent;
let replica: Replica;
let balancer: RunningBalancer;

/** One request to Consul's HTTP API with `token` (none: anonymous); the status and the parsed body. */
async function consulCall(method: 'GET' | 'PUT', apiPath: string, token: string | undefined, body?: unknown) {
  const res = await fetch(consul.httpAddr + apiPath, {
    method,
    headers: token ? { 'X-Consul-Token': token } : {},
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json };
}

const register = (name: string, token: string | undefined) =>
  consulCall('PUT', '/v1/agent/service/register', token, { ID: `${name}-probe`, Name: name, Address: '127.0.0.1', Port: 9 });
const putKey = (key: string, token: string | undefined) => consulCall('PUT', `/v1/kv/${key}`, token, 'x');
/** A key that exists (written by the operator in before()), so a refusal cannot be mistaken for absence. */
const KNOWN_KEY = `${SERVICE}/users/known`;
/** What reading KNOWN_KEY's prefix gives `token`: Consul 1.8 filters a recursive read (404: nothing visible). */
const listUsers = async (token: string | undefined) => (await consulCall('GET', `/v1/kv/${SERVICE}/users/?recurse`, token)).status;

test.before(async () => {
  consul = await startConsul();
  if ((await putKey(KNOWN_KEY, consul.managementToken)).status !== 200) throw new Error(`cannot write ${KNOWN_KEY} as the operator`);
  replica = await startReplica(consul, SERVICE, 'acl-1');
  balancer = await startBalancer(consul);
  await balancer.waitForUpstreams(SERVICE, 1);
});

test.after.always(async (t) => {
  if (balancer) t.log(`balancer log tail:\n${balancer.logTail(8)}`);
  await replica?.stop(3000);
  await balancer?.cleanup();
  await consul?.stop();
  await stopAll();
});

test.serial(
  'the replica and the balancer work end to end with their own tokens: a user written through the balancer is read back',
  async (t) => {
    const created = await fetch(`${balancer.url}/api/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Ann', email: 'ann@example.com' }),
    });
    t.is(created.status, 201, await created.clone().text());
    const { id } = (await created.json()) as { id: string };
    const read = await fetch(`${balancer.url}/api/users/${id}`);
    t.is(read.status, 200);
    t.is(read.headers.get('x-instance-id'), 'acl-1');
    // The key really is in Consul, under the replica's prefix (read as the operator).
    t.is((await consulCall('GET', `/v1/kv/${SERVICE}/users/${id}`, consul.managementToken)).status, 200);
  },
);

test.serial('anonymous requests get nothing: no health, no catalog, no KV, no agent, no registration, no write', async (t) => {
  t.deepEqual((await consulCall('GET', `/v1/health/service/${SERVICE}?passing`, undefined)).json, [], 'the passing replica is hidden');
  t.deepEqual((await consulCall('GET', '/v1/catalog/services', undefined)).json, {});
  t.is((await consulCall('GET', `/v1/kv/${KNOWN_KEY}`, undefined)).status, 403);
  t.is(await listUsers(undefined), 404, 'a recursive read shows nothing');
  t.is((await consulCall('GET', '/v1/agent/self', undefined)).status, 403);
  t.is((await register(SERVICE, undefined)).status, 403);
  t.is((await putKey(`${SERVICE}/users/anon`, undefined)).status, 403);
  t.is((await consulCall('GET', '/v1/acl/tokens', undefined)).status, 403);
  // The operator still sees the replica: the entries are hidden, not missing.
  t.is(((await consulCall('GET', `/v1/health/service/${SERVICE}?passing`, consul.managementToken)).json as unknown[]).length, 1);
});

test.serial('the replica token registers only its own service and writes only under its users prefix', async (t) => {
  const token = await consul.roleToken('replica', SERVICE);
  t.is((await register('other', token)).status, 403, 'another service name');
  t.is((await register('consul', token)).status, 403, "Consul's own name");
  t.is((await putKey('other/users/x', token)).status, 403, "another service's users");
  t.is((await putKey(`${SERVICE}/config`, token)).status, 403, 'its service, outside users/');
  t.is((await putKey(`${SERVICE}/users`, token)).status, 403, 'the prefix without its slash');
  t.is((await putKey('other/users/known', consul.managementToken)).status, 200);
  t.is((await consulCall('GET', '/v1/kv/other/users/known', token)).status, 403, "reading another service's key");
  t.is(await listUsers(token), 200, 'its own users it reads');
  t.is((await consulCall('GET', '/v1/acl/tokens', token)).status, 403);
  // What it is for works.
  t.is((await putKey(`${SERVICE}/users/by-test`, token)).status, 200);
  t.is((await register(SERVICE, token)).status, 200);
  t.is((await consulCall('PUT', `/v1/agent/service/deregister/${SERVICE}-probe`, token)).status, 200);
});

test.serial("the balancer token reads the service list and every service's health, and nothing else: no registration, no KV", async (t) => {
  const token = await consul.roleToken('balancer');
  const health = (await consulCall('GET', `/v1/health/service/${SERVICE}`, token)).json as Array<{
    Service: { ID: string; Tags: string[] };
  }>;
  t.deepEqual(
    health.map((e) => e.Service.ID),
    ['acl-1'],
  );
  t.deepEqual(health[0].Service.Tags, ['urlprefix-=/', 'urlprefix-/api/users'], 'the route tags the gateway routes by');
  const catalog = (await consulCall('GET', '/v1/catalog/services', token)).json as Record<string, string[]>;
  t.deepEqual([...catalog[SERVICE]].sort(), ['urlprefix-/api/users', 'urlprefix-=/']);
  t.is((await register(SERVICE, token)).status, 403);
  t.is((await putKey(`${SERVICE}/users/by-balancer`, token)).status, 403);
  t.is((await consulCall('GET', `/v1/kv/${KNOWN_KEY}`, token)).status, 403);
  t.is(await listUsers(token), 404, 'a recursive read shows nothing');
  t.is((await consulCall('GET', '/v1/agent/self', token)).status, 403);
});

test.serial('the ACL init step the stack runs creates the policies and tokens once; running it again changes nothing', async (t) => {
  const env = {
    ...process.env,
    CONSUL_HTTP_ADDR: consul.httpAddr,
    CONSUL_HTTP_TOKEN: consul.managementToken,
    ACL_SERVICE_NAME: 'initsvc',
    ACL_AGENT_NODES: 'node-a,node-b',
  };
  const root = path.resolve(__dirname, '../..');
  // The same command infra/consul-acl.ts declares, in the same folder.
  const run = () => spawnSync('node', ['--import', 'tsx', 'infra/acl-init.ts'], { cwd: root, env, encoding: 'utf8', timeout: 60_000 });
  const state = async () => {
    const policies = (await consulCall('GET', '/v1/acl/policies', consul.managementToken)).json as Array<{ ID: string; Name: string }>;
    const tokens = (await consulCall('GET', '/v1/acl/tokens', consul.managementToken)).json as Array<{
      AccessorID: string;
      Description: string;
    }>;
    return {
      policies: policies.map((p) => `${p.Name} ${p.ID}`).sort(),
      tokens: tokens.map((k) => `${k.AccessorID} ${k.Description}`).sort(),
    };
  };

  const before = await state();
  const first = run();
  t.is(first.status, 0, first.stderr);
  t.regex(first.stdout, /policy replica-initsvc created/);
  const afterFirst = await state();
  // The balancer's role reads every service, so it is one role for any service: the harness applied it
  // already for this file's balancer, and the init step updates it in place.
  t.regex(first.stdout, /policy balancer updated/);
  t.regex(first.stdout, /policy activity created/);
  t.regex(first.stdout, /policy broker-nats created/);
  const added = 'two agents, the replicas, the activity service and the broker registration; the balancer one existed';
  t.is(afterFirst.policies.length, before.policies.length + 5, added);
  t.is(afterFirst.tokens.length, before.tokens.length + 5, added);

  const second = run();
  t.is(second.status, 0, second.stderr);
  t.notRegex(second.stdout, /created/);
  t.regex(second.stdout, /policy replica-initsvc updated/);
  t.deepEqual(await state(), afterFirst, 'the same policies and tokens, under the same ids');

  // The tokens it made are the ones the stack hands out (derived from the management token), and work.
  const replicaToken = roleToken(consul.managementToken, 'replica-initsvc');
  t.is((await putKey('initsvc/users/x', replicaToken)).status, 200);
  t.is((await putKey('hello/users/x', replicaToken)).status, 403);
});
