// Publishes the outbox: follows `<service>/outbox/` with blocking queries, publishes every entry to the
// broker's USER_EVENTS stream, and deletes it (check-and-set) once the broker acked it. Every replica runs
// one; two may publish the same entry, which the broker drops by its message id (and consumers by event id).
import type Consul from 'consul';
import type { NatsConnection } from 'nats';
import { connectBroker, ensureUserEventsStream, findBroker } from '../lib/broker';
import type { ConsulAddress } from '../lib/consul-address';
import type { Logger } from '../lib/logger';
import { parseUserEvent, userEventSubject, type UserEvent } from '../lib/user-events';
import { wakeableSleep } from '../lib/wakeable-sleep';
import { BROKER_RETRY, retryDelayMs, type RetryTiming } from '../lib/backoff';
import { nextIndex } from '../lib/consul-index';

export interface RelayOptions {
  consul: ConsulAddress;
  consulToken: string | undefined;
  /** For the check-and-set deletes: the replica's bounded client (consul-client.ts). */
  consulClient: Consul;
  outboxPrefix: string;
  natsService: string;
  /** Names this relay's broker connection (the replica's id). */
  name: string;
  logger: Logger;
  retry?: RetryTiming;
  /** How long one blocking query waits for a change. */
  waitSeconds?: number;
}

export interface OutboxRelay {
  /** Stops following and publishing and closes the broker connection; entries left stay for another relay. */
  stop(): Promise<void>;
}

interface OutboxEntry {
  Key: string;
  ModifyIndex: number;
  Value: string | null;
}

/** Publishes in chunks of this many at once: a backlog after an outage goes out in a few round trips. */
const PUBLISH_CHUNK = 64;
const PUBLISH_TIMEOUT_MS = 5000;

export function startOutboxRelay(o: RelayOptions): OutboxRelay {
  const retry = o.retry ?? BROKER_RETRY;
  const waitSeconds = o.waitSeconds ?? 30;
  const stopping = new AbortController();
  const { sleep, wake } = wakeableSleep();
  let stopped = false;
  let broker: NatsConnection | undefined;
  // Keys already reported as unreadable, so each is logged once.
  const unreadable = new Set<string>();

  /** The outbox's entries and Consul's index; blocks until a change when `index` > 0. */
  const readOutbox = async (index: number): Promise<{ entries: OutboxEntry[]; index: number }> => {
    const url = `${o.consul.url}/v1/kv/${o.outboxPrefix}/?recurse&index=${index}&wait=${waitSeconds}s`;
    const signal = AbortSignal.any([stopping.signal, AbortSignal.timeout(waitSeconds * 1000 + 10_000)]);
    const res = await fetch(url, { headers: o.consulToken === undefined ? {} : { 'X-Consul-Token': o.consulToken }, signal });
    const answered = Number(res.headers.get('x-consul-index'));
    // 404: no key under the prefix, an empty outbox.
    if (res.status === 404) return { entries: [], index: answered };
    if (!res.ok) throw new Error(`Consul answered ${res.status} reading the outbox: ${(await res.text()).trim().slice(0, 200)}`);
    return { entries: (await res.json()) as OutboxEntry[], index: answered };
  };

  /** The broker's connection, opened (found through Consul, stream ensured) when there is none. */
  const connection = async (): Promise<NatsConnection> => {
    if (broker && !broker.isClosed()) return broker;
    const servers = await findBroker(o.consul, o.consulToken, o.natsService);
    const nc = await connectBroker(servers, o.name);
    try {
      await ensureUserEventsStream(nc);
    } catch (error) {
      await nc.close();
      throw error;
    }
    broker = nc;
    o.logger.info('outbox relay: connected to the broker', { server: nc.getServer(), service: o.natsService });
    return nc;
  };

  /** Publishes and deletes chunk by chunk; `at` hears which server each step talks to, for the error's blame. */
  const publish = async (
    nc: NatsConnection,
    entries: Array<{ entry: OutboxEntry; event: UserEvent }>,
    at: (step: 'broker' | 'outbox') => void,
  ): Promise<void> => {
    const js = nc.jetstream();
    for (let start = 0; start < entries.length; start += PUBLISH_CHUNK) {
      const chunk = entries.slice(start, start + PUBLISH_CHUNK);
      at('broker');
      await Promise.all(
        chunk.map(({ event }) =>
          js.publish(userEventSubject(event.type), JSON.stringify(event), { msgID: event.id, timeout: PUBLISH_TIMEOUT_MS }),
        ),
      );
      // Acked: the broker has them. A delete that finds the entry changed or gone (another relay) is fine.
      at('outbox');
      await Promise.all(chunk.map(({ entry }) => o.consulClient.kv.del({ key: entry.Key, cas: entry.ModifyIndex })));
    }
  };

  const readable = (entries: OutboxEntry[]) =>
    entries.flatMap((entry) => {
      const event = entry.Value === null ? undefined : parseUserEvent(Buffer.from(entry.Value, 'base64').toString('utf8'));
      if (event) return [{ entry, event }];
      if (!unreadable.has(entry.Key)) {
        unreadable.add(entry.Key);
        o.logger.error('outbox relay: an entry is not a user event; left in place', { key: entry.Key });
      }
      return [];
    });

  const run = async () => {
    let index = 0;
    let failures = 0;
    let lastProblem = '';
    let kept = 0;
    // After a failure to reach the broker, only the broker is asked for (cheap) until it answers: the
    // outbox, which grows during an outage, is read again once there is somewhere to publish it.
    let brokerFirst = false;
    while (!stopped) {
      // What failed, if this round fails: the broker (connect, publish) or Consul (the outbox).
      let step: 'broker' | 'outbox' = 'broker';
      try {
        if (brokerFirst) await connection();
        step = 'outbox';
        const answer = await readOutbox(index);
        const events = readable(answer.entries);
        kept = events.length;
        step = 'broker';
        if (events.length > 0) await publish(await connection(), events, (now) => (step = now));
        brokerFirst = false;
        index = nextIndex(index, answer.index).index;
        if (failures > 0) o.logger.info('outbox relay: publishing again', { published: events.length, failedAttempts: failures });
        failures = 0;
        lastProblem = '';
      } catch (error) {
        if (stopped) break;
        failures++;
        brokerFirst = step === 'broker';
        const problem = error instanceof Error ? error.message : String(error);
        const delayMs = retryDelayMs(failures, retry);
        // One line per distinct problem, not one per retry.
        if (problem !== lastProblem) {
          o.logger.warn('outbox relay: cannot publish; events stay in the outbox, retrying', { error: problem, kept, retryMs: delayMs });
          lastProblem = problem;
        }
        // A Consul failure leaves a working broker connection alone.
        if (step === 'broker') {
          broker?.close().catch(() => undefined);
          broker = undefined;
        }
        // Read afresh after a failure: another relay may have published meanwhile, or Consul restarted.
        index = 0;
        await sleep(delayMs);
      }
    }
  };
  const running = run();

  return {
    async stop() {
      stopped = true;
      stopping.abort();
      wake();
      await running;
      await broker?.close().catch(() => undefined);
      broker = undefined;
    },
  };
}
