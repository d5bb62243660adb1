import { randomUUID } from 'node:crypto';
import type Consul from 'consul';
import { StoreConflictError, StoreUnavailableError, type User, type UserInput, type UsersStore } from './users-store';

interface KvItem {
  Key: string;
  ModifyIndex: number;
  Value: string | null;
}

const CAS_ATTEMPTS = 5;

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

/**
 * Users in Consul's KV store, one key per user under `<prefix>/`, so every replica sees the same
 * data. Every write is one check-and-set PUT or DELETE: it happens whole or not at all, and a
 * concurrent change is never overwritten blindly.
 */
export class ConsulUsersStore implements UsersStore {
  constructor(
    private readonly consul: Consul,
    private readonly prefix: string,
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

  async list(): Promise<User[]> {
    const items = (await this.call('list', () => this.consul.kv.get({ key: `${this.prefix}/`, recurse: true }))) as
      KvItem[] | KvItem | null | undefined;
    const list = Array.isArray(items) ? items : items ? [items] : [];
    const users = list.map(parseUser).filter((u): u is User => u !== undefined);
    return users.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  async get(id: string): Promise<User | undefined> {
    return (await this.read(id))?.user;
  }

  async create(input: UserInput): Promise<User> {
    const now = new Date().toISOString();
    const user: User = { id: randomUUID(), ...input, createdAt: now, updatedAt: now };
    // cas=0: only if the key does not exist yet, so a (vanishingly unlikely) id clash never overwrites.
    const written = await this.call('write', () => this.consul.kv.set({ key: this.key(user.id), value: JSON.stringify(user), cas: 0 }));
    if (!written) throw new StoreConflictError(`user id ${user.id} already exists`);
    return user;
  }

  async update(id: string, input: UserInput): Promise<User | undefined> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const current = await this.read(id);
      if (!current) return undefined;
      const user: User = { ...current.user, ...input, updatedAt: new Date().toISOString() };
      const value = JSON.stringify(user);
      const written = await this.call('write', () => this.consul.kv.set({ key: this.key(id), value, cas: current.index }));
      if (written) return user;
    }
    throw new StoreConflictError(`user ${id} kept changing while it was being updated; try again`);
  }

  async remove(id: string): Promise<boolean> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const current = await this.read(id);
      if (!current) return false;
      if (await this.deleteIfUnchanged(id, current.index)) return true;
    }
    throw new StoreConflictError(`user ${id} kept changing while it was being deleted; try again`);
  }

  /**
   * Deletes the key only if it still exists at `index`, in one transaction: true when this call
   * deleted it. A plain `DELETE ?cas=` also answers true when the key is already gone, so two
   * simultaneous deletes would both claim it; `check-index` fails on a missing key.
   */
  private deleteIfUnchanged(id: string, index: number): Promise<boolean> {
    const operations = [{ KV: { Verb: 'check-index', Key: this.key(id), Index: index } }, { KV: { Verb: 'delete', Key: this.key(id) } }];
    return this.call('delete', () =>
      this.consul.transaction.create(operations as never).then(
        () => true,
        // 409: Consul rolled the transaction back because the check failed (changed or already deleted).
        (error: Error & { response?: { statusCode?: number } }) => {
          if (error.response?.statusCode === 409) return false;
          throw error;
        },
      ),
    );
  }
}
