import test, { type ExecutionContext } from 'ava';
import { connect } from 'nats';
import { startConsul, type ConsulAgent } from '../../harness/consul';
import {
  registerNatsInConsul,
  startNatsCluster,
  streamCopies,
  waitForNatsPassing,
  type NatsServer,
  type StreamCopies,
} from '../../harness/nats';
import { stopAll, waitFor } from '../../harness/processes';
import type { Replica } from '../../harness/service';
import { openEventStream } from '../../harness/sse';
import { USER_EVENTS_STREAM, type UserEvent } from '../../lib/user-events';
import { activityFor, helloFor } from '../helpers/event-replicas';

// Three brokers in one JetStream cluster, as three broker VMs run them (infra/broker.ts), on loopback with
// real nats-servers, Consul (ACLs on, each broker registered as the program does) and the hello and activity
// bundles (`npm run build`). The tests share the cluster and run one at a time.

let consul: ConsulAgent;
let brokers: NatsServer[] = [];

test.before(async () => {
  consul = await startConsul();
  brokers = await startNatsCluster(3);
  for (const [i, broker] of brokers.entries()) await registerNatsInConsul(consul, broker, `nats-${i + 1}`);
  await waitForNatsPassing(consul, 3);
});

test.after.always(async () => {
  await stopAll();
  await Promise.all(brokers.map((b) => b.close()));
  await consul?.stop();
});

const TEST_TIMEOUT_MS = 120_000;
const THREE = { USER_EVENTS_REPLICAS: '3' };

const hello = (t: ExecutionContext, name: string, id: string, env: NodeJS.ProcessEnv = {}) => helloFor(t, consul, name, id, env);
const activity = (t: ExecutionContext, id: string, env: NodeJS.ProcessEnv = {}) => activityFor(t, consul, id, env);

