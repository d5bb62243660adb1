// The activity service's subscription: at start, the feed is filled with the stream's last events (a
// restarted replica shows what it showed before); then a durable JetStream consumer per replica on
// USER_EVENTS, so the events published while the replica was away are delivered when it returns. Each
// message goes into the feed (which drops duplicates by event id) and is acked.
import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JsMsg, type NatsConnection } from 'nats';
import { BROKER_RETRY, retryDelayMs, type RetryTiming } from '../lib/backoff';
import { openBroker, type BrokerClientSettings } from '../lib/broker';
import type { ConsulAddress } from '../lib/consul-address';
import type { Logger } from '../lib/logger';
import { parseUserEvent, USER_EVENTS_STREAM, USER_EVENTS_SUBJECTS } from '../lib/user-events';
import { wakeableSleep } from '../lib/wakeable-sleep';
import type { ActivityFeed } from './feed';

/** After this many messages in a row the loop lets the streams' writers run (a backlog arrives in one go). */
const YIELD_EVERY = 64;

/** Unacked messages the broker sends before it waits for acks. */
const MAX_ACK_PENDING = 1000;

export interface ConsumerOptions extends BrokerClientSettings {
  consul: ConsulAddress;
  consulToken: string | undefined;
  durable: string;
  /** How many recent events the feed keeps: how many are read back at start. */
  keep: number;
  /**
   * A durable nobody consumed from for this long is removed by the broker (ACTIVITY_DURABLE_INACTIVE_SECONDS):
   * a replica that was scaled away leaves nothing behind.
   */
  durableInactiveMs: number;
  feed: ActivityFeed;
  logger: Logger;
  retry?: RetryTiming;
}

export interface EventConsumer {
  stop(): Promise<void>;
}

const nanos = (ms: number) => ms * 1_000_000;

/** How long reading the stream's last events at start may take before the attempt counts as failed. */
const HISTORY_TIMEOUT_MS = 10_000;

/** The stream sequences of the last `keep` events of a stream holding `first`..`last` (none when empty). */
export function historyRange(first: number, last: number, keep: number): { from: number; to: number } | undefined {
  if (last === 0 || last < first) return undefined;
  return { from: Math.max(first, last - keep + 1), to: last };
}

export function startEventConsumer(o: ConsumerOptions): EventConsumer {
  const retry = o.retry ?? BROKER_RETRY;
  const { sleep, wake } = wakeableSleep();
  let stopped = false;
  let nc: NatsConnection | undefined;
  let messages: ConsumerMessages | undefined;
  // Whether the last attempt got as far as consuming: then its end is a new outage, not one more failure.
  let consumed = false;

  /** The user event in `message` for the feed; a message that is not one is logged and left out. */
  const eventOf = (message: JsMsg) => {
    const event = parseUserEvent(message.string());
    if (!event) {
      o.logger.error('a message on the user events stream is not a user event; dropped', { subject: message.subject, seq: message.seq });
    }
    return event;
  };

  // Whether the feed was filled from the stream: once per process, at its first connection. Later
  // connections (after a broker outage) resume the durable, which delivers every event missed meanwhile.
  let historyRead = false;

  /** Fills the feed with the stream's events `from`..`to` through an ordered (ephemeral, unacked) consumer. */
  const readHistory = async (nc: NatsConnection, from: number, to: number) => {
    const reader = await nc.jetstream().consumers.get(USER_EVENTS_STREAM, {
      filterSubjects: USER_EVENTS_SUBJECTS,
      opt_start_seq: from,
      inactive_threshold: HISTORY_TIMEOUT_MS,
    });
    const batch = await reader.fetch({ max_messages: to - from + 1, expires: HISTORY_TIMEOUT_MS });
    let last = from - 1;
    for await (const message of batch) {
      const event = eventOf(message);
      if (event) o.feed.add(event, message.seq);
      last = message.seq;
      if (last >= to) break;
    }
    await reader.delete().catch(() => undefined);
    if (last < to) throw new Error(`reading the stream's last events stopped at sequence ${last} of ${to}`);
  };

  /** Connects, makes sure the stream and this replica's durable exist, and consumes until the connection ends. */
  const consumeOnce = async (): Promise<void> => {
    nc = await openBroker(o.consul, o.consulToken, o, o.durable, o.logger);
    const jsm = await nc.jetstreamManager();
    // At start the feed is filled with the stream's last `keep` events, all it can hold, up to `readUpTo`;
    // the durable's messages up to there are then acked without being added again (a durable that was
    // away long would otherwise add older events after newer ones).
    let readUpTo = 0;
    const { state } = await jsm.streams.info(USER_EVENTS_STREAM);
    const history = historyRange(state.first_seq, state.last_seq, o.keep);
    if (!historyRead) {
      if (history) await readHistory(nc, history.from, history.to);
      historyRead = true;
      readUpTo = state.last_seq;
    }
    // A durable that exists keeps its position: the replica resumes after its last ack. A new one (a new
    // replica, or a deploy's new SERVICE_ID) starts after what was just read, or, on a later connection,
    // at the last `keep` events, rather than replaying the whole stream (up to 100,000 events).
    const existing = await jsm.consumers.info(USER_EVENTS_STREAM, o.durable).catch(() => undefined);
    if (existing === undefined) {
      await jsm.consumers.add(USER_EVENTS_STREAM, {
        durable_name: o.durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: readUpTo > 0 ? readUpTo + 1 : (history?.from ?? 1),
        filter_subject: USER_EVENTS_SUBJECTS,
        inactive_threshold: nanos(o.durableInactiveMs),
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
      if (message.seq > readUpTo) {
        const event = eventOf(message);
        if (!event) {
          message.term();
          continue;
        }
        o.feed.add(event, message.seq);
      }
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
