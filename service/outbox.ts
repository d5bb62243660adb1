// The transactional outbox's rules: the key an event is kept under until the broker has it, and the KV
// operation that writes it in the same Consul transaction as the user change it reports.
import { envValue, rejectConfig } from '../lib/config-error';
import type { UserEvent } from '../lib/user-events';
import { OUTBOX_MAX_ENTRIES } from '../lib/outbox-bound';

/** Digits of a tick (microseconds since the epoch), zero-padded so that keys sort by time as text. */
const TICK_DIGITS = 16;

/**
 * A per-process clock of outbox ticks: the event's time in microseconds, but always above the last tick
 * given, so two changes of one replica within a millisecond keep their order (a created before its
 * updated). Replicas' clocks are not compared: their events are independent.
 */
export function outboxClock(): (at: string) => number {
  let last = 0;
  return (at) => {
    last = Math.max(Date.parse(at) * 1000, last + 1);
    return last;
  };
}

/**
 * `<prefix>/<tick, 16 digits>-<event id>`: entries sort oldest first (Consul lists keys sorted), so a relay
 * publishes them in the order they were written, and the id keeps keys unique across replicas.
 */
export function outboxKey(prefix: string, tick: number, event: UserEvent): string {
  return `${prefix}/${String(tick).padStart(TICK_DIGITS, '0')}-${event.id}`;
}

/** The `/v1/txn` operation that stores `event` in the outbox (transaction values are base64). */
export function outboxWrite(prefix: string, tick: number, event: UserEvent) {
  return { KV: { Verb: 'set', Key: outboxKey(prefix, tick, event), Value: Buffer.from(JSON.stringify(event)).toString('base64') } };
}

/** Parses a key's tick back: the time (ms) its entry was written, or undefined for a key that is no entry. */
export function outboxKeyTime(prefix: string, key: string): number | undefined {
  const match = /^(\d{16})-./.exec(key.startsWith(`${prefix}/`) ? key.slice(prefix.length + 1) : '');
  return match ? Number(match[1]) / 1000 : undefined;
}

/** Share of the bound from which the replica's status says `filling`. */
export const OUTBOX_FILLING_SHARE = 0.8;
/** What a write refused at the bound is told to wait (Retry-After, seconds). */
export const OUTBOX_FULL_RETRY_AFTER_S = 5;

/** OUTBOX_MAX_ENTRIES: the most entries the outbox may hold before writes are refused. */
export function parseOutboxMaxEntries(env: NodeJS.ProcessEnv): number {
  const raw = envValue(env, 'OUTBOX_MAX_ENTRIES');
  if (raw === undefined) return OUTBOX_MAX_ENTRIES.default;
  const value = /^\d{1,6}$/.test(raw) ? Number(raw) : Number.NaN;
  return value >= 1 && value <= OUTBOX_MAX_ENTRIES.max
    ? value
    : rejectConfig('OUTBOX_MAX_ENTRIES', raw, `a whole number from 1 to ${OUTBOX_MAX_ENTRIES.max}`);
}

/** How full the outbox is, as a replica's status shows it. */
export interface OutboxStatus {
  /** Entries at the relay's last listing, plus this replica's writes since. */
  entries: number;
  maxEntries: number;
  /** `filling` from OUTBOX_FILLING_SHARE of the bound, `full` at it (writes answer 503). */
  state: 'ok' | 'filling' | 'full';
  /** This replica's own entries not yet acked by the broker. */
  unpublishedOwn: number;
}

export function outboxState(entries: number, maxEntries: number): OutboxStatus['state'] {
  if (entries >= maxEntries) return 'full';
  return entries >= maxEntries * OUTBOX_FILLING_SHARE ? 'filling' : 'ok';
}

/** The store's side of the relay: whether a write may add an entry, and the entries it committed. */
export interface OutboxPort {
  /** Throws OutboxFullError when the outbox holds its bound: the write must not commit. */
  admit(): void;
  /** An entry this replica committed: its relay publishes it at once. */
  committed(key: string, event: UserEvent): void;
}

/** No relay (a store used on its own, as in its tests): no bound, nothing published. */
export const NO_RELAY: OutboxPort = { admit: () => undefined, committed: () => undefined };

/** The outbox holds its bound (the broker has been away): the write was refused and nothing committed. */
export class OutboxFullError extends Error {
  constructor(entries: number, maxEntries: number) {
    super(`the event outbox is full (${entries} of ${maxEntries} entries unpublished: the events' broker is away); try again later`);
  }
}
