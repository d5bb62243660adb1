import type { UserEvent } from '../lib/user-events';

/** One kept event and its sequence in the stream USER_EVENTS: the same on every replica, so it is the SSE id. */
export interface FeedEntry {
  seq: number;
  event: UserEvent;
}

/**
 * The recent events, in a ring of `keep` (memory stays bounded however many arrive), de-duplicated by
 * event id: the broker redelivers what was not acked and two relays may publish one outbox entry, so
 * the same event can arrive twice. Ids are remembered well beyond the ring (`seenLimit`), so a
 * duplicate is dropped even after its event left the ring. Events come in stream order (the consumer
 * sees to it), so the ring is ordered by sequence too.
 */
export class ActivityFeed {
  private readonly ring: Array<FeedEntry | undefined>;
  /** Where the next event goes; also the count while the ring is not full yet. */
  private next = 0;
  private size = 0;
  /** Ids seen, oldest first (a Set keeps insertion order), at most seenLimit. */
  private readonly seen = new Set<string>();
  private readonly listeners = new Set<(entry: FeedEntry) => void>();

  constructor(
    readonly keep: number,
    private readonly seenLimit: number = Math.max(10 * keep, 10_000),
  ) {
    if (!Number.isInteger(keep) || keep < 1) throw new RangeError(`keep must be a whole number of at least 1, got ${keep}`);
    this.ring = new Array<FeedEntry | undefined>(keep);
  }

  /** Adds `event`, stream sequence `seq`, and tells every listener; false (and nothing else) when its id was seen already. */
  add(event: UserEvent, seq: number): boolean {
    if (this.seen.has(event.id)) return false;
    this.seen.add(event.id);
    if (this.seen.size > this.seenLimit) this.seen.delete(this.seen.values().next().value!);
    const entry = { seq, event };
    this.ring[this.next] = entry;
    this.next = (this.next + 1) % this.keep;
    this.size = Math.min(this.size + 1, this.keep);
    for (const listener of this.listeners) listener(entry);
    return true;
  }

  /** The last `limit` entries (at most `keep`), newest first. */
  private entries(limit: number): FeedEntry[] {
    const count = Math.min(limit, this.size);
    const entries: FeedEntry[] = [];
    for (let i = 1; i <= count; i++) entries.push(this.ring[(this.next - i + this.keep) % this.keep]!);
    return entries;
  }

  /** The last `limit` events (at most `keep`), newest first. */
  recent(limit: number = this.keep): UserEvent[] {
    return this.entries(limit).map((entry) => entry.event);
  }

  /** The kept entries after stream sequence `seq`, oldest first: what a client that saw up to `seq` missed. */
  after(seq: number): FeedEntry[] {
    const newestFirst: FeedEntry[] = [];
    for (const entry of this.entries(this.keep)) {
      if (entry.seq <= seq) break;
      newestFirst.push(entry);
    }
    return newestFirst.reverse();
  }

  /** Calls `listener` with every new (not duplicate) entry until the returned function is called. */
  subscribe(listener: (entry: FeedEntry) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
