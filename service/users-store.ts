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
 * Where users live. The app only sees this interface: the service wires the Consul KV store,
 * unit tests an in-memory one.
 */
export interface UsersStore {
  list(): Promise<User[]>;
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
