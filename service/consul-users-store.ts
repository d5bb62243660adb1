import { randomUUID } from 'node:crypto';
import type Consul from 'consul';
import { newUserEvent, type UserEventType } from '../lib/user-events';
import { NO_RELAY, outboxClock, outboxWrite, type OutboxPort } from './outbox';
import {
  pageOfIds,
  StoreConflictError,
  StoreUnavailableError,
  type PageQuery,
  type User,
  type UserInput,
  type UserPage,
  type UsersStore,
} from './users-store';

interface KvItem {
  Key: string;
  ModifyIndex: number;
  Value: string | null;
}

const CAS_ATTEMPTS = 5;

/** How long one key listing serves this replica's pages (see ConsulUsersStore.userIds). */
export const KEY_LIST_TTL_MS = 1000;

/** The answer of `/v1/txn`: KV values are base64 there (kv.get decodes them, the transaction API does not). */
interface TxnBody {
  Results?: Array<{ KV?: KvItem }> | null;
  Errors?: Array<{ OpIndex: number; What: string }> | null;
}

const decode = (value: string | null): string | null => (value === null ? null : Buffer.from(value, 'base64').toString('utf8'));

function parseUser(item: KvItem | null | undefined): User | undefined {
  if (!item?.Value) return undefined;
  try {
    const value = JSON.parse(item.Value) as Partial<User>;
    if (typeof value.id !== 'string' || typeof value.name !== 'string' || typeof value.email !== 'string') return undefined;
    return value as User;
  } catch {
    return undefined;
  }
}

const encode = (text: string): string => Buffer.from(text).toString('base64');

/**
 * Users in Consul's KV store, one key per user under `<prefix>/`, so every replica sees the same
 * data. Every write is one check-and-set transaction: it happens whole or not at all, and a concurrent
 * change is never overwritten blindly. The same transaction writes the change's event into the outbox
 * (`outboxPrefix`), so an event exists exactly when its change committed; the relay (outbox-relay.ts)
 * publishes it from there.
 */
export class ConsulUsersStore implements UsersStore {
  /** The last key listing (sorted ids) and when it was asked for; see userIds. */
  private keyList: { ids: string[]; askedAt: number } | undefined;
  /** The key listing under way and when it was asked for, shared by every request that needs it meanwhile. */
  private keyListing: { ids: Promise<string[]>; askedAt: number } | undefined;
  /**
   * This replica's creates (true) and deletes (false) since the listing in use or under way was asked for,
   * oldest first, with when they committed: merged into pages (pageOfIds), so a write costs O(1) however
   * many users there are.
   */
  private readonly ownChanges = new Map<string, { present: boolean; at: number }>();
  /** Orders this replica's outbox entries (outbox.ts). */
  private readonly outboxTick = outboxClock();

  constructor(
    private readonly consul: Consul,
    private readonly prefix: string,
    private readonly outboxPrefix: string,
    /** Bounds the outbox and publishes this replica's entries (outbox-relay.ts). */
    private readonly outbox: OutboxPort = NO_RELAY,
  ) {}

  private key(id: string): string {
    return `${this.prefix}/${id}`;
  }

