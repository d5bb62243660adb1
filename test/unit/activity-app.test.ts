import test from 'ava';
import { createActivityApp, eventMessage, frameSeq, parseLastEventId, parseLimit } from '../../activity/app';
import { durableName, parseActivityConfig } from '../../activity/config';
import { historyRange } from '../../activity/consumer';
import { ActivityFeed } from '../../activity/feed';
import { SseHub } from '../../activity/sse';
import { sseParser } from '../../harness/sse';
import { ConfigError } from '../../lib/config-error';
import { createLogger } from '../../lib/logger';
import { newUserEvent, parseUserEvent, type UserEvent } from '../../lib/user-events';

function setup(keep = 5, queueLimit = 8) {
  const lines: string[] = [];
  const logger = createLogger({ instance: 'activity-1' }, (l) => lines.push(l));
  const feed = new ActivityFeed(keep);
  const hub = new SseHub({ heartbeatMs: 60_000, queueLimit, maxClients: 100, logger });
  feed.subscribe((entry) => hub.broadcast(eventMessage(entry)));
  let draining = false;
  const app = createActivityApp({ serviceId: 'activity-1', feed, hub, logger, isDraining: () => draining });
  // The consumer hands over stream sequences; here each event gets the next one.
  let seq = 0;
  const add = (event: UserEvent, at = ++seq) => feed.add(event, at);
  return { app, feed, add, hub, lines, drain: () => (draining = true) };
}

/** Reads a streaming body as user events, until `count` arrived. */
async function readEvents(
  body: ReadableStream<Uint8Array>,
  count: number,
): Promise<{ events: UserEvent[]; reader: ReadableStreamDefaultReader<Uint8Array> }> {
  const reader = body.getReader();
  const events: UserEvent[] = [];
  const parse = sseParser((m) => events.push(parseUserEvent(m.data)!));
  const decoder = new TextDecoder();
  while (events.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    parse(decoder.decode(value, { stream: true }));
  }
  return { events, reader };
}

test('/health answers 200 with the instance, 503 while draining; every answer carries X-Instance-Id', async (t) => {
  const { app, drain } = setup();
  const ok = await app.request('/health');
  t.is(ok.status, 200);
  t.is(ok.headers.get('x-instance-id'), 'activity-1');
  drain();
  t.is((await app.request('/health')).status, 503);
  const missing = await app.request('/nope');
  t.is(missing.status, 404);
  t.deepEqual(await missing.json(), { error: 'no route for GET /nope' });
  const wrong = await app.request('/api/activity', { method: 'POST' });
  t.is(wrong.status, 405);
  t.is(wrong.headers.get('x-instance-id'), 'activity-1');
});

test('GET /api/activity answers the last events, newest first, at most `limit`; a bad limit is a 400 naming it', async (t) => {
  const { app, add } = setup(5);
  const events = ['a', 'b', 'c', 'd', 'e', 'f'].map((u) => newUserEvent('created', u));
  for (const e of events) add(e);
  const all = (await (await app.request('/api/activity')).json()) as { events: UserEvent[] };
  t.deepEqual(
    all.events.map((e) => e.userId),
    ['f', 'e', 'd', 'c', 'b'],
  );
  const two = (await (await app.request('/api/activity?limit=2')).json()) as { events: UserEvent[] };
  t.deepEqual(two.events, [events[5], events[4]]);
  for (const bad of ['0', '6', 'x', '1.5', '-1', '']) {
    const res = await app.request(`/api/activity?limit=${bad}`);
    t.is(res.status, 400, bad);
    t.like(await res.json(), { param: 'limit', error: 'query parameter limit must be a whole number from 1 to 5 (default 5)' });
  }
  const twice = await app.request('/api/activity?limit=1&limit=2');
  t.is(twice.status, 400);
  t.regex(((await twice.json()) as { error: string }).error, /may be given once/);
  t.deepEqual(parseLimit([], 100), { ok: true, limit: 50 });
});

