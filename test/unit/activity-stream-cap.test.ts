// The activity service's cap on open event streams (ACTIVITY_MAX_STREAMS): the hub refuses beyond it, the
// app answers that with a 503 and Retry-After, a closed stream frees its place, and a crowd that left is
// reclaimed once.
import test from 'ava';
import { createActivityApp } from '../../activity/app';
import { DEFAULT_MAX_STREAMS, parseActivityConfig } from '../../activity/config';
import { ActivityFeed } from '../../activity/feed';
import { SseHub } from '../../activity/sse';
import { ConfigError } from '../../lib/config-error';
import { createLogger } from '../../lib/logger';

const logger = createLogger({}, () => undefined);

test('the hub holds at most maxClients streams; a closed one frees its place', (t) => {
  const hub = new SseHub({ heartbeatMs: 60_000, queueLimit: 8, maxClients: 2, logger });
  t.teardown(() => hub.stop());
  const first = hub.connect();
  t.truthy(first);
  t.truthy(hub.connect());
  t.is(hub.connect(), undefined, 'a third is refused');
  first!.close('gone');
  t.truthy(hub.connect(), 'the place of one that left is free again');
  t.is(hub.size, 2);
});

test('a stream beyond the cap gets a JSON 503 with Retry-After; the open ones are untouched', async (t) => {
  const hub = new SseHub({ heartbeatMs: 60_000, queueLimit: 8, maxClients: 1, logger });
  t.teardown(() => hub.stop());
  const app = createActivityApp({ serviceId: 'a-1', feed: new ActivityFeed(5), hub, logger, isDraining: () => false });
  const open = await app.request('/api/activity/stream');
  t.is(open.status, 200);
  const refused = await app.request('/api/activity/stream');
  t.is(refused.status, 503);
  t.is(refused.headers.get('retry-after'), '5');
  t.deepEqual(await refused.json(), { error: 'too many event streams', max: 1 });
  t.is(hub.size, 1);
  await open.body!.cancel();
});

test('after a crowd of streams closed, the heap is reclaimed once, a second after the last one left', async (t) => {
  let reclaims = 0;
  const hub = new SseHub({
    heartbeatMs: 60_000,
    queueLimit: 8,
    maxClients: 100,
    logger,
    reclaimAfter: { closed: 3, reclaim: () => reclaims++ },
  });
  t.teardown(() => hub.stop());
  const clients = Array.from({ length: 5 }, () => hub.connect()!);
  clients[0].close('gone');
  clients[1].close('gone');
  await new Promise((r) => setTimeout(r, 1200));
  t.is(reclaims, 0, 'two closed: not yet');
  for (const c of clients.slice(2)) c.close('gone');
  await new Promise((r) => setTimeout(r, 600));
  t.is(reclaims, 0, 'waits for a second of quiet');
  await new Promise((r) => setTimeout(r, 600));
  t.is(reclaims, 1);
});

test('ACTIVITY_MAX_STREAMS: 1,000 by default, a whole number from 1 to 100000', (t) => {
  const facts = { hostname: 'box', interfaces: {} };
  t.is(parseActivityConfig({ HOST: '127.0.0.1' }, facts).maxStreams, DEFAULT_MAX_STREAMS);
  t.is(DEFAULT_MAX_STREAMS, 1000);
  t.is(parseActivityConfig({ HOST: '127.0.0.1', ACTIVITY_MAX_STREAMS: '25' }, facts).maxStreams, 25);
  for (const bad of ['0', '100001', 'lots', '2.5']) {
    const error = t.throws(() => parseActivityConfig({ HOST: '127.0.0.1', ACTIVITY_MAX_STREAMS: bad }, facts), { instanceOf: ConfigError });
    t.regex(error.message, /^ACTIVITY_MAX_STREAMS = .* a whole number from 1 to 100000/);
  }
});
