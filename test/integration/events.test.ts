import test, { type ExecutionContext } from 'ava';
import { startBalancer } from '../../harness/balancer';
import type { ActivityReplica } from '../../harness/activity';
import { startConsul, type ConsulAgent } from '../../harness/consul';
import { registerNatsInConsul, startNats, waitForNatsPassing, type NatsServer } from '../../harness/nats';
import { stopAll, waitFor } from '../../harness/processes';
import type { Replica } from '../../harness/service';
import { openEventStream, type EventStream } from '../../harness/sse';
import { connect, DiscardPolicy } from 'nats';
import { USER_EVENTS_STREAM, type UserEvent } from '../../lib/user-events';
import type { OutboxStatus } from '../../service/outbox';
import { activityFor, helloFor } from '../helpers/event-replicas';

// The events end to end, with real servers on loopback: Consul (ACLs on, every process with its role's
// token), nats-server with JetStream (registered in Consul as the program does), hello replicas (whose
// outbox relays publish) and activity replicas (durable consumers, SSE). Bundles from `npm run build`.
// The tests share one Consul and one broker, so they run one at a time; each uses its own service names.

let consul: ConsulAgent;
let nats: NatsServer;

test.before(async () => {
  consul = await startConsul();
  nats = await startNats();
  await registerNatsInConsul(consul, nats);
  await waitForNatsPassing(consul, 1);
});

test.after.always(async () => {
  await stopAll();
  await nats?.close();
  await consul?.stop();
});

/** Every step is bounded; a test that hangs fails here with what its processes printed. */
const TEST_TIMEOUT_MS = 90_000;

const hello = (t: ExecutionContext, name: string, id: string, env: NodeJS.ProcessEnv = {}) => helloFor(t, consul, name, id, env);
const activity = (t: ExecutionContext, id: string, env: NodeJS.ProcessEnv = {}) => activityFor(t, consul, id, env);

