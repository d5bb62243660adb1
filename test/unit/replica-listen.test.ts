// A replica listens on the first free port of PORT's range (replica/listen.ts): real sockets on loopback.
import test from 'ava';
import net from 'node:net';
import { listenOnFirstFree } from '../../replica/listen';

const HOST = '127.0.0.1';

/** A server holding a port the kernel picked: the first port of the ranges below, taken. */
async function holder(t: { teardown(fn: () => void): void }): Promise<number> {
  const server = net.createServer();
  t.teardown(() => server.close());
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return (server.address() as net.AddressInfo).port;
}

function serverFor(t: { teardown(fn: () => void): void }): net.Server {
  const server = net.createServer((socket) => socket.end('mine'));
  t.teardown(() => server.close());
  return server;
}

test('a port in use is skipped: the replica listens on the next one, and answers there', async (t) => {
  const taken = await holder(t);
  const server = serverFor(t);
  const port = await listenOnFirstFree(server, HOST, { first: taken, last: taken + 3 });
  t.true(port > taken && port <= taken + 3, `${port}`);
  t.is((server.address() as net.AddressInfo).port, port);
  const reply = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(port, HOST);
    let text = '';
    socket.on('data', (chunk) => (text += String(chunk)));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
  t.is(reply, 'mine');
});

test('replicas starting at once on one range each get a port of their own', async (t) => {
  const taken = await holder(t);
  const servers = Array.from({ length: 3 }, () => serverFor(t));
  const ports = await Promise.all(servers.map((server) => listenOnFirstFree(server, HOST, { first: taken, last: taken + 8 })));
  t.is(new Set(ports).size, 3, `${ports.join(', ')}`);
  t.false(ports.includes(taken));
});

test('a full range is an error naming the range; another error stops at once', async (t) => {
  const taken = await holder(t);
  const full = await t.throwsAsync(listenOnFirstFree(serverFor(t), HOST, { first: taken, last: taken }));
  t.is(full.message, `every port of ${taken} on ${HOST} is in use`);
  // An address this machine does not have: EADDRNOTAVAIL, not a reason to try the next port.
  const error = await t.throwsAsync(listenOnFirstFree(serverFor(t), '203.0.113.77', { first: taken, last: taken + 3 }));
  t.is((error as NodeJS.ErrnoException).code, 'EADDRNOTAVAIL');
});
