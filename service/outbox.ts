// The transactional outbox's rules: the key an event is kept under until the broker has it, and the KV
// operation that writes it in the same Consul transaction as the user change it reports.
import type { UserEvent } from '../lib/user-events';

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
