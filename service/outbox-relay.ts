// Publishes the outbox to the broker's USER_EVENTS stream, one publish per write in the normal case: the
// replica that wrote an entry publishes it at once (the store hands it over on commit); the other replicas'
// relays follow the outbox's keys and publish only entries left unpublished past a bound (their writer was
// killed, stopped, or cannot reach the broker). An entry is deleted only once the broker acked it. The
// relay also keeps the outbox's size, which bounds the writes (OutboxPort.admit).
import type Consul from 'consul';
import type { NatsConnection, PubAck } from 'nats';
import { openBroker, type BrokerClientSettings } from '../lib/broker';
import type { ConsulAddress } from '../lib/consul-address';
import type { Logger } from '../lib/logger';
import { parseUserEvent, userEventSubject, type UserEvent } from '../lib/user-events';
import { wakeableSleep } from '../lib/wakeable-sleep';
import { BROKER_RETRY, retryDelayMs, type RetryTiming } from '../lib/backoff';
import { nextIndex } from '../lib/consul-index';
import { OutboxFullError, outboxKeyTime, outboxState, type OutboxPort, type OutboxStatus } from './outbox';

export interface RelayOptions extends BrokerClientSettings {
  consul: ConsulAddress;
  consulToken: string | undefined;
  /** For the reads and deletes of entries (transactions): the replica's bounded client (consul-client.ts). */
  consulClient: Consul;
  outboxPrefix: string;
  /** Names this relay's broker connection (the replica's id). */
  name: string;
  logger: Logger;
  /** The most entries the outbox may hold; a write at the bound is refused (OUTBOX_MAX_ENTRIES). */
  maxEntries: number;
  retry?: RetryTiming;
  /** How long one blocking query on the outbox waits for a change. */
  waitSeconds?: number;
  /** How long another replica's entry may stay unpublished before this relay publishes it. */
  takeoverMs?: number;
  /** The least time between two listings of the outbox's keys. */
  listIntervalMs?: number;
}

export interface OutboxRelay extends OutboxPort {
  status(): OutboxStatus;
  /** Stops following and publishing and closes the broker connection; entries left stay for another relay. */
  stop(): Promise<void>;
}

/**
 * Entries are read, published and deleted this many at a time: the most operations one Consul transaction
 * holds, so a backlog after an outage costs a bounded read per round trip, never the whole outbox at once.
 */
export const OUTBOX_PAGE = 64;
const PUBLISH_TIMEOUT_MS = 5000;
/**
 * Another writer's entry is published after this long unpublished, counted from its write or from this
 * relay's (re)connection to the broker, whichever is later: after an outage the writers, reconnecting
 * too, publish their own backlog first.
 */
export const TAKEOVER_MS = 5000;
/**
 * The outbox's keys are listed at most once a second per replica: they serve only the bound and the
 * takeover, and a listing grows with the outbox (about 75 bytes an entry, 0.75 MB at 10,000).
 */
const LIST_INTERVAL_MS = 1000;
/** How long stop() waits for this replica's last entries to be acked. */
const STOP_FLUSH_MS = 2000;

interface TxnBody {
  Results?: Array<{ KV?: { Key: string; Value: string | null } }> | null;
  Errors?: Array<{ OpIndex: number; What: string }> | null;
}

type Entry = { key: string; event: UserEvent };

