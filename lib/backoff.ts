// The retry rule of every loop that waits for a server (the gateway's Consul queries and nginx applies,
// the outbox relay, the activity consumer): doubling from a first delay up to a cap, tested once.

export interface RetryTiming {
  firstMs: number;
  maxMs: number;
}

/** A broker back from an outage is used again within 2 s of it passing in Consul. */
export const BROKER_RETRY: RetryTiming = { firstMs: 100, maxMs: 2000 };

/** The wait before attempt `failures + 1` after `failures` failures in a row (1 or more): doubling, capped. */
export function retryDelayMs(failures: number, timing: RetryTiming = BROKER_RETRY): number {
  return Math.min(timing.maxMs, timing.firstMs * 2 ** Math.min(Math.max(failures, 1) - 1, 30));
}
