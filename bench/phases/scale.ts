// The gateway at 1, 100 and 1,000 routed services (issue 23): hello plus registrations through Consul's
// agent API that point at three in-process backends (not a process each). At each size: a service added
// with a passing check, timed from its registration to the first request nginx proxies to it, then
// deregistered, timed to its removal (the gateway's 404); the reload that served each change; nginx CPU per
// proxied request on hello's routes; the watcher's RSS. The peers stay measured at one service (peers.ts).
import { setTimeout as sleep } from 'node:timers/promises';
import { deregisterRoutedServices, registerRoutedServices, routedInstance, routedName, startBackends } from '../../harness/backends';
import { waitFor } from '../../harness/processes';
import { rssMB } from '../proc-stats';
import { ROUTE_PATHS, warmAfterReload, type RouteContext } from './routes';
import { measure, type PathRun } from './throughput';

export interface ScaleTry {
  /** From the registration (answered by the agent, check passing) to the first request proxied to it. */
  addMs: number;
  /** From the deregistration to the first gateway 404 on its route. */
  removeMs: number;
  /** The status's lastReloadMs once each change is served: rendering to nginx serving it. */
  addReloadMs: number;
  removeReloadMs: number;
}

export interface ScaleStep {
  /** Routed services in the gateway's table while the tries ran (before each added one). */
  services: number;
  tries: ScaleTry[];
  run: PathRun;
  watcherRssMB: number;
}

/** Polls a GET of `path` on the public listener until `done(status, body)`; ms since `since`, NaN after `timeoutMs`. */
async function timeUntilAnswer(
  url: string,
  done: (status: number, backendAnswered: boolean) => boolean,
  since: number,
  timeoutMs: number,
): Promise<number> {
  while (performance.now() - since < timeoutMs) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      const text = await res.text();
      if (done(res.status, text.includes('"backend"'))) return performance.now() - since;
    } catch {
      // a reload in progress: keep polling
    }
    await sleep(5);
  }
  return Number.NaN;
}

/** The phase, over `sizes` routed services in increasing order (the first is hello alone: 1). */
export async function measureScale(ctx: RouteContext, sizes: readonly number[], tries: number, timeoutMs = 10_000): Promise<ScaleStep[]> {
  const { sut, load, first, options, testCpu } = ctx;
  const workers = sut.nginx().workers.length;
  const backends = await startBackends(3);
  const routedNow = async () => Object.values((await sut.status()).services).filter((s) => s.upstreams.length > 0).length;
  let registered = 0;
  const steps: ScaleStep[] = [];
  try {
    for (const size of sizes) {
      // hello is one of them; the others are registrations 0..size-2.
      ctx.log(`scale: ${size} routed service(s)`);
      await registerRoutedServices(sut.consul, registered, size - 1, backends.ports);
      registered = Math.max(registered, size - 1);
      await waitFor(`the gateway to route ${size} services`, async () => (await routedNow()) === size, 120_000, 100);
      await warmAfterReload(ctx, workers);
      const run = await measure(sut, load, sut.balancerUrl, [first], options, testCpu, ROUTE_PATHS);
      const stepTries: ScaleTry[] = [];
      for (let i = 0; i < tries; i++) {
        const name = routedName(100_000 + i);
        const url = `${sut.balancerUrl}/${name}`;
        const added = performance.now();
        await sut.consul.register(routedInstance(name, `${name}-1`, backends.ports[i % backends.ports.length]));
        const addMs = await timeUntilAnswer(url, (status, backend) => status === 200 && backend, added, timeoutMs);
        const addReloadMs = (await sut.status()).lastReloadMs ?? Number.NaN;
        const removed = performance.now();
        await sut.consul.deregister(`${name}-1`);
        const removeMs = await timeUntilAnswer(url, (status) => status === 404, removed, timeoutMs);
        const removeReloadMs = (await sut.status()).lastReloadMs ?? Number.NaN;
        stepTries.push({ addMs, removeMs, addReloadMs, removeReloadMs });
        // The next try starts from the same table.
        await waitFor(`the gateway back to ${size} services`, async () => (await routedNow()) === size, 15_000, 20);
      }
      steps.push({ services: size, tries: stepTries, run, watcherRssMB: rssMB(sut.balancer.child.pid!) });
    }
    return steps;
  } finally {
    await deregisterRoutedServices(sut.consul, 0, registered).catch(() => undefined);
    await backends.close();
    await waitFor('the gateway to route hello alone again', async () => (await routedNow()) === 1, 120_000, 100).catch(() => undefined);
  }
}