async function call(url: string, method = 'GET', body?: unknown): Promise<{ status: number; json: Record<string, unknown> | undefined }> {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

async function createUser(base: Replica | string, name: string): Promise<string> {
  const created = await call(`${typeof base === 'string' ? base : base.url}/api/users`, 'POST', {
    name,
    email: `${name.toLowerCase()}@example.com`,
  });
  if (created.status !== 201) throw new Error(`POST /api/users answered ${created.status}: ${JSON.stringify(created.json)}`);
  return created.json!.id as string;
}

const ofUsers = (events: UserEvent[], ids: Iterable<string>) => {
  const wanted = new Set(ids);
  return events.filter((e) => wanted.has(e.userId));
};

/** Event ids that arrived more than once. */
const repeated = (events: UserEvent[]) => {
  const seen = new Map<string, number>();
  for (const e of events) seen.set(e.id, (seen.get(e.id) ?? 0) + 1);
  return [...seen].filter(([, n]) => n > 1).map(([id]) => id);
};

async function outboxKeys(serviceName: string): Promise<string[]> {
  const res = await fetch(`${consul.httpAddr}/v1/kv/${serviceName}/outbox/?keys`, {
    headers: { 'X-Consul-Token': consul.managementToken },
  });
  return res.status === 404 ? [] : ((await res.json()) as string[]);
}

function report(t: ExecutionContext, parts: Record<string, { output(): string }>): void {
  for (const [label, part] of Object.entries(parts)) t.log(`--- ${label}\n${part.output().slice(-3000)}`);
}

test.serial('a user created, changed and deleted through the gateway appears on an open SSE stream through the gateway', async (t) => {
  t.timeout(TEST_TIMEOUT_MS);
  const writer = await hello(t, 'hello-a', 'hello-a-1');
  const feed = await activity(t, 'activity-a-1');
  // The client writes users and reads the activity through the gateway, as a browser would.
  const gateway = await startBalancer(consul);
  t.teardown(() => gateway.cleanup());
  await gateway.waitForUpstreams('hello-a', 1);
  await gateway.waitForUpstreams('activity', 1);
  const usersBase = gateway.url;
  const baseUrl = gateway.url;
  let stream: EventStream | undefined;
  try {
    stream = await openEventStream(baseUrl);
    t.is(stream.headers['content-type'], 'text/event-stream; charset=utf-8');
    // X-Accel-Buffering: no is for nginx, which consumes it; that each event arrives at once shows it worked.
    t.is(stream.headers['x-instance-id'], 'activity-a-1');

    const id = await createUser(usersBase, 'Ann');
    await stream.until('the created event on the stream', (events) => ofUsers(events, [id]).length === 1);
    t.like(ofUsers(stream.events, [id])[0], { type: 'created', userId: id });

    t.is((await call(`${usersBase}/api/users/${id}`, 'PUT', { name: 'Ann B', email: 'annb@example.com' })).status, 200);
    t.is((await call(`${usersBase}/api/users/${id}`, 'DELETE')).status, 204);
    await stream.until('the updated and deleted events', (events) => ofUsers(events, [id]).length === 3);
    t.deepEqual(
      ofUsers(stream.events, [id]).map((e) => e.type),
      ['created', 'updated', 'deleted'],
    );

    const recent = await call(`${baseUrl}/api/activity?limit=3`);
    t.is(recent.status, 200);
    t.deepEqual(
      (recent.json!.events as UserEvent[]).map((e) => [e.type, e.userId]),
      [
        ['deleted', id],
        ['updated', id],
        ['created', id],
      ],
      'newest first',
    );
    const bad = await call(`${baseUrl}/api/activity?limit=0`);
    t.is(bad.status, 400);
    t.is(bad.json!.param, 'limit');
    await waitFor('the outbox to be emptied once the broker acked', async () => (await outboxKeys('hello-a')).length === 0, 10_000);
  } catch (error) {
    report(t, { writer, feed, nats, gateway });
    throw error;
  } finally {
    stream?.close();
  }
});

test.serial('the broker stopped for 10 s while users are written: once it is back every event arrives, once per event id', async (t) => {
  t.timeout(TEST_TIMEOUT_MS);
  // Two replicas: both relays publish the kept entries when the broker returns, so duplicates are offered.
  const writers = [await hello(t, 'hello-b', 'hello-b-1'), await hello(t, 'hello-b', 'hello-b-2')];
  const feed = await activity(t, 'activity-b-1');
  const stream = await openEventStream(feed.url);
  t.teardown(() => stream.close());
  try {
    await nats.stop();
    const stoppedAt = Date.now();
    const ids: string[] = [];
    for (let i = 0; Date.now() - stoppedAt < 10_000; i++) {
      ids.push(await createUser(writers[i % 2], `Outage${i}`));
      await new Promise((r) => setTimeout(r, 400));
    }
    t.true(ids.length >= 15, `${ids.length} users written during the outage`);
    t.is(ofUsers(stream.events, ids).length, 0, 'nothing arrives while the broker is down');
    t.is((await outboxKeys('hello-b')).length, ids.length, 'every event is kept in the outbox meanwhile');

    await nats.start();
    await stream.until(
      `${ids.length} created events`,
      (events) => new Set(ofUsers(events, ids).map((e) => e.userId)).size === ids.length,
      30_000,
    );
    // Duplicates would come in the moments after the relays' first publishes: give them time to show.
    await waitFor('the outbox to be emptied', async () => (await outboxKeys('hello-b')).length === 0, 10_000);
    await new Promise((r) => setTimeout(r, 1000));
    const events = ofUsers(stream.events, ids);
    t.is(events.length, ids.length, 'one event per user written');
    t.deepEqual(repeated(events), [], 'no event id arrived twice');
    t.true(
      events.every((e) => e.type === 'created'),
      'all of them created events',
    );
    const recent = await call(`${feed.url}/api/activity?limit=100`);
    t.is(ofUsers(recent.json!.events as UserEvent[], ids).length, ids.length, 'the feed keeps each once too');
  } catch (error) {
    report(t, { 'hello-b-1': writers[0], 'hello-b-2': writers[1], feed, nats });
    throw error;
  } finally {
    if (!nats.isRunning()) await nats.start();
    await waitForNatsPassing(consul, 1);
  }
});

test.serial('a replica killed (SIGKILL) between a write and its publish: another replica publishes the event and it arrives', async (t) => {
  t.timeout(TEST_TIMEOUT_MS);
  const doomed = await hello(t, 'hello-c', 'hello-c-1');
  const survivor = await hello(t, 'hello-c', 'hello-c-2');
  const feed = await activity(t, 'activity-c-1');
  const stream = await openEventStream(feed.url);
  t.teardown(() => stream.close());
  try {
    // With the broker down, no relay can publish: the write commits and its event waits in the outbox.
    await nats.stop();
    const id = await createUser(doomed, 'Doomed');
    t.is((await outboxKeys('hello-c')).length, 1);
    doomed.child.kill('SIGKILL');
    t.is(await doomed.exited, 'SIGKILL');

    await nats.start();
    await stream.until('the event of the killed replica’s write', (events) => ofUsers(events, [id]).length === 1, 30_000);
    t.like(ofUsers(stream.events, [id])[0], { type: 'created', userId: id });
    await waitFor('the outbox to be emptied by the survivor', async () => (await outboxKeys('hello-c')).length === 0, 10_000);
    t.regex(survivor.output(), /outbox relay: connected to the broker/);
  } catch (error) {
    report(t, { doomed, survivor, feed, nats });
    throw error;
  } finally {
    if (!nats.isRunning()) await nats.start();
    await waitForNatsPassing(consul, 1);
  }
});

test.serial(
  'the activity service stopped while users are written, then started: it shows what it showed before and what it missed',
  async (t) => {
    t.timeout(TEST_TIMEOUT_MS);
    const writer = await hello(t, 'hello-d', 'hello-d-1');
    let feed = await activity(t, 'activity-d-1');
    const first: ActivityReplica = feed;
    try {
      const before = await createUser(writer, 'Before');
      await waitFor('the first event in the feed', async () => {
        const recent = await call(`${feed.url}/api/activity`);
        return ofUsers(recent.json!.events as UserEvent[], [before]).length === 1;
      });
      const shownBefore = (await call(`${feed.url}/api/activity?limit=100`)).json!.events as UserEvent[];
      t.is(await feed.stop(), 0, 'the activity replica drains and exits 0');

      const whileDown: string[] = [];
      for (let i = 0; i < 5; i++) whileDown.push(await createUser(writer, `Away${i}`));
      await waitFor(
        'the outbox to be published while the activity service is down',
        async () => (await outboxKeys('hello-d')).length === 0,
      );

      // The same SERVICE_ID: the same durable consumer, which the broker kept with its position.
      feed = await activity(t, 'activity-d-1');
      await waitFor('the events written while it was down', async () => {
        const recent = await call(`${feed.url}/api/activity`);
        return ofUsers(recent.json!.events as UserEvent[], whileDown).length === whileDown.length;
      });
      const shownAfter = (await call(`${feed.url}/api/activity?limit=100`)).json!.events as UserEvent[];
      t.deepEqual(
        shownAfter.map((e) => e.id),
        [...ofUsers(shownAfter, whileDown), ...shownBefore].slice(0, 100).map((e) => e.id),
        'the events written while it was down, newest first, then exactly what it showed before the stop',
      );
      t.deepEqual(
        ofUsers(shownAfter, whileDown)
          .map((e) => e.userId)
          .reverse(),
        whileDown,
        'each once, in the order written',
      );
      t.deepEqual(
        await durablesOf('activity-d-1'),
        ['activity-d-1'],
        'the restarted replica resumed its durable: no second one on the broker',
      );
    } catch (error) {
      report(t, { writer, 'activity (first run)': first, 'activity (restarted)': feed, nats });
      throw error;
    }
  },
);

/** How many messages the broker has delivered to the durable `name` (nats-server's monitoring /jsz). */
async function deliveredTo(name: string): Promise<number | undefined> {
  const res = await fetch(`http://127.0.0.1:${nats.monitorPort}/jsz?accounts=true&streams=true&consumers=true`, {
    signal: AbortSignal.timeout(2000),
  });
  const find = (value: unknown): number | undefined => {
    if (Array.isArray(value)) return value.map(find).find((n) => n !== undefined);
    if (value === null || typeof value !== 'object') return undefined;
    const record = value as { name?: unknown; delivered?: { consumer_seq?: number } };
    if (record.name === name && record.delivered) return record.delivered.consumer_seq;
    return Object.values(record)
      .map(find)
      .find((n) => n !== undefined);
  };
  return find(await res.json());
}

/** The consumers of USER_EVENTS on the broker whose names start with `prefix` (nats-server's monitoring /jsz). */
async function durablesOf(prefix: string): Promise<string[]> {
  const res = await fetch(`http://127.0.0.1:${nats.monitorPort}/jsz?accounts=true&streams=true&consumers=true`, {
    signal: AbortSignal.timeout(2000),
  });
  interface Jsz {
    account_details?: Array<{ stream_detail?: Array<{ name: string; consumer_detail?: Array<{ name: string }> }> }>;
  }
  const jsz = (await res.json()) as Jsz;
  const streams = (jsz.account_details ?? []).flatMap((a) => a.stream_detail ?? []).filter((s) => s.name === 'USER_EVENTS');
  return streams
    .flatMap((s) => s.consumer_detail ?? [])
    .map((c) => c.name)
    .filter((name) => name.startsWith(prefix))
    .sort();
}

test.serial('a new activity replica starts at the last ACTIVITY_KEEP events of the stream, not at its first', async (t) => {
  t.timeout(TEST_TIMEOUT_MS);
  const writer = await hello(t, 'hello-e', 'hello-e-1');
  let feed: ActivityReplica | undefined;
  try {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await createUser(writer, `Recent${i}`));
    await waitFor('the outbox to be published', async () => (await outboxKeys('hello-e')).length === 0);
    feed = await activity(t, 'activity-e-1', { ACTIVITY_KEEP: '2' });
    const url = feed.url;
    let recent: UserEvent[] = [];
    await waitFor('the last two events in the feed', async () => {
      recent = (await call(`${url}/api/activity`)).json!.events as UserEvent[];
      return recent.length === 2;
    });
    t.deepEqual(
      recent.map((e) => e.userId),
      [ids[4], ids[3]],
      'the newest two, newest first',
    );
    // The stream holds every earlier test's events too; only the two the feed can keep were read back, and
    // the new durable starts after them (it delivered none of the earlier ones).
    t.is(await deliveredTo('activity-e-1'), 0);
  } catch (error) {
    report(t, { writer, ...(feed ? { feed } : {}), nats });
    throw error;
  }
});

