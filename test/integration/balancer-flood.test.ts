import test from 'ava';
import {
  ATTACKER_ADDRESS,
  handshakeFlood,
  holdRequests,
  REAL_CLIENT_ADDRESS,
  realClient,
  requestFrom,
  slowHeaderFlood,
} from '../../harness/attack';
import { startBalancer, type RunningBalancer } from '../../harness/balancer';
import { startConsul, type ConsulAgent } from '../../harness/consul';
import { stopAll, waitFor } from '../../harness/processes';
import { startReplica, type Replica } from '../../harness/service';
import { CA_FILE_VARIABLE, makeTestCertificates } from '../../harness/tls';
import { DEFAULT_CONN_LIMIT_PER_CLIENT } from '../../lib/client-limits';

// Hostile neighbours against a real nginx: the attacker connects from 127.0.0.2, the real client from
// 127.0.0.3, both to the balancer on 127.0.0.1 (issue 14, defect 4); the last test on the HTTPS edge.
const SERVICE = 'flood';
let consul: ConsulAgent;
let balancer: RunningBalancer;
const replicas: Replica[] = [];

test.before(async () => {
  consul = await startConsul();
  for (const id of ['flood-1', 'flood-2']) replicas.push(await startReplica(consul, SERVICE, id));
  balancer = await startBalancer(consul);
  await balancer.waitForUpstreams(SERVICE, 2);
});

test.after.always(async () => {
  await Promise.all(replicas.map((r) => r.stop(3000)));
  await balancer?.cleanup();
  await consul?.stop();
  await stopAll();
});

const target = () => ({ host: '127.0.0.1', port: balancer.port });

test.serial('2,500 slow-header connections from one client do not make a real client fail', async (t) => {
  t.timeout(90_000);
  // More than the 2 x 1024 connection slots nginx had: the flood that reset real requests before.
  const flood = await slowHeaderFlood(target(), 2500, ATTACKER_ADDRESS);
  t.teardown(() => flood.stop());
  const heldAtStart = flood.open();
  const report = await realClient(`${balancer.url}/`, REAL_CLIENT_ADDRESS, 2000, 4);
  const heldAtEnd = flood.open();
  t.deepEqual(
    report.failed.map((a) => a.error ?? a.status),
    [],
    `real requests failed: ${JSON.stringify(report.outcomes)}`,
  );
  t.true(report.total >= 20, `the real client made ${report.total} requests`);
  // nginx accepted every slow connection and kept them: the flood really held its slots meanwhile.
  t.true(heldAtStart >= 2400, `the flood held ${heldAtStart} connections when the real client started`);
  t.true(heldAtEnd >= 2400, `the flood still held ${heldAtEnd} connections when the real client finished`);
  // The header timeout frees the slots: a slow header is closed after client_header_timeout (5 s).
  await waitFor('nginx to close the slow-header connections', () => flood.open() === 0, 15_000, 200);
});

test.serial('one client gets a JSON 429 past its requests in flight; other clients are still served', async (t) => {
  t.timeout(60_000);
  const held = await holdRequests(target(), '/api/users', DEFAULT_CONN_LIMIT_PER_CLIENT, ATTACKER_ADDRESS);
  t.teardown(() => held.release());
  await new Promise((r) => setTimeout(r, 300));
  t.is(held.open(), DEFAULT_CONN_LIMIT_PER_CLIENT);

  const over = await requestFrom(`${balancer.url}/`, ATTACKER_ADDRESS);
  t.is(over.status, 429, `${over.status} ${over.error ?? ''} ${over.body}`);
  t.like(JSON.parse(over.body), { error: 'too many requests' });

  const other = await requestFrom(`${balancer.url}/`, REAL_CLIENT_ADDRESS);
  t.is(other.status, 200, `the real client: ${other.status} ${other.error ?? ''}`);
  // The admin listener has no per-client limit: status and tests keep working under attack.
  t.is((await requestFrom(`${balancer.adminUrl}/_balancer/status`, ATTACKER_ADDRESS)).status, 200);

  held.release();
  await waitFor(
    'the attacker to be served again once it lets go',
    async () => (await requestFrom(`${balancer.url}/`, ATTACKER_ADDRESS)).status === 200,
    10_000,
    100,
  );
});

test.serial(
  'over HTTPS: slow headers after the handshake and handshakes never finished neither fail a verifying client nor stay',
  async (t) => {
    t.timeout(90_000);
    const certs = await makeTestCertificates();
    t.teardown(() => certs.remove());
    const https = await startBalancer(consul, { TLS_CERT_FILE: certs.certFile, TLS_KEY_FILE: certs.keyFile });
    t.teardown(() => https.cleanup());
    await https.waitForUpstreams(SERVICE, 2);
    // The real client verifies the edge's certificate with the test's CA (requestFrom reads it per request).
    process.env[CA_FILE_VARIABLE] = certs.caFile;
    t.teardown(() => delete process.env[CA_FILE_VARIABLE]);

    const target = { host: '127.0.0.1', port: https.port, tls: true };
    // A persistent attacker: what nginx closes is opened again, so the floods hold their slots however long
    // opening 2,000 TLS connections takes on a busy machine.
    const slow = await slowHeaderFlood(target, 1000, ATTACKER_ADDRESS, true);
    t.teardown(() => slow.stop());
    const handshaking = await handshakeFlood(target, 1000, ATTACKER_ADDRESS, true);
    t.teardown(() => handshaking.stop());
    const held = () => `${slow.open()} slow headers, ${handshaking.open()} handshakes held`;
    t.true(slow.open() >= 950 && handshaking.open() >= 950, held());

    const report = await realClient(`${https.url}/`, REAL_CLIENT_ADDRESS, 2000, 4);
    t.deepEqual(
      report.failed.map((a) => a.error ?? a.status),
      [],
      `real requests failed: ${JSON.stringify(report.outcomes)}`,
    );
    t.true(report.total >= 20, `the real client made ${report.total} requests`);
    t.true(slow.open() >= 950 && handshaking.open() >= 950, `when the real client finished: ${held()}`);
    // nginx bounds both: a handshake and then a header each within client_header_timeout (5 s); what it closes,
    // the floods open again.
    await waitFor('nginx to close unfinished handshakes (the flood reopens them)', () => handshaking.opened() > 1000, 15_000, 200);
    await waitFor('nginx to close slow headers sent after a handshake (reopened too)', () => slow.opened() > 1000, 15_000, 200);
  },
);
