// The gateway reaching replicas over HTTPS, as it does on VMs: real Consul, real replicas serving HTTPS with a
// certificate of a test CA (named for the service, `hello.service.consul`, and for the agent's node, which
// Consul 1.8 verifies a check against), and the real balancer verifying it with UPSTREAM_CA_FILE. Consul's
// HTTPS check admits only a replica whose certificate its CA signed; nginx refuses a replica it cannot verify.
import test from 'ava';
import fs from 'node:fs';
import { healthOverUpstream } from '../../balancer/evidence-page';
import { startBalancer } from '../../harness/balancer';
import { startConsul } from '../../harness/consul';
import { requestOnce, sendRequests } from '../../harness/load';
import { waitFor } from '../../harness/processes';
import { startReplica } from '../../harness/service';
import { makeTestCertificates } from '../../harness/tls';

const NODE = 'cnp-upstream-tls';
const NAMES = ['DNS:hello.service.consul', `DNS:${NODE}`];

test('replicas serve HTTPS: Consul checks them with the CA, the gateway proxies over verified TLS and refuses what it cannot verify', async (t) => {
  t.timeout(120_000);
  const certs = await makeTestCertificates(NAMES);
  const foreign = await makeTestCertificates(NAMES);
  t.teardown(() => Promise.all([certs.remove(), foreign.remove()]));
  const consul = await startConsul({ checkCaFile: certs.caFile, nodeName: NODE });
  t.teardown(() => consul.stop());
  const tlsOf = (c: typeof certs) => ({ TLS_CERT_FILE: c.certFile, TLS_KEY_FILE: c.keyFile });
  const replica = await startReplica(consul, 'hello', 'hello-1', tlsOf(certs));
  const stranger = await startReplica(consul, 'hello', 'hello-2', tlsOf(foreign));
  t.teardown(() => Promise.all([replica.stop(5000), stranger.stop(5000)]));
  t.regex(replica.url, /^https:/);

  // Consul's check of hello-1 passes over HTTPS; hello-2's certificate is from a CA the agent does not trust.
  await waitFor('hello-1 to pass its HTTPS check', async () => (await consul.passing('hello')).includes('hello-1'), 20_000, 200);
  type Check = { ServiceID: string; Status: string; Output: string };
  const checkOf = async (id: string) =>
    Object.values(await consul.get<Record<string, Check>>('/v1/agent/checks')).find((c) => c.ServiceID === id);
  await waitFor('hello-2 to fail its check', async () => /certificate|x509/i.test((await checkOf('hello-2'))?.Output ?? ''), 20_000, 200);
  // The catalog follows the agent's checks a moment later.
  await waitFor('the catalog to pass hello-1 alone', async () => (await consul.passing('hello')).join() === 'hello-1', 10_000, 200);
  t.log(`Consul on hello-2: ${(await checkOf('hello-2'))!.Output.split('\n')[0]}`);

  // The gateway trusts the stack's CA: every request answered by hello-1, over TLS.
  const balancer = await startBalancer(consul, { UPSTREAM_CA_FILE: certs.caFile });
  t.teardown(() => balancer.cleanup());
  await balancer.waitForUpstreams('hello', 1);
  const report = await sendRequests(`${balancer.url}/`, 40);
  t.deepEqual(report.failures, []);
  t.deepEqual(Object.keys(report.byInstance), ['hello-1']);
  // Plain HTTP to the replica's port gets no answer from the service.
  t.false((await requestOnce(replica.url.replace(/^https:/, 'http:') + '/health')).ok);

  // A gateway given another CA cannot verify hello-1: a JSON 502, nothing of the replica.
  const wrongCa = await startBalancer(consul, { UPSTREAM_CA_FILE: foreign.caFile });
  t.teardown(() => wrongCa.cleanup());
  await wrongCa.waitForUpstreams('hello', 1);
  const refused = await requestOnce(`${wrongCa.url}/`);
  t.is(refused.status, 502);
  t.is(refused.instance, undefined);

  // The evidence page reads a replica's /health (its outbox) as nginx reaches it: verified for hello.service.consul.
  const upstream = new URL(replica.url).host;
  const health = (await healthOverUpstream(fs.readFileSync(certs.caFile, 'utf8'))(upstream, 'hello')) as { instance?: string };
  t.is(health.instance, 'hello-1');
  await t.throwsAsync(healthOverUpstream(fs.readFileSync(foreign.caFile, 'utf8'))(upstream, 'hello'));
  await t.throwsAsync(healthOverUpstream(fs.readFileSync(certs.caFile, 'utf8'))(upstream, 'activity'), {
    message: /activity\.service\.consul/,
  });
});
