/** A user of the example API; stored as JSON, one Consul KV key per user. */
export interface User {
  id: string;
  name: string;
  email: string;
  createdAt: string;
  updatedAt: string;
}

/** What a client may set on a user. */
export interface UserInput {
  name: string;
  email: string;
}

/**
 * Pages of the users list: at most PAGE_LIMIT_MAX users per answer, so the work one request costs Consul
 * is bounded however many users there are. The maximum is Consul's cap on the operations of one `/v1/txn`
 * (64, in 1.8 and in current releases), so a page is read in one transaction.
 */
export const PAGE_LIMIT_DEFAULT = 50;
export const PAGE_LIMIT_MAX = 64;

/** Which page: at most `limit` users whose id sorts after `after` (none: from the first). */
export interface PageQuery {
  limit: number;
  after?: string;
}

/** One page, in id order; `next` is the cursor of the following page, null on the last one. */
export interface UserPage {
  users: User[];
  next: string | null;
}

/** The index of the first id in `ids` (sorted) above `after`: a binary search, so a page costs no scan of every id. */
function firstAbove(ids: readonly string[], after: string): number {
  let low = 0;
  let high = ids.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (ids[mid] <= after) low = mid + 1;
    else high = mid;
  }
  return low;
}

/**
 * The page of `ids` (sorted) that `query` names, and the cursor after it: the rule every store pages by.
 * `changes` are ids created (true) or deleted (false) since `ids` was listed, merged in as the page is
 * read: O(log n + limit + changes), so neither a page nor a write ever sorts or scans every id.
 */
export function pageOfIds(
  ids: readonly string[],
  query: PageQuery,
  changes: ReadonlyMap<string, boolean> = new Map(),
): { ids: string[]; next: string | null } {
  const after = query.after;
  const added = [...changes]
    .filter(([id, present]) => present && (after === undefined || id > after))
    .map(([id]) => id)
    .sort();
  let i = after === undefined ? 0 : firstAbove(ids, after);
  let j = 0;
  // One more than the limit, to tell whether a next page exists.
  const page: string[] = [];
  while (page.length <= query.limit && (i < ids.length || j < added.length)) {
    let id: string;
    if (j >= added.length || (i < ids.length && ids[i] <= added[j])) {
      id = ids[i++];
      if (id === added[j]) j++;
    } else id = added[j++];
    if (changes.get(id) !== false) page.push(id);
  }
  const more = page.length > query.limit;
  if (more) page.pop();
  return { ids: page, next: more ? page[page.length - 1] : null };
}

/**
 * Where users live. The app only sees this interface: the service wires the Consul KV store,
 * unit tests an in-memory one.
 */
export interface UsersStore {
  /** One page of users in id order (see PAGE_LIMIT_MAX). */
  page(query: PageQuery): Promise<UserPage>;
  get(id: string): Promise<User | undefined>;
  create(input: UserInput): Promise<User>;
  /** undefined when no user has this id. */
  update(id: string, input: UserInput): Promise<User | undefined>;
  /** false when no user has this id. */
  remove(id: string): Promise<boolean>;
}

/** The store cannot be reached or did not answer in time; nothing was changed by this call. */
export class StoreUnavailableError extends Error {}

/** Others kept changing the same user while this write retried; nothing was changed by this call. */
export class StoreConflictError extends Error {}
