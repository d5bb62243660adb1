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

/**
 * Runs `attempt` until it resolves, waiting retryDelayMs (100 ms doubling to 2 s) between failures; past
 * `timeoutMs` the last error is thrown as `<failure>: <error>`. For one-shot steps against a server that
 * may not be ready yet (Consul's ACL system right after its start, an agent that does not know a new token).
 */
export async function retryUntil<T>(attempt: () => Promise<T>, timeoutMs: number, failure: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let failures = 1; ; failures++) {
    try {
      return await attempt();
    } catch (error) {
      const delay = retryDelayMs(failures, { firstMs: 100, maxMs: 2000 });
      if (Date.now() + delay > deadline)
        throw new Error(`${failure}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
