import { waitFor } from '../../harness/processes';
import type { Replica } from '../../harness/service';
import type { LoadGenerator } from '../load-generator';
import type { BenchOptions } from '../options';
import { SERVICE_NAME, type BenchReplica, type SystemUnderTest } from '../system-under-test';
import { measure, type PathRun } from './throughput';

/**
 * The requests of every run, each connection cycling through them: hello's two routes, the exact `/` and
 * the prefix `/api/users` (one user a page). Both configurations serve the very same requests from the same
 * replica, so the only difference between them is the gateway's routing table.
 */
export const ROUTE_PATHS = ['/', '/api/users?limit=1'];

/** The other services' names and routes: an exact route and a prefix under `/api/`, beside hello's `/api/users`. */
const otherService = (k: number) => `routes-bench-${k}`;
const otherRoutes = (name: string) => `=/${name},/api/${name}`;

export type RouteConfig = 'one' | 'several';

export interface RouteRun {
  /** Routed services and routes in the gateway's table during the run (from /_balancer/status). */
  services: number;
  routes: number;
  run: PathRun;
}

export interface RouteRound {
  one: RouteRun;
  several: RouteRun;
}

export interface RouteContext {
  sut: SystemUnderTest;
  load: LoadGenerator;
  /** hello's replica, the one serving every request of the phase. */
  first: Replica;
  options: BenchOptions;
  testCpu: number | undefined;
  log(message: string): void;
}

/**
 * Unmeasured load on hello's routes after a reload, until nginx is back to `workers` workers: a reload leaves
 * the old workers serving their open connections (their CPU would land in the next run); the warm-up's end
 * closes them.
 */
export async function warmAfterReload(ctx: RouteContext, workers = ctx.sut.nginx().workers.length): Promise<void> {
  const { sut, load, options } = ctx;
  await load.autocannon({ url: sut.balancerUrl, connections: options.connections, durationSec: options.warmupSec, paths: ROUTE_PATHS });
  await waitFor(`nginx back to ${workers} worker(s) after the reload`, () => sut.nginx().workers.length === workers, 15_000, 50);
}

/**
 * nginx CPU per proxied request with one routed service (hello, as before issue 12) against the same
 * gateway routing `options.routedServices` services (hello plus others, each a real replica registered
 * under its own name with its own ROUTES), same load, same pinning. Each round has one run of each
 * configuration, the order alternating so that only every other round switches twice; switching starts
 * or stops the other services' replicas and waits until the gateway serves the new table and nginx's
 * workers of the previous configuration are gone (their CPU would otherwise land in the next run).
 */
export async function measureRouteCost(ctx: RouteContext): Promise<RouteRound[]> {
  const { sut, load, first, options, testCpu } = ctx;
  const others: BenchReplica[] = [];
  const workers = sut.nginx().workers.length;
  const warm = () => warmAfterReload(ctx, workers);
  const table = async () => {
    const services = Object.values((await sut.status()).services).filter((s) => s.routes.length > 0 && s.upstreams.length > 0);
    return { services: services.length, routes: services.reduce((sum, s) => sum + s.routes.length, 0) };
  };

  const toSeveral = async () => {
    for (let k = 2; k <= options.routedServices; k++) {
      const name = otherService(k);
      others.push(await sut.startReplica(`${name}-1`, name, { ROUTES: otherRoutes(name) }));
    }
    await waitFor(
      `the gateway to route ${options.routedServices} services`,
      async () => (await table()).services === options.routedServices,
      30_000,
      50,
    );
    await warm();
  };
  const toOne = async () => {
    // SIGTERM: each replica deregisters itself, so its routes leave the table (a killed one would stay, 503).
    await Promise.all(others.splice(0).map((r) => r.stop(5000)));
    await waitFor('the gateway to route hello alone', async () => (await table()).services === 1, 30_000, 50);
    await warm();
  };

  const run = async (): Promise<RouteRun> => {
    const { services, routes } = await table();
    const result = await measure(sut, load, sut.balancerUrl, [first, ...others], options, testCpu, ROUTE_PATHS);
    return { services, routes, run: result };
  };

  try {
    const before = await table();
    if (before.services !== 1)
      throw new Error(`the routes phase needs ${SERVICE_NAME} alone in the gateway, found ${before.services} routed services`);
    await warm();
    let current: RouteConfig = 'one';
    const rounds: RouteRound[] = [];
    for (let i = 0; i < options.routeRounds; i++) {
      const order: RouteConfig[] = i % 2 === 0 ? ['one', 'several'] : ['several', 'one'];
      const round: Partial<RouteRound> = {};
      for (const config of order) {
        if (config !== current) {
          ctx.log(
            `routes: switching the gateway to ${config === 'one' ? '1 routed service' : `${options.routedServices} routed services`}`,
          );
          await (config === 'one' ? toOne() : toSeveral());
          current = config;
        }
        round[config] = await run();
      }
      rounds.push(round as RouteRound);
    }
    return rounds;
  } finally {
    await Promise.all(others.map((r) => r.stop(5000)));
  }
}
