import test from 'ava';
import { BROKER_RETRY, retryDelayMs } from '../../lib/backoff';
import type { NatsConnection } from 'nats';
import { brokerServers, ensureUserEventsStream, parseNatsCa, parseNatsService } from '../../lib/broker';
import { ConfigError } from '../../lib/config-error';
import { newUserEvent, parseUserEvent, USER_EVENTS_STREAM, userEventSubject } from '../../lib/user-events';
import { outboxClock, outboxKey, outboxKeyTime, outboxState, outboxWrite, parseOutboxMaxEntries } from '../../service/outbox';

test('a user event has a fresh id, its type, the user and the time; its subject is users.<type>', (t) => {
  const now = new Date('2026-11-27T10:00:00.000Z');
  const a = newUserEvent('created', 'u1', now);
  const b = newUserEvent('created', 'u1', now);
  t.like(a, { type: 'created', userId: 'u1', at: '2026-11-27T10:00:00.000Z' });
  t.regex(a.id, /^[0-9a-f-]{36}$/);
  t.not(a.id, b.id, 'every event its own id, even for the same change at the same time');
  t.is(userEventSubject('deleted'), 'users.deleted');
  t.deepEqual(parseUserEvent(JSON.stringify(a)), a);
});

test('parseUserEvent refuses anything that is not a whole user event', (t) => {
  const good = { id: 'e1', type: 'updated', userId: 'u1', at: '2026-11-27T10:00:00.000Z' };
  t.deepEqual(parseUserEvent(JSON.stringify({ ...good, extra: 1 })), good, 'extra fields are dropped');
  for (const bad of [
    'not json',
    'null',
    '[]',
    JSON.stringify({ ...good, type: 'renamed' }),
    JSON.stringify({ ...good, id: '' }),
    JSON.stringify({ ...good, userId: 7 }),
    JSON.stringify({ ...good, at: 'yesterday' }),
  ]) {
    t.is(parseUserEvent(bad), undefined, bad);
  }
});

test('outbox keys sort by write time, also for changes within one millisecond of one replica', (t) => {
  const tick = outboxClock();
  const at = '2026-11-27T10:00:00.000Z';
  const events = ['created', 'updated', 'deleted'].map((type) => newUserEvent(type as 'created', 'u1', new Date(at)));
  // Ids are random, so within one millisecond only the tick can keep the order.
  const keys = events.map((e) => outboxKey('hello/outbox', tick(e.at), e));
  t.deepEqual([...keys].sort(), keys);
  t.true(
    keys.every((k) => k.startsWith('hello/outbox/1795773600000')),
    keys[0],
  );
  const later = newUserEvent('created', 'u2', new Date('2026-11-27T10:00:00.001Z'));
  const laterKey = outboxKey('hello/outbox', tick(later.at), later);
  t.true(laterKey > keys[2], 'the next millisecond sorts after');
  // Fixed width: a time with fewer digits still sorts before (text order is number order).
  t.true(outboxKey('p', 999, later) < outboxKey('p', 1000, later));
  t.regex(outboxKey('p', 1, later), new RegExp(`^p/0{15}1-${later.id}$`));
});

test('the outbox write is a KV set of the event JSON, base64 as /v1/txn wants it', (t) => {
  const event = newUserEvent('created', 'u1');
  const op = outboxWrite('hello/outbox', 42, event);
  t.is(op.KV.Verb, 'set');
  t.is(op.KV.Key, outboxKey('hello/outbox', 42, event));
  t.deepEqual(parseUserEvent(Buffer.from(op.KV.Value, 'base64').toString('utf8')), event);
});

test('retries double from the first delay and stay at the cap, whatever the count (the broker: 100 ms to 2 s)', (t) => {
  t.deepEqual(
    [1, 2, 3, 4, 5, 6, 100].map((n) => retryDelayMs(n)),
    [100, 200, 400, 800, 1600, 2000, 2000],
  );
  t.is(retryDelayMs(0), BROKER_RETRY.firstMs, 'no failure yet counts as the first');
  t.is(retryDelayMs(1e6, { firstMs: 50, maxMs: 300 }), 300);
});

