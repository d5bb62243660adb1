// The gateway's per-client limits on the public port: the balancer's defaults, and the stack's (infra/config.ts).

/**
 * Requests in flight per client address on the public port. Far above what one browser or API client holds
 * (a browser opens 6 per host; the tests' loops 2-8, the bench 8), far below the 2,000 of a burst.
 */
export const DEFAULT_CONN_LIMIT_PER_CLIENT = 100;

/**
 * Requests per second per client address on the public port. A person behind a browser sends a few a
 * second (a page with its assets, tens at once: the burst); a busy API client or a NAT in front of a
 * few hundred users stays in the hundreds. 1,000 leaves all of them alone, and stops one address from
 * taking the replicas' whole capacity (a loop on one core sends several thousand). The tests' steady
 * loops send at most about 600 a second from 127.0.0.1; the bench measures capacity, not the limit, and
 * turns it off (RATE_LIMIT_PER_CLIENT=0).
 */
export const DEFAULT_RATE_LIMIT_PER_CLIENT = 1000;