export function startOutboxRelay(o: RelayOptions): OutboxRelay {
  const retry = o.retry ?? BROKER_RETRY;
  const waitSeconds = o.waitSeconds ?? 30;
  const takeoverMs = o.takeoverMs ?? TAKEOVER_MS;
  const listIntervalMs = o.listIntervalMs ?? LIST_INTERVAL_MS;
  const stopping = new AbortController();
  const ownWake = wakeableSleep();
  const followWake = wakeableSleep();
  let stopped = false;
  let broker: NatsConnection | undefined;
  /** When the current broker connection opened: another writer's entries are taken over takeoverMs after. */
  let connectedAt = 0;
  /** This replica's committed entries not yet acked, in commit order. */
  const own = new Map<string, UserEvent>();
  /** The keys of the last listing, and this replica's entries it does not show (committed since), not yet deleted. */
  let listed = new Set<string>();
  const unlisted = new Set<string>();
  let lastState: OutboxStatus['state'] = 'ok';
  // Keys already reported as unreadable (while they are in the outbox), so each is logged once and not read again.
  const unreadable = new Set<string>();
  let lastProblem = '';

  const entries = () => listed.size + unlisted.size;

  const status = (): OutboxStatus => {
    const count = entries();
    return { entries: count, maxEntries: o.maxEntries, state: outboxState(count, o.maxEntries), unpublishedOwn: own.size };
  };

  /** One log line when the outbox's state changes: the signal before writes are refused. */
  const noteState = () => {
    const now = status();
    if (now.state === lastState) return;
    lastState = now.state;
    const fields = { entries: now.entries, maxEntries: now.maxEntries };
    if (now.state === 'ok') o.logger.info('outbox ok', fields);
    else o.logger.warn(`outbox ${now.state}`, fields);
  };

  const problem = (error: unknown, failures: number) => {
    const message = error instanceof Error ? error.message : String(error);
    // One line per distinct problem, not one per retry.
    if (message === lastProblem) return;
    lastProblem = message;
    o.logger.warn('outbox relay: cannot publish; events stay in the outbox, retrying', {
      error: message,
      unpublishedOwn: own.size,
      retryMs: retryDelayMs(failures, retry),
    });
  };

  const recovered = (failures: number) => {
    if (failures === 0) return;
    lastProblem = '';
    o.logger.info('outbox relay: publishing again', { failedAttempts: failures });
  };

  /** The broker's connection, opened (found through Consul, stream ensured) when there is none. */
  let connecting: Promise<NatsConnection> | undefined;
  const connection = (): Promise<NatsConnection> => {
    if (broker && !broker.isClosed()) return Promise.resolve(broker);
    // Both loops may ask at once: one connection, shared.
    connecting ??= connect().finally(() => (connecting = undefined));
    return connecting;
  };
  const connect = async (): Promise<NatsConnection> => {
    broker = undefined;
    const nc = await openBroker(o.consul, o.consulToken, o, o.name, o.logger);
    broker = nc;
    connectedAt = Date.now();
    o.logger.info('outbox relay: connected to the broker', { server: nc.getServer(), service: o.natsService });
    return nc;
  };

  const consulTxn = (operations: object[]) => o.consulClient.transaction.create(operations as never) as Promise<TxnBody | undefined>;

  /**
   * Publishes `batch`, then deletes in one transaction the entries the broker acked, and only those (a key
   * already gone, deleted by another relay, is fine). Throws the first refusal after that: the refused
   * entries stay in the outbox.
   */
  const publishBatch = async (nc: NatsConnection, batch: Entry[], deleted: (key: string) => void = () => undefined): Promise<void> => {
    const js = nc.jetstream();
    const acks = await Promise.allSettled(
      batch.map(({ event }): Promise<PubAck> =>
        js.publish(userEventSubject(event.type), JSON.stringify(event), { msgID: event.id, timeout: PUBLISH_TIMEOUT_MS }),
      ),
    );
    const acked = batch.filter((_, i) => acks[i].status === 'fulfilled').map((entry) => entry.key);
    if (acked.length > 0) {
      await consulTxn(acked.map((key) => ({ KV: { Verb: 'delete', Key: key } })));
      acked.forEach(deleted);
    }
    const refused = acks.find((ack): ack is PromiseRejectedResult => ack.status === 'rejected');
    if (refused) {
      // A JetStream refusal (a full stream, no stream) carries the broker's own words.
      const error = refused.reason as Error & { api_error?: { description?: string } };
      const reason = error.api_error?.description ?? (error instanceof Error ? error.message : String(error));
      throw new Error(`the broker refused ${batch.length - acked.length} of ${batch.length} events: ${reason}`);
    }
  };

  /** This replica's entries, published as soon as they commit, a page at a time; retried until acked. */
  const publishOwn = async () => {
    let failures = 0;
    while (!stopped) {
      if (own.size === 0) {
        await ownWake.sleep(waitSeconds * 1000);
        continue;
      }
      const batch: Entry[] = [];
      for (const [key, event] of own) {
        if (batch.length === OUTBOX_PAGE) break;
        batch.push({ key, event });
      }
      try {
        const nc = await connection();
        await publishBatch(nc, batch, (key) => {
          own.delete(key);
          unlisted.delete(key);
        });
        recovered(failures);
        failures = 0;
      } catch (error) {
        if (stopped) break;
        // An entry acked but not deleted (Consul failed) stays in `own` and is published again: the broker drops it.
        failures++;
        problem(error, failures);
        if (!broker || broker.isClosed()) broker = undefined;
        await ownWake.sleep(retryDelayMs(failures, retry));
      }
    }
  };

  /** The outbox's keys, and Consul's index; blocks up to `waitMs` for a change when `index` > 0. */
  const listOutbox = async (index: number, waitMs: number): Promise<{ keys: string[]; index: number }> => {
    const url = `${o.consul.url}/v1/kv/${o.outboxPrefix}/?keys&index=${index}&wait=${Math.max(1, Math.ceil(waitMs))}ms`;
    const signal = AbortSignal.any([stopping.signal, AbortSignal.timeout(waitMs + 10_000)]);
    const res = await fetch(url, { headers: o.consulToken === undefined ? {} : { 'X-Consul-Token': o.consulToken }, signal });
    const answered = Number(res.headers.get('x-consul-index'));
    // 404: no key under the prefix, an empty outbox.
    if (res.status === 404) return { keys: [], index: answered };
    if (!res.ok) throw new Error(`Consul answered ${res.status} reading the outbox: ${(await res.text()).trim().slice(0, 200)}`);
    return { keys: (await res.json()) as string[], index: answered };
  };

  /** The events under `keys` (at most OUTBOX_PAGE) in one transaction; a key deleted meanwhile is left out. */
  const readEntries = async (keys: string[]): Promise<Entry[]> => {
    let wanted = keys;
    for (let attempt = 0; attempt < 5 && wanted.length > 0; attempt++) {
      const answer = await consulTxn(wanted.map((key) => ({ KV: { Verb: 'get', Key: key } }))).then(
        (body) => ({ results: body?.Results ?? [] }),
        (error: Error & { response?: { statusCode?: number; body?: TxnBody } }) => {
          // 409 names the gets that found no key: another relay published and deleted them.
          if (error.response?.statusCode === 409) return { missing: new Set((error.response.body?.Errors ?? []).map((e) => e.OpIndex)) };
          throw error;
        },
      );
      if ('missing' in answer) {
        wanted = wanted.filter((_, i) => !answer.missing.has(i));
        continue;
      }
      return answer.results.flatMap(({ KV }) => {
        const event = KV?.Value ? parseUserEvent(Buffer.from(KV.Value, 'base64').toString('utf8')) : undefined;
        if (KV && event) return [{ key: KV.Key, event }];
        if (KV) {
          unreadable.add(KV.Key);
          o.logger.error('outbox relay: an entry is not a user event; left in place', { key: KV.Key });
        }
        return [];
      });
    }
    return [];
  };

  /** When another writer's entry under `key` is this relay's to publish (ms), or undefined: never. */
  const dueAt = (key: string): number | undefined => {
    if (own.has(key) || unreadable.has(key)) return undefined;
    const writtenAt = outboxKeyTime(o.outboxPrefix, key);
    if (writtenAt === undefined) {
      unreadable.add(key);
      o.logger.error('outbox relay: a key under the outbox is not an entry; left in place', { key });
      return undefined;
    }
    const connected = broker && !broker.isClosed() ? connectedAt : 0;
    return Math.max(writtenAt, connected) + takeoverMs;
  };

  /** Publishes the entries of other writers that are due, a page at a time; the time of the next one due. */
  const takeOver = async (keys: string[]): Promise<number> => {
    const due = () => keys.filter((key) => (dueAt(key) ?? Infinity) <= Date.now());
    if (due().length > 0) {
      // Connecting may move the due times on: entries wait takeoverMs from a new connection too.
      const nc = await connection();
      const now = due();
      for (let start = 0; start < now.length && !stopped; start += OUTBOX_PAGE) {
        const page = await readEntries(now.slice(start, start + OUTBOX_PAGE));
        if (page.length === 0) continue;
        await publishBatch(nc, page);
        o.logger.info('outbox relay: published entries another writer left', { published: page.length });
      }
    }
    return keys.reduce((soonest, key) => Math.min(soonest, dueAt(key) ?? Infinity), Infinity);
  };

  /** Follows the outbox's keys: its size for the bound, and the entries other writers left. */
  const follow = async () => {
    let index = 0;
    let failures = 0;
    let nextDue = Infinity;
    while (!stopped) {
      const askedAt = Date.now();
      try {
        const waitMs = Math.min(waitSeconds * 1000, Math.max(0, nextDue - askedAt));
        const answer = await listOutbox(index, waitMs);
        // Own entries the listing shows are counted in it; those it does not were committed after it.
        listed = new Set(answer.keys);
        for (const key of unlisted) if (listed.has(key)) unlisted.delete(key);
        for (const key of unreadable) if (!listed.has(key)) unreadable.delete(key);
        noteState();
        // Consul's index first: a failed takeover retries from a fresh listing anyway.
        index = nextIndex(index, answer.index).index;
        nextDue = await takeOver(answer.keys);
        recovered(failures);
        failures = 0;
        await followWake.sleep(askedAt + listIntervalMs - Date.now());
      } catch (error) {
        if (stopped) break;
        failures++;
        problem(error, failures);
        // Read afresh after a failure: another relay may have published meanwhile, or Consul restarted.
        index = 0;
        nextDue = Infinity;
        await followWake.sleep(retryDelayMs(failures, retry));
      }
    }
  };

  const running = Promise.all([publishOwn(), follow()]);

  return {
    admit() {
      const count = entries();
      if (count >= o.maxEntries) throw new OutboxFullError(count, o.maxEntries);
    },
    committed(key, event) {
      own.set(key, event);
      // The listing may have come in before the commit's answer, already showing the entry.
      if (!listed.has(key)) unlisted.add(key);
      noteState();
      ownWake.wake();
    },
    status,
    async stop() {
      // The last requests' entries: published now if the broker is there, else left to another relay.
      const deadline = Date.now() + STOP_FLUSH_MS;
      while (own.size > 0 && broker && !broker.isClosed() && lastProblem === '' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      stopped = true;
      stopping.abort();
      ownWake.wake();
      followWake.wake();
      await running;
      await broker?.close().catch(() => undefined);
      broker = undefined;
    },
  };
}
