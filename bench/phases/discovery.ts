import { setTimeout as sleep } from 'node:timers/promises';
import { requestOnce } from '../../harness/load';
import { waitFor } from '../../harness/processes';
import type { RotationTarget } from '../peers/peer';
import { SERVICE_NAME, type SystemUnderTest } from '../system-under-test';

/** One replica added: milliseconds from its process start to each step of being discovered. */
export interface DiscoveryTry {
  id: string;
  /** Consul lists it as passing. */
  passingMs: number;
  /** The balancer's own state has it in rotation (ours: its status lists it among the upstreams, nginx reloaded). */
  inUpstreamsMs: number;
  /** A request through the balancer was answered by it: the discovery figure the benchmark reports. */
  firstServedMs: number;
}

/** Polls `check` every `everyMs` until it holds; resolves with the ms since `since`, NaN after `timeoutMs`. */
async function timeUntil(check: () => Promise<boolean>, since: number, timeoutMs: number, everyMs: number): Promise<number> {
  while (performance.now() - since < timeoutMs) {
    try {
      if (await check()) return performance.now() - since;
    } catch {
      // not there yet (process starting, reload in progress): keep polling
    }
    await sleep(everyMs);
  }
  return Number.NaN;
}

/**
 * Adds a replica `tries` times next to the ones already serving, timing from its process start to the
 * first request the balancer sends it; each added replica is then removed again (SIGTERM) and gone
 * from the upstreams before the next try.
 */
export async function measureDiscovery(
  sut: SystemUnderTest,
  balancer: RotationTarget,
  tries: number,
  timeoutMs = 10_000,
): Promise<DiscoveryTry[]> {
  const { inRotation } = balancer;
  if (!inRotation) throw new Error('discovery is measured only on a balancer that discovers replicas and shows its rotation');
  const results: DiscoveryTry[] = [];
  for (let i = 1; i <= tries; i++) {
    const replica = await sut.startReplica(`bench-add-${i}`);
    const since = replica.spawnedAt;
    const [passingMs, inUpstreamsMs, firstServedMs] = await Promise.all([
      timeUntil(async () => (await sut.consul.passing(SERVICE_NAME)).includes(replica.id), since, timeoutMs, 20),
      timeUntil(() => inRotation(replica), since, timeoutMs, 20),
      // New connection per poll, a few ms apart: light enough not to slow the replica starting on the same core.
      timeUntil(async () => (await requestOnce(`${balancer.url}/`, 1000)).instance === replica.id, since, timeoutMs, 5),
    ]);
    results.push({ id: replica.id, passingMs, inUpstreamsMs, firstServedMs });
    await replica.stop(5000);
    await waitFor(`${replica.id} to leave the balancer's rotation`, async () => !(await inRotation(replica)), 15_000, 20);
  }
  return results;
}
