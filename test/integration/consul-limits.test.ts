import test from 'ava';
import net from 'node:net';
import { startConsul, type ConsulAgent } from '../../harness/consul';
import { stopAll } from '../../harness/processes';
import { CONSUL_HTTP_MAX_CONNS_PER_CLIENT } from '../../lib/consul-limits';

// Consul's own limits (lib/consul-limits.ts) against a real agent started with the stack's arguments.
let consul: ConsulAgent;
test.before(async () => {
  consul = await startConsul();
});
test.after.always(async () => {
  await consul?.stop();
  await stopAll();
});

/**
 * One HTTP/1.1 GET of /v1/status/leader on a connection from `localAddress`, kept open after the answer.
 * Resolves with the status line, or with why no answer came (Consul closes a connection over its limit).
 */
function leaderOn(localAddress: string, sockets: net.Socket[]): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: consul.httpPort, localAddress });
    sockets.push(socket);
    let answer = '';
    const done = (what: string) => {
      clearTimeout(timer);
      resolve(what);
    };
    const timer = setTimeout(() => done('no answer within 5 s'), 5000);
    socket.on('connect', () => socket.write('GET /v1/status/leader HTTP/1.1\r\nHost: consul\r\n\r\n'));
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString();
      if (answer.includes('\r\n')) done(answer.split('\r\n')[0]);
    });
    socket.on('error', (error) => done(`error: ${error.message}`));
    socket.on('close', () => done(`closed without an answer${answer ? `: ${answer}` : ''}`));
  });
}

test('one client address gets at most http_max_conns_per_client connections; other clients are still served', async (t) => {
  const held: net.Socket[] = [];
  t.teardown(() => held.forEach((s) => s.destroy()));
  // The hostile client fills its share, each connection answered and kept open.
  const answers = await Promise.all(Array.from({ length: CONSUL_HTTP_MAX_CONNS_PER_CLIENT }, () => leaderOn('127.0.0.2', held)));
  t.deepEqual(new Set(answers), new Set(['HTTP/1.1 200 OK']), 'up to the limit every connection is served');

  const excess = await leaderOn('127.0.0.2', held);
  t.false(excess.startsWith('HTTP/1.1 200'), `the connection over the limit is refused (got: ${excess})`);

  const other = await leaderOn('127.0.0.3', held);
  t.is(other, 'HTTP/1.1 200 OK', 'another client address is served meanwhile');

  // Once the hostile client lets go, it is served again.
  held.forEach((s) => s.destroy());
  held.length = 0;
  await new Promise((r) => setTimeout(r, 200));
  t.is(await leaderOn('127.0.0.2', held), 'HTTP/1.1 200 OK');
});

test('Consul refuses a KV value over kv_max_value_size, and stores one under it', async (t) => {
  const put = (bytes: number) =>
    fetch(`${consul.httpAddr}/v1/kv/limits-test/value`, {
      method: 'PUT',
      body: 'x'.repeat(bytes),
      headers: { 'X-Consul-Token': consul.managementToken },
    }).then((res) => res.status);
  t.is(await put(60 * 1024), 200);
  t.is(await put(65 * 1024), 413);
});