test('the stream pushes each new event to every connected client, with SSE headers; a client that leaves is cleaned up', async (t) => {
  const { app, add, hub } = setup();
  const one = await app.request('/api/activity/stream');
  const two = await app.request('/api/activity/stream');
  t.is(one.status, 200);
  t.is(one.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  t.is(one.headers.get('x-accel-buffering'), 'no');
  t.is(one.headers.get('cache-control'), 'no-cache, no-transform');
  t.is(hub.size, 2);
  const e1 = newUserEvent('created', 'u1');
  const e2 = newUserEvent('deleted', 'u1');
  add(e1);
  add(e2);
  add(e1);
  const [a, b] = await Promise.all([readEvents(one.body!, 2), readEvents(two.body!, 2)]);
  t.deepEqual(a.events, [e1, e2], 'a duplicate is not pushed');
  t.deepEqual(b.events, [e1, e2]);
  await a.reader.cancel();
  t.is(hub.size, 1, 'the client that left is forgotten');
  await b.reader.cancel();
  t.is(hub.size, 0);
});

test('a stream client that reads nothing is disconnected once its queue is full; the others keep theirs', async (t) => {
  const { app, add, hub, lines } = setup(100, 4);
  const stuck = await app.request('/api/activity/stream');
  const reading = await app.request('/api/activity/stream');
  const got = readEvents(reading.body!, 30);
  for (let i = 0; i < 30; i++) {
    add(newUserEvent('created', `u${i}`));
    await new Promise((r) => setImmediate(r));
  }
  t.is((await got).events.length, 30, 'the reading client got all 30');
  t.is(hub.size, 1, 'the stuck client is gone from the hub');
  t.true(lines.some((l) => l.includes('fell behind')));
  // Its stream was cut: reading it now ends (or fails) after what was buffered instead of waiting for more.
  const outcome = await Promise.race([
    readEvents(stuck.body!, 1000).then(
      ({ events }) => `ended after ${events.length} buffered events`,
      () => 'failed',
    ),
    new Promise<string>((r) => setTimeout(() => r('still open'), 2000)),
  ]);
  t.not(outcome, 'still open');
});

test('each event goes out with its stream sequence as the SSE id', async (t) => {
  const { app, add } = setup();
  const res = await app.request('/api/activity/stream');
  const e = newUserEvent('created', 'a');
  add(e, 41);
  const reader: ReadableStreamDefaultReader<Uint8Array> = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!text.includes('data:')) text += decoder.decode((await reader.read()).value, { stream: true });
  t.true(text.includes(eventMessage({ seq: 41, event: e })));
  t.regex(text, /^id: 41$/m);
  await reader.cancel();
  t.is(frameSeq(eventMessage({ seq: 41, event: e })), 41);
  t.is(frameSeq(': heartbeat\n\n'), undefined);
});

test('a reconnecting client (Last-Event-ID) gets the kept events after that sequence first, then only newer ones', async (t) => {
  const { app, add } = setup();
  const events = ['a', 'b', 'c', 'd', 'e'].map((u) => newUserEvent('created', u));
  for (const e of events.slice(0, 3)) add(e);
  const res = await app.request('/api/activity/stream', { headers: { 'Last-Event-ID': '1' } });
  for (const e of events.slice(3)) add(e);
  const { events: got, reader } = await readEvents(res.body!, 4);
  t.deepEqual(got, events.slice(1), 'b and c replayed, then d and e live, each once');
  await reader.cancel();
});

test('a client that saw more than this replica has yet is sent only what comes after what it saw', async (t) => {
  // It comes from a replica ahead of this one: this one has sequences 1-2, the client saw up to 4.
  const { app, add } = setup();
  const events = ['a', 'b', 'c', 'd', 'e'].map((u) => newUserEvent('created', u));
  for (const e of events.slice(0, 2)) add(e);
  const res = await app.request('/api/activity/stream', { headers: { 'Last-Event-ID': '4' } });
  for (const e of events.slice(2)) add(e);
  const { events: got, reader } = await readEvents(res.body!, 1);
  t.deepEqual(got, [events[4]]);
  await reader.cancel();
});

