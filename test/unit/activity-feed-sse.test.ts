import test from 'ava';
import { ActivityFeed } from '../../activity/feed';
import { sseComment, sseMessage, SseClient, SseHub } from '../../activity/sse';
import { sseParser, type SseMessage } from '../../harness/sse';
import { createLogger } from '../../lib/logger';
import { newUserEvent, type UserEvent } from '../../lib/user-events';

const event = (userId: string): UserEvent => newUserEvent('created', userId);

test('the feed keeps the last `keep` events, newest first', (t) => {
  const feed = new ActivityFeed(3);
  t.deepEqual(feed.recent(), []);
  const events = ['a', 'b', 'c', 'd', 'e'].map(event);
  events.forEach((e, i) => t.true(feed.add(e, i + 1)));
  t.deepEqual(
    feed.recent().map((e) => e.userId),
    ['e', 'd', 'c'],
  );
  t.deepEqual(
    feed.recent(2).map((e) => e.userId),
    ['e', 'd'],
  );
  t.is(feed.recent(10).length, 3, 'never more than kept');
  t.throws(() => new ActivityFeed(0), { instanceOf: RangeError });
});

test('the feed answers the kept entries after a stream sequence, oldest first', (t) => {
  const feed = new ActivityFeed(3);
  t.deepEqual(feed.after(0), [], 'nothing kept yet');
  const events = ['a', 'b', 'c', 'd', 'e'].map(event);
  events.forEach((e, i) => feed.add(e, 10 + i));
  const userIdsAfter = (seq: number) => feed.after(seq).map((entry) => `${entry.seq}:${entry.event.userId}`);
  t.deepEqual(userIdsAfter(12), ['13:d', '14:e']);
  t.deepEqual(userIdsAfter(14), [], 'up to date');
  t.deepEqual(userIdsAfter(99), [], 'ahead of this feed');
  t.deepEqual(userIdsAfter(3), ['12:c', '13:d', '14:e'], 'missed more than kept: what is kept');
});

test('the feed drops an event whose id it has seen, even after it left the ring, and tells listeners of new ones only', (t) => {
  const feed = new ActivityFeed(2, 4);
  const heard: string[] = [];
  const unsubscribe = feed.subscribe((entry) => heard.push(`${entry.seq}:${entry.event.userId}`));
  let seq = 0;
  const add = (e: UserEvent) => feed.add(e, ++seq);
  const a = event('a');
  t.true(add(a));
  t.false(add({ ...a }), 'same id: a duplicate (published twice, two sequences)');
  for (const u of ['b', 'c']) add(event(u));
  t.false(add(a), 'out of the ring, still remembered');
  t.deepEqual(heard, ['1:a', '3:b', '4:c']);
  // The memory of ids is bounded too: the oldest is forgotten past seenLimit.
  for (const u of ['d', 'e']) add(event(u));
  t.true(add(a), 'forgotten after 4 newer ids');
  unsubscribe();
  add(event('f'));
  t.is(heard.length, 6, 'no call after unsubscribing');
});

test('SSE framing: id line, one data line per line of the payload, a blank line; comments start with a colon', (t) => {
  t.is(sseMessage('e1', '{"a":1}'), 'id: e1\ndata: {"a":1}\n\n');
  t.is(sseMessage('e2', 'one\ntwo\r\nthree'), 'id: e2\ndata: one\ndata: two\ndata: three\n\n');
  t.throws(() => sseMessage('bad\nid', 'x'), { instanceOf: RangeError });
  t.is(sseComment('heartbeat'), ': heartbeat\n\n');
  t.is(sseComment('two\nlines'), ': two lines\n\n', 'a comment cannot smuggle a field');
  // What a reader makes of it (the harness's parser follows the spec's reading rules).
  const got: SseMessage[] = [];
  const comments: string[] = [];
  const feed = sseParser(
    (m) => got.push(m),
    (c) => comments.push(c),
  );
  const text = `retry: 1000\n\n${sseComment('connected')}${sseMessage('e1', 'a\nb')}${sseMessage('e2', '{}')}`;
  for (const piece of text.match(/[\s\S]{1,5}/g)!) feed(piece);
  t.deepEqual(got, [
    { id: 'e1', event: undefined, data: 'a\nb' },
    { id: 'e2', event: undefined, data: '{}' },
  ]);
  t.deepEqual(comments, ['connected']);
});

test('a client queue hands frames over in order and closes itself as slow one frame past its bound', async (t) => {
  const client = new SseClient(2);
  const reasons: string[] = [];
  client.onClose((r) => reasons.push(r));
  t.true(client.push('1'));
  t.true(client.push('2'));
  t.is(await client.next(), '1');
  t.true(client.push('3'));
  t.false(client.push('4'), 'a third waiting frame is one too many');
  t.is(client.closedBecause, 'slow');
  t.is(client.queued, 0, 'its frames are dropped, not kept');
  t.is(await client.next(), undefined);
  t.false(client.push('5'));
  t.deepEqual(reasons, ['slow']);
});

test('a waiting reader gets the next frame at once, and undefined when the client closes', async (t) => {
  const client = new SseClient(1);
  const next = client.next();
  client.push('a');
  t.is(await next, 'a');
  const pending = client.next();
  client.close('gone');
  t.is(await pending, undefined);
});

test('the hub pushes to every client, forgets closed ones, cuts a slow one without holding the others, and heartbeats', async (t) => {
  const lines: string[] = [];
  const hub = new SseHub({ heartbeatMs: 30, queueLimit: 3, maxClients: 100, logger: createLogger({}, (l) => lines.push(l)) });
  t.teardown(() => hub.stop());
  const reader = hub.connect()!;
  const idle = hub.connect()!;
  const leaving = hub.connect()!;
  t.is(hub.size, 3);
  leaving.close('gone');
  t.is(hub.size, 2, 'a client that left is forgotten');

  const received: string[] = [];
  const reading = (async () => {
    for (let frame = await reader.next(); frame !== undefined; frame = await reader.next()) received.push(frame);
  })();
  // One frame per turn of the event loop, as messages arrive; the reader takes each in its turn.
  for (let i = 0; i < 5; i++) {
    hub.broadcast(`m${i}\n\n`);
    await new Promise((r) => setImmediate(r));
  }
  t.is(idle.closedBecause, 'slow', 'the client that reads nothing is cut');
  t.is(hub.size, 1);
  t.true(lines.some((l) => l.includes('fell behind')));

  await new Promise((r) => setTimeout(r, 80));
  t.deepEqual(
    received.filter((f) => f.startsWith('m')),
    ['m0\n\n', 'm1\n\n', 'm2\n\n', 'm3\n\n', 'm4\n\n'],
    'the reading client got everything',
  );
  t.true(received.includes(sseComment('heartbeat')), 'heartbeats reach it');
  hub.stop();
  await reading;
  t.is(reader.closedBecause, 'stopping');
  t.is(hub.size, 0);
});
