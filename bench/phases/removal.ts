import { setTimeout as sleep } from 'node:timers/promises';
import { describeFailures, startSteadyLoop } from '../../harness/load';
import { waitFor } from '../../harness/processes';
import type { Replica } from '../../harness/service';
import type { RotationTarget } from '../peers/peer';
import { SERVICE_NAME, type SystemUnderTest } from '../system-under-test';

export interface RemovalTry {
  id: string;
  /** ms from the signal until Consul no longer lists the replica as passing. */
  leftConsulMs: number;
  /**
   * ms from the signal until the balancer's own state no longer has it in rotation: the failover figure.
   * NaN for a balancer without such state (a static list), which only skips it request by request.
   */
  removedMs: number;
  /** How the process ended (exit code or signal name). */
  exit: number | string;
  requests: number;
  failed: number;
  /**
   * Answered requests that nginx first sent to another upstream and retried (its X-Upstream-Addr names two
   * or more): what a dead replica still costs while it is listed. Null when the balancer names no upstream.
   */
  retried: number | null;
  /** First few failures, described, for the report when there are any. */
  failures: string;
}

export interface RemovalOptions {
  /** A static list's hand edit (and reload) that adds or removes replicas around each try. */
  setUpstreams?: (replicas: Replica[]) => Promise<void>;
  /** Replicas that stay listed (the static list's hand edit keeps them). */
  serving?: Replica[];
  /**
   * How long the loop runs after the signal on a balancer without a rotation to watch: longer than the
   * other peers take to drop the replica, and than nginx's fail_timeout, after which it tries it again.
   */
  passiveWindowMs?: number;
}

/**
 * Adds a replica, lets it take traffic, then sends it `signal` under the steady request loop (new
 * connection per request; non-2xx, error or over 2 s is a failure), from 1 s before the signal until
 * the balancer's rotation has settled, `tries` times.
 */
export async function measureRemoval(
  sut: SystemUnderTest,
  balancer: RotationTarget,
  signal: 'SIGKILL' | 'SIGTERM',
  tries: number,
  { setUpstreams, serving = [], passiveWindowMs = 3000 }: RemovalOptions = {},
): Promise<RemovalTry[]> {
  const results: RemovalTry[] = [];
  const label = signal === 'SIGKILL' ? 'failover' : 'scale-down';
  const { inRotation } = balancer;
  const rotationIs = (replica: Replica, present: boolean) =>
    waitFor(
      `${replica.id} to ${present ? 'join' : 'leave'} the balancer's rotation`,
      async () => (await inRotation!(replica)) === present,
      15_000,
      20,
    );
  for (let i = 1; i <= tries; i++) {
    const replica = await sut.startReplica(`bench-${label}-${i}`);
    if (setUpstreams) {
      await waitFor(
        `${replica.id} to pass in Consul`,
        async () => (await sut.consul.passing(SERVICE_NAME)).includes(replica.id),
        15_000,
        20,
      );
      await setUpstreams([...serving, replica]);
    }
    if (inRotation) await rotationIs(replica, true);
    const loop = startSteadyLoop(`${balancer.namingUrl ?? balancer.url}/`, { maxMs: 30_000, maxRequests: 100_000, keepResults: true });
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
    if (inRotation) {
      try {
        await rotationIs(replica, false);
        removedMs = performance.now() - since;
      } catch {
        // stays NaN: reported as a missing figure, never as a number it did not reach
      }
    } else {
      await sleep(passiveWindowMs);
    }
    await leftConsul;
    const exit = await replica.exited;
    // Settle: the loop keeps running a little after the set changed, so late failures are counted too.
    await sleep(500);
    const report = await loop.stop();
    if (setUpstreams) await setUpstreams(serving);
    results.push({
      id: replica.id,
      leftConsulMs,
      removedMs,
      exit,
      requests: report.total,
      failed: report.failures.length,
      retried: report.results!.some((r) => r.upstream) ? report.results!.filter((r) => r.ok && r.upstream?.includes(',')).length : null,
      failures: report.failures.length ? describeFailures(report) : '',
    });
  }
  return results;
}