/** The ids of GET <url>/api/activity?limit=`limit`, newest first. */
async function shownIds(url: string, limit: number): Promise<string[]> {
  return ((await call(`${url}/api/activity?limit=${limit}`)).json!.events as UserEvent[]).map((e) => e.id);
}

test.serial('an activity replica killed (SIGKILL) and started again shows the same last events, and so does a new one', async (t) => {
  t.timeout(TEST_TIMEOUT_MS);
  const writer = await hello(t, 'hello-f', 'hello-f-1');
  const keep = { ACTIVITY_KEEP: '10' };
  let feed = await activity(t, 'activity-f-1', keep);
  const first = feed;
  try {
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push(await createUser(writer, `Kept${i}`));
    await waitFor('the last ten users’ events in the feed', async () => {
      const recent = await call(`${feed.url}/api/activity?limit=10`);
      return ofUsers(recent.json!.events as UserEvent[], ids.slice(2)).length === 10;
    });
    const shownBefore = await shownIds(feed.url, 10);
    feed.child.kill('SIGKILL');
    t.is(await feed.exited, 'SIGKILL');

    feed = await activity(t, 'activity-f-1', keep);
    t.deepEqual(await shownIds(feed.url, 10), shownBefore, 'the restarted replica (same durable) shows the same events');
    // A replica with another SERVICE_ID (a replaced container, a deploy) has a new durable: the same events too.
    const other = await activity(t, 'activity-f-2', keep);
    t.deepEqual(await shownIds(other.url, 10), shownBefore, 'a new replica shows the same events');
  } catch (error) {
    report(t, { writer, 'activity (first run)': first, 'activity (restarted)': feed, nats });
    throw error;
  }
});