test('Last-Event-ID: a stream sequence; anything else is a client with nothing seen', async (t) => {
  t.is(parseLastEventId('17'), 17);
  t.is(parseLastEventId(' 0 '), 0);
  for (const other of [undefined, '', 'abc', '-1', '1.5', '6f1c0a4e-0000-4000-8000-000000000000', '1234567890123456']) {
    t.is(parseLastEventId(other), undefined, String(other));
  }
  const { app, add } = setup();
  const kept = newUserEvent('created', 'kept');
  add(kept);
  const res = await app.request('/api/activity/stream', { headers: { 'Last-Event-ID': 'not-a-sequence' } });
  const next = newUserEvent('created', 'next');
  add(next);
  const { events: got, reader } = await readEvents(res.body!, 1);
  t.deepEqual(got, [next], 'no replay, the new events');
  await reader.cancel();
});

test('activity config: its own defaults, ACTIVITY_KEEP and ROUTES checked, the service rules for the rest', (t) => {
  const facts = { hostname: 'box', interfaces: {} };
  t.like(parseActivityConfig({ HOST: '127.0.0.1' }, facts), {
    serviceName: 'activity',
    serviceId: 'activity-box-8080',
    natsService: 'nats',
    keep: 100,
    durableInactiveMs: 3_600_000,
    routes: [{ path: '/api/activity', exact: false }],
  });
  t.like(
    parseActivityConfig(
      { HOST: '127.0.0.1', ACTIVITY_KEEP: '7', ROUTES: '=/feed,/api/feed', NATS_SERVICE: 'broker', ACTIVITY_DURABLE_INACTIVE_SECONDS: '5' },
      facts,
    ),
    {
      keep: 7,
      durableInactiveMs: 5000,
      routes: [
        { path: '/feed', exact: true },
        { path: '/api/feed', exact: false },
      ],
      natsService: 'broker',
    },
  );
  t.deepEqual(parseActivityConfig({ HOST: '127.0.0.1', ROUTES: '' }, facts).routes, [], 'ROUTES= registers no route');
  for (const [name, value] of [
    ['ACTIVITY_KEEP', '0'],
    ['ACTIVITY_KEEP', '10001'],
    ['ACTIVITY_KEEP', 'many'],
    ['ACTIVITY_DURABLE_INACTIVE_SECONDS', '0'],
    ['ACTIVITY_DURABLE_INACTIVE_SECONDS', '604801'],
    ['ACTIVITY_DURABLE_INACTIVE_SECONDS', '1h'],
    ['PORT', '0'],
    ['SERVICE_NAME', 'Activity'],
  ]) {
    const error = t.throws(() => parseActivityConfig({ HOST: '127.0.0.1', [name]: value }, facts), { instanceOf: ConfigError });
    t.true(error.message.startsWith(`${name} = ${JSON.stringify(value)} is not allowed`), error.message);
  }
  for (const bad of ['/api/..', '/a b', '/x;', '/_balancer/x', '/_gateway', '/api/', 'api', '//x', '/%41']) {
    t.throws(() => parseActivityConfig({ HOST: '127.0.0.1', ROUTES: bad }, facts), { instanceOf: ConfigError, message: /^ROUTES = / }, bad);
  }
});

test('ACTIVITY_DURABLE_INACTIVE_SECONDS: a bad value is named with the allowed range', (t) => {
  t.throws(() => parseActivityConfig({ HOST: '127.0.0.1', ACTIVITY_DURABLE_INACTIVE_SECONDS: '0' }, { hostname: 'box', interfaces: {} }), {
    instanceOf: ConfigError,
    message: 'ACTIVITY_DURABLE_INACTIVE_SECONDS = "0" is not allowed: use a whole number of seconds from 1 to 604800 (7 days)',
  });
});

test('at start the feed reads back the last `keep` events the stream holds', (t) => {
  t.deepEqual(historyRange(1, 500, 100), { from: 401, to: 500 });
  t.deepEqual(historyRange(1, 3, 100), { from: 1, to: 3 }, 'fewer than kept: all of them');
  t.deepEqual(historyRange(450, 500, 100), { from: 450, to: 500 }, 'the older ones aged out of the stream');
  t.is(historyRange(0, 0, 100), undefined, 'an empty stream');
  t.is(historyRange(501, 500, 100), undefined, 'every message removed: nothing to read');
});

test('durable consumer names come from the service id, with what NATS does not allow replaced', (t) => {
  t.is(durableName('activity-1'), 'activity-1');
  t.is(durableName('activity.box:8080'), 'activity_box_8080');
});