  /** Runs one Consul call; any failure to get an answer becomes StoreUnavailableError. */
  private async call<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new StoreUnavailableError(`Consul KV ${what} failed: ${reason}`);
    }
  }

  private async read(id: string): Promise<{ user: User; index: number } | undefined> {
    const item = (await this.call('read', () => this.consul.kv.get(this.key(id)))) as KvItem | null | undefined;
    const user = parseUser(item);
    return user && item ? { user, index: item.ModifyIndex } : undefined;
  }

  /**
   * One page: the ids from the key listing (userIds), then the values of at most `limit` of them in one
   * read-only transaction. A recursive read would make Consul load and send every user on every request.
   */
  async page(query: PageQuery): Promise<UserPage> {
    const ids = await this.userIds();
    const changes = new Map([...this.ownChanges].map(([id, change]) => [id, change.present]));
    const { ids: pageIds, next } = pageOfIds(ids, query, changes);
    return { users: await this.readMany(pageIds), next };
  }

  /**
   * Every user id, sorted. The key listing grows with the users (about 50 bytes each), so it is asked of
   * Consul at most once per KEY_LIST_TTL_MS by this replica, however many requests want it at once: 40
   * connections listing 15,000 users made Consul send 0.75 MB per request and answer 503 to most. This
   * replica's own creates and deletes show at once; another replica's within KEY_LIST_TTL_MS. A key
   * deleted meanwhile is dropped by readMany.
   */
  private userIds(): Promise<string[]> {
    if (this.keyList && Date.now() - this.keyList.askedAt < KEY_LIST_TTL_MS) return Promise.resolve(this.keyList.ids);
    if (!this.keyListing) {
      const askedAt = Date.now();
      const ids = this.listIds(askedAt).finally(() => (this.keyListing = undefined));
      this.keyListing = { ids, askedAt };
    }
    return this.keyListing.ids;
  }

  private async listIds(askedAt: number): Promise<string[]> {
    const keys = (await this.call('list', () =>
      this.consul.kv.keys({ key: `${this.prefix}/`, separator: '/' }).catch((error: Error & { response?: { statusCode?: number } }) => {
        // Consul answers 404 when no key has the prefix: no users yet.
        if (error.response?.statusCode === 404) return [];
        throw error;
      }),
    )) as string[] | null | undefined;
    const start = this.prefix.length + 1;
    // With the separator, anything nested deeper comes back as one "<prefix>/<dir>/" entry: not a user.
    const ids = (keys ?? []).map((key) => key.slice(start)).filter((id) => id !== '' && !id.includes('/'));
    this.keyList = { ids: ids.sort(), askedAt };
    this.forgetChangesBefore(askedAt);
    return this.keyList.ids;
  }

  /** Drops the changes a listing asked for at `time` or later shows already (the oldest come first). */
  private forgetChangesBefore(time: number): void {
    for (const [id, change] of this.ownChanges) {
      if (change.at >= time) break;
      this.ownChanges.delete(id);
    }
  }

  /**
   * Keeps this replica's pages in step with its own writes: O(1), no copy or sort of the listing. Noted only
   * while a listing is in use or under way; a stale one is dropped (the next page lists again), so the
   * changes kept are those of the last KEY_LIST_TTL_MS.
   */
  private noteId(id: string, present: boolean): void {
    const now = Date.now();
    if (this.keyList && now - this.keyList.askedAt >= KEY_LIST_TTL_MS) this.keyList = undefined;
    if (!this.keyList && !this.keyListing) {
      this.ownChanges.clear();
      return;
    }
    // Re-inserted at the end, so the map stays in commit order for forgetChangesBefore.
    this.ownChanges.delete(id);
    this.ownChanges.set(id, { present, at: now });
  }

  /**
   * The users stored under `ids` (at most PAGE_LIMIT_MAX), in that order, in one transaction of KV gets.
   * A key deleted since it was listed fails the whole transaction (409, naming the operation): it is left
   * out and the rest read again, a bounded number of times.
   */
  private async readMany(ids: readonly string[]): Promise<User[]> {
    let wanted = [...ids];
    for (let attempt = 0; attempt < CAS_ATTEMPTS && wanted.length > 0; attempt++) {
      const operations = wanted.map((id) => ({ KV: { Verb: 'get', Key: this.key(id) } }));
      const answer = await this.call('list', () =>
        this.consul.transaction.create(operations as never).then(
          (body) => ({ results: (body as TxnBody | undefined)?.Results ?? [] }),
          (error: Error & { response?: { statusCode?: number; body?: TxnBody } }) => {
            if (error.response?.statusCode === 409) return { failed: (error.response.body?.Errors ?? []).map((e) => e.OpIndex) };
            throw error;
          },
        ),
      );
      if ('results' in answer) {
        return answer.results
          .map((result) => parseUser(result.KV && { ...result.KV, Value: decode(result.KV.Value) }))
          .filter((u): u is User => u !== undefined);
      }
      const failed = new Set(answer.failed);
      wanted = wanted.filter((_, index) => !failed.has(index));
    }
    if (wanted.length === 0) return [];
    throw new StoreConflictError('the users kept changing while this page was being read; try again');
  }

  async get(id: string): Promise<User | undefined> {
    return (await this.read(id))?.user;
  }

  async create(input: UserInput): Promise<User> {
    const now = new Date();
    const user: User = { id: randomUUID(), ...input, createdAt: now.toISOString(), updatedAt: now.toISOString() };
    // cas with index 0: only if the key does not exist yet, so a (vanishingly unlikely) id clash never overwrites.
    const written = await this.commit('write', 'created', user.id, now, [
      { KV: { Verb: 'cas', Key: this.key(user.id), Index: 0, Value: encode(JSON.stringify(user)) } },
    ]);
    if (!written) throw new StoreConflictError(`user id ${user.id} already exists`);
    this.noteId(user.id, true);
    return user;
  }

  async update(id: string, input: UserInput): Promise<User | undefined> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const current = await this.read(id);
      if (!current) return undefined;
      const now = new Date();
      const user: User = { ...current.user, ...input, updatedAt: now.toISOString() };
      const written = await this.commit('write', 'updated', id, now, [
        { KV: { Verb: 'cas', Key: this.key(id), Index: current.index, Value: encode(JSON.stringify(user)) } },
      ]);
      if (written) return user;
    }
    throw new StoreConflictError(`user ${id} kept changing while it was being updated; try again`);
  }

  async remove(id: string): Promise<boolean> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const current = await this.read(id);
      if (!current) return false;
      // check-index then delete: a plain `DELETE ?cas=` also answers true when the key is already gone, so
      // two simultaneous deletes would both claim it; check-index fails on a missing key.
      const deleted = await this.commit('delete', 'deleted', id, new Date(), [
        { KV: { Verb: 'check-index', Key: this.key(id), Index: current.index } },
        { KV: { Verb: 'delete', Key: this.key(id) } },
      ]);
      if (deleted) {
        this.noteId(id, false);
        return true;
      }
    }
    throw new StoreConflictError(`user ${id} kept changing while it was being deleted; try again`);
  }

  /**
   * Runs `operations` (whose first one is the check-and-set) and the outbox write of their event in one
   * transaction: true when it committed, false when Consul rolled it back because the check failed (the
   * user changed, is gone, or already exists). Any other refusal (an ACL denying the outbox) is an error.
   */
  private commit(what: string, type: UserEventType, userId: string, now: Date, operations: object[]): Promise<boolean> {
    // At its bound the outbox takes no more: refused before anything commits (OutboxFullError, a 503).
    this.outbox.admit();
    const event = newUserEvent(type, userId, now);
    const entry = outboxWrite(this.outboxPrefix, this.outboxTick(event.at), event);
    const all = [...operations, entry];
    return this.call(what, () =>
      this.consul.transaction.create(all as never).then(
        () => {
          this.outbox.committed(entry.KV.Key, event);
          return true;
        },
        (error: Error & { response?: { statusCode?: number; body?: TxnBody } }) => {
          if (error.response?.statusCode !== 409) throw error;
          const errors = error.response.body?.Errors ?? [];
          const other = errors.find((e) => e.OpIndex !== 0);
          if (other) throw new Error(`Consul refused operation ${other.OpIndex} of the transaction: ${other.What}`);
          return false;
        },
      ),
    );
  }
}
