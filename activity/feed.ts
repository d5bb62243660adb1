import type { UserEvent } from '../lib/user-events';

/**
 * The recent events, in a ring of `keep` (memory stays bounded however many arrive), de-duplicated by
 * event id: the broker redelivers what was not acked and two relays may publish one outbox entry, so
 * the same event can arrive twice. Ids are remembered well beyond the ring (`seenLimit`), so a
 * duplicate is dropped even after its event left the ring.
 */
export class ActivityFeed {
  private readonly ring: Array<UserEvent | undefined>;
  /** Where the next event goes; also the count while the ring is not full yet. */
  private next = 0;
  private size = 0;
  /** Ids seen, oldest first (a Set keeps insertion order), at most seenLimit. */
  private readonly seen = new Set<string>();
  private readonly listeners = new Set<(event: UserEvent) => void>();

  constructor(
    readonly keep: number,
    private readonly seenLimit: number = Math.max(10 * keep, 10_000),
  ) {
    if (!Number.isInteger(keep) || keep < 1) throw new RangeError(`keep must be a whole number of at least 1, got ${keep}`);
    this.ring = new Array<UserEvent | undefined>(keep);
  }

  /** Adds `event` and tells every listener; false (and nothing else) when its id was seen already. */
  add(event: UserEvent): boolean {
    if (this.seen.has(event.id)) return false;
    this.seen.add(event.id);
    if (this.seen.size > this.seenLimit) this.seen.delete(this.seen.values().next().value!);
    this.ring[this.next] = event;
    this.next = (this.next + 1) % this.keep;
    this.size = Math.min(this.size + 1, this.keep);
    for (const listener of this.listeners) listener(event);
    return true;
  }

  /** The last `limit` events (at most `keep`), newest first. */
  recent(limit: number = this.keep): UserEvent[] {
    const count = Math.min(limit, this.size);
    const events: UserEvent[] = [];
    for (let i = 1; i <= count; i++) events.push(this.ring[(this.next - i + this.keep) % this.keep]!);
    return events;
  }

  /** Calls `listener` with every new (not duplicate) event until the returned function is called. */
  subscribe(listener: (event: UserEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
