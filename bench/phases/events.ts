import { setTimeout as sleep } from 'node:timers/promises';
import { startActivity, waitForConsuming } from '../../harness/activity';
import type { ConsulAgent } from '../../harness/consul';
import { registerNatsInConsul, startNats, waitForNatsPassing, type NatsServer } from '../../harness/nats';
import { waitFor, type Managed } from '../../harness/processes';
import { startReplica, type Replica } from '../../harness/service';
import { openEventStream } from '../../harness/sse';
import { pinProcess } from '../pinning';

/** The writers' service name: its own outbox, so the hello replicas of the other phases publish nothing here. */
const WRITER = 'events-bench';
/** Hello replicas writing: every relay could publish every entry; one publish per write is what is measured. */
export const EVENT_WRITERS = 3;
/** Writes before the measured ones: each relay's first publish opens its broker connection. */
const WARMUP_WRITES = 6;

/** The broker the event phases share: a nats-server with JetStream on the test core, registered in Consul as `nats`. */
export async function startBenchBroker(consul: ConsulAgent, testCpu: number | undefined): Promise<NatsServer> {
  const nats = await startNats();
  try {
    pinProcess(nats.pid()!, testCpu);
    await registerNatsInConsul(consul, nats);
    await waitForNatsPassing(consul, 1, 'nats', 10_000);
    return nats;
  } catch (error) {
    await nats.close();
    throw error;
  }
}

export interface EventRun {
  /** One per measured write: POST sent to its event on the SSE stream, ms. */
  latencyMs: number[];
  /** The rate the writes were sent at (open loop), and the rate they were answered at. */
  targetPerSec: number;
  answeredPerSec: number;
  /** Writes not answered 201 (each one's event is then not waited for), by status or error. */
  failed: number;
  failures: Record<string, number>;
  /** Messages nats-server received from the writers' relay connections over the measured writes (/connz in_msgs). */
  brokerMessages: number;
  writes: number;
}

/** Messages nats-server received on the connections named `<prefix>...`, closed ones too (/connz in_msgs). */
async function messagesFrom(nats: NatsServer, prefix: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${nats.monitorPort}/connz?state=all&limit=1000`, { signal: AbortSignal.timeout(2000) });
  const { connections } = (await res.json()) as { connections: Array<{ name?: string; in_msgs: number }> };
  return connections.filter((c) => c.name?.startsWith(prefix)).reduce((n, c) => n + c.in_msgs, 0);
}

/**
 * Write → event on the SSE stream, with EVENT_WRITERS hello replicas sharing one outbox: users are created
 * at `perSec` (open loop: each POST leaves on its schedule, whatever the earlier ones do), round robin over
 * the replicas, straight to them (not through the balancer: the path measured is the event's). Each write's
 * time runs from just before its POST until the activity service's stream delivers its event. The path: the
 * outbox transaction in Consul, the writer's relay publishing at once and JetStream's ack, the activity
 * replica's durable consumer, its SSE push. The broker's own counters give the publishes per write: the
 * messages it received from the writers' relays over the measured writes. Every process of the path runs on
 * the test core.
 */
export async function measureEvents(consul: ConsulAgent, nats: NatsServer, testCpu: number | undefined, perSec: number, writes: number) {
  const started: Managed[] = [];
  try {
    const writers: Replica[] = [];
    for (let i = 1; i <= EVENT_WRITERS; i++) writers.push(await startReplica(consul, WRITER, `${WRITER}-${i}`));
    const activity = await startActivity(consul, 'activity-bench-1');
    started.push(...writers, activity);
    for (const p of started) pinProcess(p.child.pid!, testCpu);
    for (const p of [...writers, activity]) await waitFor(`${p.id} to answer`, async () => (await fetch(`${p.url}/health`)).ok, 15_000, 50);
    await waitForConsuming(activity);
    const stream = await openEventStream(activity.url);
    try {
      const post = async (i: number): Promise<{ sent: number; id?: string; failure?: string }> => {
        const sent = performance.now();
        const res = await fetch(`${writers[i % writers.length].url}/api/users`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name: `Bench ${i}`, email: `bench${i}@example.com` }),
          signal: AbortSignal.timeout(5000),
        }).catch((error: Error) => error.name);
        if (typeof res === 'string') return { sent, failure: res };
        if (res.status !== 201) return { sent, failure: `HTTP ${res.status}: ${(await res.text()).slice(0, 120)}` };
        return { sent, id: ((await res.json()) as { id: string }).id };
      };
      for (let i = 0; i < WARMUP_WRITES; i++) {
        const { id } = await post(i);
        if (id) await waitFor(`the event of user ${id}`, () => stream.events.find((e) => e.userId === id), 10_000, 5);
      }
      const messagesBefore = await messagesFrom(nats, `${WRITER}-`);
      const begun = performance.now();
      const posts: Array<ReturnType<typeof post>> = [];
      for (let i = 0; i < writes; i++) {
        const due = begun + (i * 1000) / perSec;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        posts.push(post(WARMUP_WRITES + i));
      }
      const answered = await Promise.all(posts);
      const answeredPerSec = writes / ((performance.now() - begun) / 1000);
      const ids = new Set(answered.flatMap((a) => (a.id ? [a.id] : [])));
      await waitFor(
        `the events of ${ids.size} writes on the stream`,
        () => stream.events.filter((e) => ids.has(e.userId)).length >= ids.size,
        30_000,
        20,
      );
      const arrived = new Map(stream.events.filter((e) => ids.has(e.userId)).map((e) => [e.userId, stream.arrivedAt.get(e.id)!]));
      // A moment for late publishes (another relay's, of an entry it took over) to be counted too.
      await sleep(1000);
      const failures: Record<string, number> = {};
      for (const { failure } of answered) if (failure) failures[failure] = (failures[failure] ?? 0) + 1;
      const brokerMessages = (await messagesFrom(nats, `${WRITER}-`)) - messagesBefore;
      return {
        latencyMs: answered.flatMap((a) => (a.id ? [arrived.get(a.id)! - a.sent] : [])),
        targetPerSec: perSec,
        answeredPerSec,
        failed: answered.filter((a) => !a.id).length,
        failures,
        brokerMessages,
        writes,
      } satisfies EventRun;
    } finally {
      stream.close();
    }
  } finally {
    await Promise.all(started.map((p) => p.stop(3000)));
  }
}