/** POSTs a new user; its id, or the failure (status or error) as text. */
async function createUser(replica: Replica, name: string): Promise<{ id: string } | { failed: string }> {
  try {
    const res = await fetch(`${replica.url}/api/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name, email: `${name.toLowerCase()}@example.com` }),
      signal: AbortSignal.timeout(5000),
    });
    const body = (await res.json()) as { id?: string };
    return res.status === 201 && body.id ? { id: body.id } : { failed: `HTTP ${res.status} ${JSON.stringify(body)}` };
  } catch (error) {
    return { failed: String(error) };
  }
}

async function outboxKeys(serviceName: string): Promise<string[]> {
  const res = await fetch(`${consul.httpAddr}/v1/kv/${serviceName}/outbox/?keys`, {
    headers: { 'X-Consul-Token': consul.managementToken },
  });
  return res.status === 404 ? [] : ((await res.json()) as string[]);
}

/** The stream's replica count and message count, as the JetStream API answers (from the stream's leader). */
async function streamInfo(): Promise<{ replicas: number; messages: number }> {
  const nc = await connect({ servers: brokers.filter((b) => b.isRunning()).map((b) => b.url), timeout: 2000 });
  try {
    const info = await (await nc.jetstreamManager()).streams.info(USER_EVENTS_STREAM);
    return { replicas: info.config.num_replicas, messages: info.state.messages };
  } finally {
    await nc.close();
  }
}

function report(t: ExecutionContext, parts: Record<string, { output(): string }>): void {
  for (const [label, part] of Object.entries(parts)) t.log(`--- ${label}\n${part.output().slice(-3000)}`);
}

test.serial(
  'a one-copy stream (an older client made it) is raised to three copies by a client that wants three; no event is lost',
  async (t) => {
    t.timeout(TEST_TIMEOUT_MS);
    const older = await hello(t, 'hello-r', 'hello-r-1');
    try {
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) {
        const written = await createUser(older, `Single${i}`);
        if ('failed' in written) throw new Error(`write ${i} failed: ${written.failed}`);
        ids.push(written.id);
      }
      await waitFor('the outbox to be emptied', async () => (await outboxKeys('hello-r')).length === 0, 15_000);
      t.deepEqual(await streamInfo(), { replicas: 1, messages: 20 }, 'created with one copy, as a one-broker stack has it');

      // A replica of the new setting connects (its first write) and raises the stream in place.
      const newer = await hello(t, 'hello-r', 'hello-r-2', THREE);
      const last = await createUser(newer, 'Three');
      if ('failed' in last) throw new Error(`the write through the new replica failed: ${last.failed}`);
      ids.push(last.id);
      const copies = await waitFor(
        'three current copies of the stream',
        async () => {
          const now = await streamCopies(brokers, USER_EVENTS_STREAM);
          // The write through the new replica may be published just after the raise.
          return now?.copies === 3 && now.current === 3 && now.messages === 21 ? now : undefined;
        },
        30_000,
        250,
      );
      t.log(`three current copies of 21 events, leader ${copies.leader}`);
      t.deepEqual(await streamInfo(), { replicas: 3, messages: 21 });
      // Read back by a new activity replica (its history at start): every event written before and after.
      const feed = await activity(t, 'activity-r-1', { ...THREE, ACTIVITY_KEEP: '50' });
      const events = (await (await fetch(`${feed.url}/api/activity?limit=50`)).json()) as { events: UserEvent[] };
      t.deepEqual(events.events.map((e) => e.userId).reverse(), ids);
      // An older client connecting again does not lower it.
      await older.stop();
      const again = await hello(t, 'hello-r', 'hello-r-3');
      const written = await createUser(again, 'Older');
      t.false('failed' in written);
      await waitFor('the outbox to be emptied', async () => (await outboxKeys('hello-r')).length === 0, 15_000);
      t.is((await streamInfo()).replicas, 3);
    } catch (error) {
      report(t, { older, ...Object.fromEntries(brokers.map((b, i) => [`nats-${i + 1}`, b])) });
      throw error;
    }
  },
);

test.serial(
  "the stream's leader broker killed (SIGKILL) under steady writes: no write fails, every event arrives once on an open SSE stream, three current copies once it is back",
  async (t) => {
    t.timeout(TEST_TIMEOUT_MS);
    const writers = [await hello(t, 'hello-k', 'hello-k-1', THREE), await hello(t, 'hello-k', 'hello-k-2', THREE)];
    const feed = await activity(t, 'activity-k-1', THREE);
    const stream = await openEventStream(feed.url);
    t.teardown(() => stream.close());
    const leader = (await waitFor('a leader of the stream', () => streamCopies(brokers, USER_EVENTS_STREAM), 15_000, 250)).leader;
    const victim = brokers[Number(leader.replace('nats-', '')) - 1];
    try {
      const ids: string[] = [];
      const failures: string[] = [];
      const started = Date.now();
      let killedAt = 0;
      let back: Promise<void> | undefined;
      let backAt = 0;
      let seen: StreamCopies | undefined;
      let currentAt = 0;
      let writesWhileDown = 0;
      // About 10 writes a second; the leader killed at 3 s and started again 6 s later; the writes go on until
      // the stream has three current copies (a follower counts as current once it acked the leader's last
      // entry), at most 60 s.
      for (let i = 0; !currentAt && Date.now() - started < 60_000; i++) {
        const written = await createUser(writers[i % 2], `Steady${i}`);
        if ('failed' in written) failures.push(written.failed);
        else ids.push(written.id);
        if (killedAt && !back) writesWhileDown++;
        if (!killedAt && Date.now() - started > 3000) {
          process.kill(victim.pid()!, 'SIGKILL');
          await victim.stop();
          killedAt = Date.now();
        }
        if (killedAt && !back && Date.now() - killedAt > 6000) {
          back = victim.start();
          backAt = Date.now();
        }
        if (back && i % 5 === 0) {
          seen = await streamCopies(brokers, USER_EVENTS_STREAM);
          if (seen?.copies === 3 && seen.current === 3) currentAt = Date.now();
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      await back;
      t.true(currentAt > 0, `three current copies once the broker was back; last seen ${JSON.stringify(seen)}`);
      t.deepEqual(failures, [], 'no write failed');
      // The 6 s the leader is down hold some 60 writes on a quiet machine; 10 is enough to say writes went on.
      t.true(writesWhileDown >= 10, `${writesWhileDown} writes while the leader was down`);
      const wanted = new Set(ids);
      await stream.until(
        `${ids.length} created events`,
        (events) => new Set(events.filter((e) => wanted.has(e.userId)).map((e) => e.userId)).size === ids.length,
        45_000,
      );
      await waitFor('the outbox to be emptied', async () => (await outboxKeys('hello-k')).length === 0, 15_000);
      await new Promise((r) => setTimeout(r, 1000));
      const ofRun = stream.events.filter((e) => wanted.has(e.userId));
      t.is(ofRun.length, ids.length, 'one event per write on the open stream');
      t.is(new Set(ofRun.map((e) => e.id)).size, ofRun.length, 'no event id twice');
      t.false(stream.ended(), 'the SSE stream stayed open');
      t.log(
        `leader ${leader} killed; ${ids.length} writes, ${failures.length} failed, ${ofRun.length} events on the stream (${new Set(ofRun.map((e) => e.id)).size} distinct); ` +
          `started again ${backAt - killedAt} ms after the kill; three current copies ${currentAt - backAt} ms later (leader ${seen?.leader})`,
      );
    } catch (error) {
      report(t, {
        'hello-k-1': writers[0],
        'hello-k-2': writers[1],
        feed,
        ...Object.fromEntries(brokers.map((b, i) => [`nats-${i + 1}`, b])),
      });
      throw error;
    } finally {
      if (!victim.isRunning()) await victim.start();
    }
  },
);
