// The broker over TLS as the stack runs it on VMs: three real nats-servers with the configuration the program
// writes (infra/broker.ts brokerTlsConfig) and certificates made by the program's own script
// (infra/consul-tls.sh), clients verifying the broker with the stack's CA (lib/broker.ts connectBroker) and
// routes verifying each other. The cluster forms only if its routes' TLS works; a client without the CA is refused.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { BROKER_TLS_FILES, brokerTlsConfig } from '../../infra/broker';
import { streamCopies, startNatsCluster } from '../../harness/nats';
import { waitFor } from '../../harness/processes';
import { connectBroker, ensureUserEventsStream } from '../../lib/broker';
import { USER_EVENTS_STREAM } from '../../lib/user-events';
import { REPO_ROOT } from '../helpers/record-stack';
import { stackTls } from '../helpers/stack-tls';

/** A CA and a certificate for loopback, by the stack's script, written where brokerTlsConfig points. */
function material(dir: string): void {
  const ca = stackTls('ca');
  const own = stackTls('agent', { CA_CERT: ca.cert, CA_KEY: ca.key, CN: '127.0.0.1', SANS: 'IP:127.0.0.1,DNS:localhost' });
  fs.writeFileSync(path.join(dir, BROKER_TLS_FILES.ca), ca.cert);
  fs.writeFileSync(path.join(dir, BROKER_TLS_FILES.cert), own.cert);
  fs.writeFileSync(path.join(dir, BROKER_TLS_FILES.key), own.key, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, BROKER_TLS_FILES.config), brokerTlsConfig(REPO_ROOT, dir, true));
}

test('three brokers with TLS: routes verified both ways (the cluster forms, the stream has three copies), clients with the CA publish, a client without it is refused', async (t) => {
  t.timeout(120_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cnp-broker-tls-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  material(dir);
  const servers = await startNatsCluster(3, [`--config=${path.join(dir, BROKER_TLS_FILES.config)}`]);
  t.teardown(() => Promise.all(servers.map((s) => s.close())));
  const caFile = path.join(dir, BROKER_TLS_FILES.ca);

  const nc = await connectBroker(
    servers.map((s) => s.url),
    'broker-tls-test',
    fs.readFileSync(caFile, 'utf8'),
  );
  t.teardown(() => nc.close());
  t.true(nc.info?.tls_required, 'the broker asks for TLS');
  await ensureUserEventsStream(nc, 3);
  const js = nc.jetstream();
  const ack = await js.publish('users.created', new TextEncoder().encode('{"marker":"broker-tls"}'));
  t.is(ack.stream, USER_EVENTS_STREAM);
  // Three current copies: the stream's Raft group runs over the routes, which are TLS both ways.
  const copies = await waitFor(
    'three current copies of the stream',
    async () => {
      const found = await streamCopies(servers, USER_EVENTS_STREAM);
      return found && found.copies === 3 && found.current === 3 ? found : undefined;
    },
    30_000,
    250,
  );
  t.log(`stream ${USER_EVENTS_STREAM}: ${copies.current}/${copies.copies} current, leader ${copies.leader}`);

  // Without the stack's CA the broker's certificate is not trusted: no connection.
  const refused = await t.throwsAsync(connectBroker([servers[0].url], 'no-ca'));
  t.regex(refused.message, /cannot connect to the broker.*(certificate|self[- ]signed|verify)/i);
});
