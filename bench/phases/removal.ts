import { setTimeout as sleep } from 'node:timers/promises';
import { describeFailures, startSteadyLoop } from '../../harness/load';
import { waitFor } from '../../harness/processes';
import { SERVICE_NAME, type SystemUnderTest } from '../system-under-test';

export interface RemovalTry {
  id: string;
  /** ms from the signal until Consul no longer lists the replica as passing. */
  leftConsulMs: number;
  /** ms from the signal until the balancer's status no longer lists it: the failover figure. */
  removedMs: number;
  /** How the process ended (exit code or signal name). */
  exit: number | string;
  requests: number;
  failed: number;
  /** First few failures, described, for the report when there are any. */
  failures: string;
}

/**
 * Adds a replica, lets it take traffic, then sends it `signal` under the steady request loop (new
 * connection per request; non-2xx, error or over 2 s is a failure), from 1 s before the signal until
 * the upstream set has settled, `tries` times.
 */
export async function measureRemoval(sut: SystemUnderTest, signal: 'SIGKILL' | 'SIGTERM', tries: number): Promise<RemovalTry[]> {
  const results: RemovalTry[] = [];
  const label = signal === 'SIGKILL' ? 'failover' : 'scale-down';
  for (let i = 1; i <= tries; i++) {
    const replica = await sut.startReplica(`bench-${label}-${i}`);
    await sut.waitUpstream(replica, true);
    const loop = startSteadyLoop(`${sut.balancerUrl}/`, { maxMs: 30_000, maxRequests: 100_000 });
    // At least 1 s of loop before the signal, plus a random part: a crash does not wait for a fixed phase
    // of Consul's 1 s check interval, and a fixed delay would always land on the same phase.
    await sleep(1000 + Math.random() * 1000);

    const since = performance.now();
    replica.child.kill(signal);
    let leftConsulMs = Number.NaN;
    const leftConsul = waitFor(
      `${replica.id} to stop passing in Consul`,
      async () => !(await sut.consul.passing(SERVICE_NAME)).includes(replica.id),
      15_000,
      20,
    )
      .then(() => (leftConsulMs = performance.now() - since))
      .catch(() => undefined);
    let removedMs = Number.NaN;
    try {
      await sut.waitUpstream(replica, false, 15_000, 20);
      removedMs = performance.now() - since;
    } catch {
      // stays NaN: reported as a missing figure, never as a number it did not reach
    }
    await leftConsul;
    const exit = await replica.exited;
    // Settle: the loop keeps running a little after the set changed, so late failures are counted too.
    await sleep(500);
    const report = await loop.stop();
    results.push({
      id: replica.id,
      leftConsulMs,
      removedMs,
      exit,
      requests: report.total,
      failed: report.failures.length,
      failures: report.failures.length ? describeFailures(report) : '',
    });
  }
  return results;
}