test("the broker's addresses come from its passing instances in Consul; NATS_SERVICE names it", (t) => {
  t.deepEqual(
    brokerServers([
      { Node: { Address: '10.0.0.1' }, Service: { Address: '172.18.0.4', Port: 4222 } },
      { Node: { Address: '10.0.0.2' }, Service: { Address: '', Port: 4223 } },
      { Node: { Address: '10.0.0.3' }, Service: { Address: '::1', Port: 4224 } },
      { Node: { Address: '10.0.0.4' }, Service: {} },
    ]),
    ['nats://172.18.0.4:4222', 'nats://10.0.0.2:4223', 'nats://[::1]:4224'],
  );
  t.is(parseNatsService({}), 'nats');
  t.is(parseNatsService({ NATS_SERVICE: ' broker ' }), 'broker');
  const error = t.throws(() => parseNatsService({ NATS_SERVICE: 'Nats!' }), { instanceOf: ConfigError });
  t.regex(error.message, /^NATS_SERVICE = "Nats!" is not allowed: use lowercase letters/);
});

test("an outbox key gives its entry's write time back; anything else under the prefix is no entry", (t) => {
  const event = newUserEvent('created', 'u1', new Date('2026-12-06T10:00:00.000Z'));
  const tick = outboxClock()(event.at);
  t.is(outboxKeyTime('hello/outbox', outboxKey('hello/outbox', tick, event)), Date.parse(event.at));
  for (const key of ['hello/outbox/junk', 'hello/outbox/123-x', 'other/outbox/0001764000000000000-e', 'hello/outbox/']) {
    t.is(outboxKeyTime('hello/outbox', key), undefined, key);
  }
});

test('OUTBOX_MAX_ENTRIES bounds the outbox: 10,000 by default, 1 to 100,000 allowed; the state turns filling at 80 %', (t) => {
  t.is(parseOutboxMaxEntries({}), 10_000);
  t.is(parseOutboxMaxEntries({ OUTBOX_MAX_ENTRIES: ' 250 ' }), 250);
  t.is(parseOutboxMaxEntries({ OUTBOX_MAX_ENTRIES: '100000' }), 100_000);
  for (const bad of ['0', '100001', '-5', '1e3', 'many', '2.5']) {
    t.throws(() => parseOutboxMaxEntries({ OUTBOX_MAX_ENTRIES: bad }), {
      instanceOf: ConfigError,
      message: `OUTBOX_MAX_ENTRIES = ${JSON.stringify(bad)} is not allowed: use a whole number from 1 to 100000`,
    });
  }
  t.deepEqual(
    [0, 7, 8, 9, 10, 11].map((n) => outboxState(n, 10)),
    ['ok', 'ok', 'filling', 'filling', 'full', 'full'],
  );
});

test('a raise of the stream copies the cluster refuses is returned, not thrown; a raise done or not needed returns nothing', async (t) => {
  const updates: number[] = [];
  const fake = (copies: number, refuse: boolean) =>
    ({
      jetstreamManager: async () => ({
        streams: {
          info: async () => ({ config: { name: USER_EVENTS_STREAM, num_replicas: copies } }),
          update: async (_name: string, config: { num_replicas: number }) => {
            updates.push(config.num_replicas);
            if (refuse) throw new Error('insufficient resources');
          },
        },
      }),
    }) as unknown as NatsConnection;
  t.regex((await ensureUserEventsStream(fake(1, true), 3))!, /insufficient resources/);
  t.is(await ensureUserEventsStream(fake(1, false), 3), undefined);
  t.is(await ensureUserEventsStream(fake(3, true), 3), undefined, 'three copies already: nothing to raise');
  t.is(await ensureUserEventsStream(fake(3, true), 1), undefined, 'never lowered');
  t.deepEqual(updates, [3, 3]);
});

test('NATS_CA_FILE: the CA is read once, at start; a file without a certificate is refused naming the variable', (t) => {
  const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const reads: string[] = [];
  const read = (file: string) => (reads.push(file), file === '/ca.pem' ? pem : 'not a certificate');
  t.is(parseNatsCa({}, read), undefined, 'unset: plain NATS');
  t.true(parseNatsCa({ NATS_CA_FILE: '/ca.pem' }, read)!.includes('BEGIN CERTIFICATE'));
  t.deepEqual(reads, ['/ca.pem']);
  t.throws(() => parseNatsCa({ NATS_CA_FILE: '/other' }, read), { instanceOf: ConfigError, message: /^NATS_CA_FILE = "\/other"/ });
});