test.serial(
  'an SSE client that left one replica reconnects with Last-Event-ID to another: it gets exactly what it missed, then the new events',
  async (t) => {
    t.timeout(TEST_TIMEOUT_MS);
    const writer = await hello(t, 'hello-g', 'hello-g-1');
    const left = await activity(t, 'activity-g-1');
    const running = await activity(t, 'activity-g-2');
    const streams: EventStream[] = [];
    t.teardown(() => streams.forEach((s) => s.close()));
    let started: ActivityReplica | undefined;
    try {
      const first = await openEventStream(left.url);
      streams.push(first);
      const seen: string[] = [];
      for (let i = 0; i < 3; i++) seen.push(await createUser(writer, `Seen${i}`));
      await first.until('the first three events', (events) => ofUsers(events, seen).length === 3);
      const lastEventId = first.ids.at(-1)!;
      // The replica the client was on goes away (drains: its streams end, EventSource reconnects).
      t.is(await left.stop(), 0);
      t.true(first.ended(), 'the stream ended when its replica stopped');

      const missed: string[] = [];
      for (let i = 0; i < 4; i++) missed.push(await createUser(writer, `Missed${i}`));
      await waitFor('the missed events in the running replica’s feed', async () => {
        const recent = await call(`${running.url}/api/activity`);
        return ofUsers(recent.json!.events as UserEvent[], missed).length === missed.length;
      });
      // A replica started after the client left knows the missed events only from the stream it read back.
      started = await activity(t, 'activity-g-3');

      for (const replica of [running, started]) streams.push(await openEventStream(replica.url, undefined, lastEventId));
      const live: string[] = [];
      for (let i = 0; i < 2; i++) live.push(await createUser(writer, `Live${i}`));
      const expected = [...missed, ...live];
      for (const stream of streams.slice(1)) {
        await stream.until('the missed and the new events', (events) => ofUsers(events, [...seen, ...expected]).length >= expected.length);
      }
      await new Promise((r) => setTimeout(r, 500));
      const [, fromRunning, fromStarted] = streams;
      for (const [label, stream] of [
        ['running replica', fromRunning],
        ['replica started after the client left', fromStarted],
      ] as const) {
        t.deepEqual(
          ofUsers(stream.events, [...seen, ...expected]).map((e) => e.userId),
          expected,
          `${label}: the missed events, then the new ones, each once, none it had seen`,
        );
      }
      t.deepEqual(fromRunning.ids, fromStarted.ids, 'an event has the same SSE id on every replica (its stream sequence)');
      const sequences = fromRunning.ids.map(Number);
      t.true(
        sequences.every((seq, i) => seq > (i === 0 ? Number(lastEventId) : sequences[i - 1])),
        `ids are increasing stream sequences after ${lastEventId}: ${sequences.join(', ')}`,
      );
    } catch (error) {
      report(t, { writer, 'activity-g-1': left, 'activity-g-2': running, ...(started ? { 'activity-g-3': started } : {}), nats });
      throw error;
    }
  },
);

