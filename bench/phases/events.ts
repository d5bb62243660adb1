import { setTimeout as sleep } from 'node:timers/promises';
import { startActivity, waitForConsuming } from '../../harness/activity';
import type { ConsulAgent } from '../../harness/consul';
import { registerNatsInConsul, startNats } from '../../harness/nats';
import { waitFor, type Managed } from '../../harness/processes';
import { startReplica } from '../../harness/service';
import { openEventStream } from '../../harness/sse';
import { pinProcess } from '../pinning';

/** The writer's service name: its own outbox, so the hello replicas of the other phases publish nothing here. */
const WRITER = 'events-bench';
/** Writes before the measured ones: the relay's first publish opens its broker connection. */
const WARMUP_WRITES = 5;

/**
 * Write → event on the SSE stream: a user is created through a hello replica (directly, not through the
 * balancer: the path measured is the event's), and the time runs from just before the POST until the
 * activity service's stream delivers the event for that user. The path: the outbox transaction in
 * Consul, the relay's blocking query waking, its publish and JetStream's ack, the activity replica's
 * durable consumer, its SSE push. nats-server, the replica and the activity replica run on the test core.
 * Sequential writes, so each one's latency is its own. Milliseconds, one per write.
 */
export async function measureEventLatency(consul: ConsulAgent, testCpu: number | undefined, writes: number): Promise<number[]> {
  const started: Managed[] = [];
  const nats = await startNats();
  try {
    pinProcess(nats.pid()!, testCpu);
    await registerNatsInConsul(consul, nats);
    await waitFor('nats passing in Consul', async () => (await consul.passing('nats')).length > 0, 10_000, 50);
    const writer = await startReplica(consul, WRITER, `${WRITER}-1`);
    started.push(writer);
    const activity = await startActivity(consul, 'activity-bench-1');
    started.push(activity);
    for (const p of started) pinProcess(p.child.pid!, testCpu);
    await waitFor(`${writer.id} to answer`, async () => (await fetch(`${writer.url}/health`)).ok, 15_000, 50);
    await waitFor(`${activity.id} to answer`, async () => (await fetch(`${activity.url}/health`)).ok, 15_000, 50);
    await waitForConsuming(activity);
    const stream = await openEventStream(activity.url);
    try {
      const samples: number[] = [];
      for (let i = 0; i < WARMUP_WRITES + writes; i++) {
        const sent = performance.now();
        const res = await fetch(`${writer.url}/api/users`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name: `Bench ${i}`, email: `bench${i}@example.com` }),
          signal: AbortSignal.timeout(5000),
        });
        if (res.status !== 201) throw new Error(`POST /api/users answered ${res.status}: ${await res.text()}`);
        const { id } = (await res.json()) as { id: string };
        // The arrival time is taken when the stream's bytes come in; polling only notices it.
        const event = await waitFor(`the event of user ${id} on the stream`, () => stream.events.find((e) => e.userId === id), 10_000, 2);
        if (i >= WARMUP_WRITES) samples.push(stream.arrivedAt.get(event.id)! - sent);
        await sleep(5);
      }
      return samples;
    } finally {
      stream.close();
    }
  } finally {
    await Promise.all(started.map((p) => p.stop(3000)));
    await nats.close();
  }
}
