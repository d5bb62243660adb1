// The hello outbox's bound (OUTBOX_MAX_ENTRIES), in one place for the service that enforces it and the
// stack's config key (outboxMaxEntries) that sets it.

/**
 * The default is about 2.5 MB of Consul KV (about 250 bytes an entry), 50 s of writes at 200/s; the largest
 * allowed is what the relays can list each second (about 75 bytes a key, 7.5 MB at 100,000).
 */
export const OUTBOX_MAX_ENTRIES = { default: 10_000, max: 100_000 } as const;