test.serial(
  'a stopped replica’s durable is removed by the broker after ACTIVITY_DURABLE_INACTIVE_SECONDS; one with the default stays',
  async (t) => {
    t.timeout(TEST_TIMEOUT_MS);
    const short = await activity(t, 'activity-h-1', { ACTIVITY_DURABLE_INACTIVE_SECONDS: '2' });
    const long = await activity(t, 'activity-h-2');
    try {
      t.deepEqual(await durablesOf('activity-h-'), ['activity-h-1', 'activity-h-2']);
      // Both scaled away: stopped as the program stops a replica it removes.
      t.deepEqual(await Promise.all([short.stop(), long.stop()]), [0, 0]);
      const stoppedAt = Date.now();
      await waitFor(
        'the short-threshold durable to be gone from the broker',
        async () => !(await durablesOf('activity-h-')).includes('activity-h-1'),
        20_000,
        100,
      );
      t.log(
        `durable removed ${Date.now() - stoppedAt} ms after its replica stopped (threshold: 2 s without a pull request, plus up to 1 s of the broker's jitter)`,
      );
      // Longer than the short threshold, its jitter and the broker's next check: one threshold of 2 s for both would show here.
      await new Promise((r) => setTimeout(r, 4000));
      t.deepEqual(await durablesOf('activity-h-'), ['activity-h-2'], 'the one with the default threshold (an hour) is kept');
    } catch (error) {
      report(t, { 'activity-h-1': short, 'activity-h-2': long, nats });
      throw error;
    }
  },
);

