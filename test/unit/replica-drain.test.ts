import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { drainServer } from '../../replica/drain';

/** A plain server on loopback whose /slow answers after `slowMs`, and /hang never. */
async function startServer(slowMs: number) {
  const server = http.createServer((req, res) => {
    if (req.url === '/hang') return;
    setTimeout(() => res.end('done'), req.url === '/slow' ? slowMs : 0);
  });
  // Longer than any test: only the drain can close these connections in time.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, port };
}

function get(port: number, path: string, agent: http.Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent }, (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

test('drain lets a request in flight finish, closes keep-alive connections, and stops accepting', async (t) => {
  const { server, port } = await startServer(300);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  t.teardown(() => agent.destroy());
  await get(port, '/fast', agent); // leaves an idle keep-alive connection in the pool
  const slow = get(port, '/slow', agent);
  await new Promise((r) => setTimeout(r, 50));

  const started = performance.now();
  const deadlineMs = 5000;
  const clean = await drainServer(server, deadlineMs);
  const took = performance.now() - started;

  // Idle keep-alive connections would hold the drain for the server's 60 s keep-alive, until the
  // deadline cut them: it ended by itself (clean), before the deadline, 16 times the 0.3 s request.
  t.true(clean, 'ended by itself, not cut at the deadline');
  t.deepEqual(await slow, { status: 200, body: 'done' });
  t.true(took >= 200, `waited for the slow request (${Math.round(took)} ms)`);
  t.true(took < deadlineMs, `keep-alive connections did not hold the drain (${Math.round(took)} ms)`);
  await t.throwsAsync(get(port, '/fast', new http.Agent()), { code: 'ECONNREFUSED' });
});

test('drain is bounded: a request that never ends is cut off at the deadline', async (t) => {
  const { server, port } = await startServer(0);
  t.teardown(() => server.closeAllConnections()); // so that a failed run does not hold the test process
  const hanging = get(port, '/hang', new http.Agent()).catch((error: Error) => error);
  await new Promise((r) => setTimeout(r, 50));
  const started = performance.now();
  const deadlineMs = 300;
  const clean = await drainServer(server, deadlineMs);
  const took = performance.now() - started;
  t.false(clean);
  // At the deadline, not before; after it by at most ten times the deadline (a slow, loaded machine).
  t.true(took >= deadlineMs - 10 && took < 10 * deadlineMs, `${Math.round(took)} ms`);
  // Bounded here too: a request the drain failed to cut would hang this test until ava's own timeout.
  const cut = await Promise.race([hanging, new Promise((r) => setTimeout(() => r('still hanging 2 s after the deadline'), 2000))]);
  t.true(cut instanceof Error, `the hanging request was cut: ${String(cut)}`);
});
