// The index of the next blocking query, for every loop that follows Consul (the gateway's watcher, the
// outbox relay): one rule, tested once (test/unit/balancer-routing.test.ts).

/**
 * The index for the next blocking query after an answer with X-Consul-Index `answered`, given the last one
 * seen. Consul's advice: an index that goes backwards (agent restart, snapshot restore) means start over at
 * 0; otherwise never block on 0 again (it returns at once). An answer without a usable index counts as 1.
 */
export function nextIndex(lastSeen: number, answered: number): { index: number; reset: boolean } {
  if (!Number.isFinite(answered)) return { index: 1, reset: false };
  if (answered < lastSeen) return { index: 0, reset: true };
  return { index: Math.max(answered, 1), reset: false };
}