test.serial('events the broker acked survive a SIGKILL of the broker (its process, not its host)', async (t) => {
  t.timeout(TEST_TIMEOUT_MS);
  const writer = await hello(t, 'hello-i', 'hello-i-1');
  let feed: ActivityReplica | undefined;
  try {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await createUser(writer, `Acked${i}`));
    // An empty outbox: the relay had the broker's ack for every event and deleted its entry.
    await waitFor('the outbox to be emptied once the broker acked', async () => (await outboxKeys('hello-i')).length === 0, 10_000);
    process.kill(nats.pid()!, 'SIGKILL');
    await nats.stop();
    await nats.start();
    await waitForNatsPassing(consul, 1);
    // A new replica reads the stream back at start: the acked events are there.
    feed = await activity(t, 'activity-i-1', { ACTIVITY_KEEP: '5' });
    t.deepEqual(((await call(`${feed.url}/api/activity`)).json!.events as UserEvent[]).map((e) => e.userId).reverse(), ids);
  } catch (error) {
    report(t, { writer, ...(feed ? { feed } : {}), nats });
    throw error;
  } finally {
    if (!nats.isRunning()) await nats.start();
    await waitForNatsPassing(consul, 1);
  }
});

/** Messages the broker received on each connection named `<prefix>...` (nats-server's monitoring /connz, closed ones too). */
async function messagesFrom(prefix: string): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${nats.monitorPort}/connz?state=all&limit=1000`, { signal: AbortSignal.timeout(2000) });
  const { connections } = (await res.json()) as { connections: Array<{ name?: string; in_msgs: number }> };
  const counts = new Map<string, number>();
  for (const c of connections) if (c.name?.startsWith(prefix)) counts.set(c.name, (counts.get(c.name) ?? 0) + c.in_msgs);
  return counts;
}

/** The JetStream API requests a relay sends as it connects (account info, stream info), beside its publishes. */
const CONNECT_REQUESTS = 3;

test.serial(
  'three replicas write: each event is published once, by the relay of the replica that wrote it (the broker’s counters)',
  async (t) => {
    t.timeout(TEST_TIMEOUT_MS);
    const writers = [
      await hello(t, 'hello-p', 'hello-p-1'),
      await hello(t, 'hello-p', 'hello-p-2'),
      await hello(t, 'hello-p', 'hello-p-3'),
    ];
    const feed = await activity(t, 'activity-p-1');
    const stream = await openEventStream(feed.url);
    t.teardown(() => stream.close());
    try {
      const written = new Map<string, string[]>(writers.map((w) => [w.id, []]));
      for (let i = 0; i < 30; i++) written.get(writers[i % 3].id)!.push(await createUser(writers[i % 3], `Once${i}`));
      const ids = [...written.values()].flat();
      await stream.until(`${ids.length} created events`, (events) => ofUsers(events, ids).length === ids.length, 30_000);
      await waitFor('the outbox to be emptied', async () => (await outboxKeys('hello-p')).length === 0, 10_000);
      t.deepEqual(repeated(ofUsers(stream.events, ids)), [], 'no event id arrived twice');

      const received = await messagesFrom('hello-p-');
      const total = [...received.values()].reduce((a, b) => a + b, 0);
      t.log(`messages the broker received from the relays: ${JSON.stringify(Object.fromEntries(received))} for ${ids.length} writes`);
      t.true(total >= ids.length, `${total} messages for ${ids.length} writes`);
      t.true(total <= ids.length + CONNECT_REQUESTS * writers.length, `${total} messages for ${ids.length} writes: one publish each`);
      for (const w of writers) {
        const own = written.get(w.id)!.length;
        t.true((received.get(w.id) ?? 0) <= own + CONNECT_REQUESTS, `${w.id} published its own ${own} and no other: ${received.get(w.id)}`);
      }
    } catch (error) {
      report(t, { 'hello-p-1': writers[0], 'hello-p-2': writers[1], 'hello-p-3': writers[2], feed, nats });
      throw error;
    }
  },
);

async function outboxStatus(replica: Replica): Promise<OutboxStatus> {
  return ((await call(`${replica.url}/health`)).json as { outbox: OutboxStatus }).outbox;
}

test.serial(
  'the broker stopped: the outbox fills to its bound, the status says so first, a write at the bound gets 503 and commits nothing; every kept event arrives once it is back',
  async (t) => {
    t.timeout(TEST_TIMEOUT_MS);
    const writer = await hello(t, 'hello-q', 'hello-q-1', { OUTBOX_MAX_ENTRIES: '10' });
    const feed = await activity(t, 'activity-q-1');
    const stream = await openEventStream(feed.url);
    t.teardown(() => stream.close());
    try {
      await nats.stop();
      t.like(await outboxStatus(writer), { entries: 0, maxEntries: 10, state: 'ok' });
      const ids: string[] = [];
      const states: string[] = [];
      for (let i = 0; i < 10; i++) {
        ids.push(await createUser(writer, `Kept${i}`));
        states.push((await outboxStatus(writer)).state);
      }
      t.deepEqual(states, [...Array<string>(7).fill('ok'), 'filling', 'filling', 'full'], 'filling from 80 % of the bound, then full');

      const refused = await fetch(`${writer.url}/api/users`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Refused', email: 'refused@example.com' }),
      });
      t.is(refused.status, 503);
      t.is(refused.headers.get('retry-after'), '5');
      t.regex(((await refused.json()) as { error: string }).error, /outbox is full \(10 of 10/);
      const listed = (await call(`${writer.url}/api/users?limit=64`)).json!.users as Array<{ name: string }>;
      t.is(listed.length, 10, 'the refused write committed nothing');
      t.false(listed.some((u) => u.name === 'Refused'));
      t.is((await outboxKeys('hello-q')).length, 10, 'every committed event kept');
      t.regex(writer.output(), /"msg":"outbox filling"/);
      t.regex(writer.output(), /"msg":"outbox full"/);

      await nats.start();
      await stream.until(`${ids.length} kept events`, (events) => ofUsers(events, ids).length === ids.length, 30_000);
      t.deepEqual(repeated(ofUsers(stream.events, ids)), []);
      await waitFor('the outbox to drain and the status to say so', async () => (await outboxStatus(writer)).state === 'ok', 10_000);
      t.is((await outboxKeys('hello-q')).length, 0);
      await createUser(writer, 'After');
    } catch (error) {
      report(t, { writer, feed, nats });
      throw error;
    } finally {
      if (!nats.isRunning()) await nats.start();
      await waitForNatsPassing(consul, 1);
    }
  },
);

test.serial(
  'an event the broker takes but does not ack (a full stream that discards new ones) stays in the outbox, and arrives once the broker acks',
  async (t) => {
    t.timeout(TEST_TIMEOUT_MS);
    const writer = await hello(t, 'hello-r', 'hello-r-1');
    const feed = await activity(t, 'activity-r-1');
    const stream = await openEventStream(feed.url);
    t.teardown(() => stream.close());
    const nc = await connect({ servers: nats.url });
    t.teardown(() => nc.close());
    const jsm = await nc.jetstreamManager();
    // A first event: the relay is connected and the stream holds at least one message.
    const first = await createUser(writer, 'First');
    await stream.until('the first event', (events) => ofUsers(events, [first]).length === 1);
    const { config, state } = await jsm.streams.info(USER_EVENTS_STREAM);
    try {
      // Full, and refusing new messages: the broker answers the publish with an error instead of an ack.
      await jsm.streams.update(USER_EVENTS_STREAM, { ...config, max_msgs: state.messages, discard: DiscardPolicy.New });
      const id = await createUser(writer, 'Unacked');
      await waitFor('the relay to be refused', () => /the broker refused/.test(writer.output()), 10_000);
      // A few more of the relay's retries (100 ms doubling), each refused.
      await new Promise((r) => setTimeout(r, 1500));
      t.is((await outboxKeys('hello-r')).length, 1, 'the entry stays in the outbox while the broker does not ack');
      t.is(ofUsers(stream.events, [id]).length, 0);
      t.is((await jsm.streams.info(USER_EVENTS_STREAM)).state.messages, state.messages, 'the stream took nothing');

      await jsm.streams.update(USER_EVENTS_STREAM, config);
      await stream.until('the event once the broker acks', (events) => ofUsers(events, [id]).length === 1, 15_000);
      await waitFor('the outbox to be emptied after the ack', async () => (await outboxKeys('hello-r')).length === 0, 10_000);
    } catch (error) {
      report(t, { writer, feed, nats });
      throw error;
    } finally {
      await jsm.streams.update(USER_EVENTS_STREAM, config).catch(() => undefined);
    }
  },
);
