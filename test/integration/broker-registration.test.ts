// The broker's registration step (infra/register-broker.ts, as the stack runs it) against a real Consul
// 1.8.7 with the stack's ACLs and a real nats-server 2.9 with JetStream: the broker role's token registers
// `nats` with an HTTP check on /healthz, which passes while the server runs and fails while it is down;
// running the step again leaves one instance; the token may write no other service.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { startConsul, type ConsulAgent } from '../../harness/consul';
import { freePorts } from '../../harness/ports';
import { startProcess, stopAll, waitFor, type Managed } from '../../harness/processes';
import { aclPlan, brokerRole, roleToken } from '../../lib/consul-acl';
import { applyAclPlan } from '../../lib/consul-acl-apply';
import { brokerServiceDefinition, registerBroker } from '../../lib/broker-service';

const root = path.resolve(__dirname, '..', '..');
let consul: ConsulAgent;
let nats: Managed | undefined;
let clientPort: number;
let monitorPort: number;
let storeDir: string;
let brokerToken: string;

function startNats(): Managed {
  return startProcess('nats-server', [
    '--jetstream',
    `--store_dir=${storeDir}`,
    '--addr=127.0.0.1',
    `--port=${clientPort}`,
    `--http_port=${monitorPort}`,
  ]);
}

/** Runs the step as the stack's local.Command does: its command in the repo root with its environment. */
function runStep(env: Record<string, string>) {
  return spawnSync('node', ['--import', 'tsx', 'infra/register-broker.ts'], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 90_000,
  });
}

const stepEnv = () => ({
  CONSUL_HTTP_ADDR: consul.httpAddr,
  CONSUL_HTTP_TOKEN: brokerToken,
  BROKER_ADDRESS: '127.0.0.1',
  BROKER_PORT: String(clientPort),
  BROKER_MONITOR_PORT: String(monitorPort),
});

interface HealthEntry {
  Service: { ID: string; Address: string; Port: number; Tags: string[] | null };
  Checks: Array<{ CheckID: string; Status: string; Name: string }>;
}

test.before(async () => {
  consul = await startConsul();
  [clientPort, monitorPort] = await freePorts(2);
  storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-nats-store-'));
  // What the ACL init step does for this role (infra/acl-init.ts applies every role of the stack).
  await applyAclPlan(consul.httpAddr, consul.managementToken, aclPlan(consul.managementToken, [brokerRole()]), { readyTimeoutMs: 15_000 });
  brokerToken = roleToken(consul.managementToken, brokerRole().role);
  nats = startNats();
  await waitFor(
    'nats-server /healthz',
    async () => (await fetch(`http://127.0.0.1:${monitorPort}/healthz`).catch(() => undefined))?.ok,
    15_000,
    100,
  );
});

test.after.always(async () => {
  await stopAll();
  await consul?.stop();
  if (storeDir) fs.rmSync(storeDir, { recursive: true, force: true });
});

test.serial('the step registers nats with its address, no route tag, and a /healthz check that passes', async (t) => {
  const run = runStep(stepEnv());
  t.is(run.status, 0, run.stderr);
  t.regex(run.stdout, /register-broker: service nats registered at 127\.0\.0\.1:\d+, checked at http:\/\/127\.0\.0\.1:\d+\/healthz/);
  const passing = await waitFor(
    'nats passing in Consul',
    async () => ((await consul.passing('nats')).includes('nats') ? true : undefined),
    15_000,
    100,
  );
  t.true(passing);
  const [entry] = await consul.get<HealthEntry[]>('/v1/health/service/nats');
  t.like(entry.Service, { ID: 'nats', Address: '127.0.0.1', Port: clientPort });
  t.deepEqual(entry.Service.Tags ?? [], [], 'the broker asks the gateway for no route');
  t.true(entry.Checks.some((c) => c.CheckID === 'service:nats' && c.Status === 'passing'));
});

test.serial('running the step again changes nothing: still one instance, passing', async (t) => {
  const run = runStep(stepEnv());
  t.is(run.status, 0, run.stderr);
  const entries = await consul.get<HealthEntry[]>('/v1/health/service/nats');
  t.is(entries.length, 1);
  await waitFor('nats passing again', async () => ((await consul.passing('nats')).includes('nats') ? true : undefined), 15_000, 100);
  t.pass();
});

test.serial('the broker down: nats is registered but not passing; back up: passing again, with no new registration', async (t) => {
  const started = Date.now();
  await nats!.stop(5000);
  await waitFor('nats critical', async () => ((await consul.passing('nats')).length === 0 ? true : undefined), 20_000, 100);
  t.log(`not passing ${Date.now() - started} ms after the stop (check every 2 s, 2 s timeout)`);
  t.is((await consul.get<HealthEntry[]>('/v1/health/service/nats')).length, 1, 'still registered: services wait for it');
  nats = startNats();
  await waitFor(
    'nats passing after the restart',
    async () => ((await consul.passing('nats')).includes('nats') ? true : undefined),
    20_000,
    100,
  );
  t.pass();
});

test.serial("the broker role's token registers no other service", async (t) => {
  const other = { ...brokerServiceDefinition({ address: '127.0.0.1', clientPort, monitorPort }), ID: 'hello', Name: 'hello' };
  const error = await t.throwsAsync(registerBroker(consul.httpAddr, brokerToken, other, { readyTimeoutMs: 1000 }));
  t.regex(error.message, /registering hello on the Consul agent at .* failed: HTTP 403/);
  t.deepEqual(await consul.get<unknown[]>('/v1/health/service/hello'), []);
});

test.serial('a bad BROKER_ADDRESS or port stops the step with a message naming it, before any request', (t) => {
  const bad = runStep({ ...stepEnv(), BROKER_ADDRESS: 'nats/healthz?x' });
  t.is(bad.status, 2);
  t.regex(
    bad.stderr,
    /register-broker: BROKER_ADDRESS = "nats\/healthz\?x" is not allowed: use the broker's container name or an IP address literal/,
  );
  const port = runStep({ ...stepEnv(), BROKER_MONITOR_PORT: '70000' });
  t.is(port.status, 2);
  t.regex(port.stderr, /BROKER_MONITOR_PORT = "70000" is not allowed: use a TCP port number from 1 to 65535/);
});
