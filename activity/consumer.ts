// The activity service's subscription: a durable JetStream consumer per replica on USER_EVENTS, so the
// events published while the replica was away are delivered when it returns. Each message goes into
// the feed (which drops duplicates by event id) and is acked.
import { AckPolicy, DeliverPolicy, type ConsumerMessages, type NatsConnection } from 'nats';
import { BROKER_RETRY, retryDelayMs, type RetryTiming } from '../lib/backoff';
import { connectBroker, ensureUserEventsStream, findBroker } from '../lib/broker';
import type { ConsulAddress } from '../lib/consul-address';
import type { Logger } from '../lib/logger';
import { parseUserEvent, USER_EVENTS_STREAM, USER_EVENTS_SUBJECTS } from '../lib/user-events';
import { wakeableSleep } from '../lib/wakeable-sleep';
import type { ActivityFeed } from './feed';

/**
 * A durable nobody consumed from for this long is removed by the broker: a replica that was scaled away
 * leaves nothing behind. One that comes back later starts over from the stream's first kept event.
 */
export const DURABLE_INACTIVE_MS = 60 * 60 * 1000;

/** After this many messages in a row the loop lets the streams' writers run (a backlog arrives in one go). */
const YIELD_EVERY = 64;

/** Unacked messages the broker sends before it waits for acks. */
const MAX_ACK_PENDING = 1000;

export interface ConsumerOptions {
  consul: ConsulAddress;
  consulToken: string | undefined;
  natsService: string;
  durable: string;
  /** How many recent events the feed keeps: where a new durable starts. */
  keep: number;
  feed: ActivityFeed;
  logger: Logger;
  retry?: RetryTiming;
}

export interface EventConsumer {
  stop(): Promise<void>;
}

const nanos = (ms: number) => ms * 1_000_000;

export function startEventConsumer(o: ConsumerOptions): EventConsumer {
  const retry = o.retry ?? BROKER_RETRY;
  const { sleep, wake } = wakeableSleep();
  let stopped = false;
  let nc: NatsConnection | undefined;
  let messages: ConsumerMessages | undefined;
  // Whether the last attempt got as far as consuming: then its end is a new outage, not one more failure.
  let consumed = false;

  /** Connects, makes sure the stream and this replica's durable exist, and consumes until the connection ends. */
  const consumeOnce = async (): Promise<void> => {
    const servers = await findBroker(o.consul, o.consulToken, o.natsService);
    nc = await connectBroker(servers, o.durable);
    await ensureUserEventsStream(nc);
    const jsm = await nc.jetstreamManager();
    // A durable that exists keeps its position: the replica resumes after its last ack. A new one (a new
    // replica, or a deploy's new SERVICE_ID) starts at the last `keep` events, all the feed can hold,
    // rather than replaying the whole stream (up to 100,000 events) into it and its open streams.
    const existing = await jsm.consumers.info(USER_EVENTS_STREAM, o.durable).catch(() => undefined);
    if (existing === undefined) {
      const { state } = await jsm.streams.info(USER_EVENTS_STREAM);
      await jsm.consumers.add(USER_EVENTS_STREAM, {
        durable_name: o.durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: Math.max(1, state.last_seq - o.keep + 1),
        filter_subject: USER_EVENTS_SUBJECTS,
        inactive_threshold: nanos(DURABLE_INACTIVE_MS),
        max_ack_pending: MAX_ACK_PENDING,
      });
    }
    const consumer = await nc.jetstream().consumers.get(USER_EVENTS_STREAM, o.durable);
    messages = await consumer.consume({ max_messages: 256 });
    const current = messages;
    // The client does not reconnect by itself (lib/broker.ts): when the connection ends, so does the loop.
    void nc.closed().then(() => current.stop());
    consumed = true;
    o.logger.info('consuming user events', { server: nc.getServer(), durable: o.durable });
    let handled = 0;
    for await (const message of current) {
      if (++handled % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
      const event = parseUserEvent(message.string());
      if (!event) {
        o.logger.error('a message on the user events stream is not a user event; dropped', { subject: message.subject, seq: message.seq });
        message.term();
        continue;
      }
      o.feed.add(event);
      message.ack();
    }
  };

  const run = async () => {
    let failures = 0;
    let lastProblem = '';
    while (!stopped) {
      let problem: string;
      try {
        await consumeOnce();
        problem = 'the broker connection ended';
      } catch (error) {
        problem = error instanceof Error ? error.message : String(error);
      }
      await nc?.close().catch(() => undefined);
      nc = undefined;
      if (stopped) break;
      if (consumed) {
        failures = 0;
        lastProblem = '';
      }
      consumed = false;
      failures++;
      const delayMs = retryDelayMs(failures, retry);
      if (problem !== lastProblem) {
        o.logger.warn('cannot consume user events; retrying', { error: problem, retryMs: delayMs });
        lastProblem = problem;
      }
      await sleep(delayMs);
    }
  };
  const running = run();

  return {
    async stop() {
      stopped = true;
      wake();
      messages?.stop();
      await nc?.close().catch(() => undefined);
      await running;
    },
  };
}
