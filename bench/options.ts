import path from 'node:path';

export type BenchMode = 'full' | 'smoke';

/** Phases `--only` runs on their own, each on the run's Consul, balancer and one hello replica. */
export const ALONE_PHASES = ['scale', 'tls'] as const;
export type AlonePhase = (typeof ALONE_PHASES)[number];

/** Everything that sizes a run: fixed connections and durations, repeats and tries. */
export interface BenchOptions {
  mode: BenchMode;
  /** Where the JSON results are written. */
  outFile: string;
  /** With `--only`: the phases run, alone and in this order; empty for the whole benchmark. */
  only: AlonePhase[];
  /** Closed-loop connections of the load generator, for throughput and latency alike. */
  connections: number;
  /** Seconds of each measured load-generator run. */
  durationSec: number;
  /** Seconds of unmeasured load before the repeats, so that V8 and nginx are warm. */
  warmupSec: number;
  /** Repeats of each throughput/latency run; the figures are medians over them. */
  repeats: number;
  /** Sequential single timed requests per path, the cross-check of the load generator's latencies. */
  singleRequests: number;
  /** Seconds over which the watcher's idle CPU is sampled. */
  idleSampleSec: number;
  discoveryTries: number;
  failoverTries: number;
  scaleDownTries: number;
  /** The side-by-side comparison with the peers (bench/phases/peers.ts): paired repeats, seconds per run, tries. */
  peerRepeats: number;
  peerDurationSec: number;
  peerDiscoveryTries: number;
  peerFailoverTries: number;
  peerScaleDownTries: number;
  /**
   * The gateway's routing table (bench/phases/routes.ts): routed services in the "several" configuration
   * (hello and routedServices - 1 others), and rounds of one run per configuration.
   */
  routedServices: number;
  routeRounds: number;
  /** The gateway at scale (bench/phases/scale.ts): routed services at each step, and added/removed services timed at each. */
  scaleSizes: number[];
  scaleTries: number;
  /** The cost of HTTPS at the edge (bench/phases/tls.ts): rounds of one run per edge, and requests of each new-connection run. */
  tlsRounds: number;
  tlsNewConnectionRequests: number;
  /** User writes timed from the POST to their event on the activity service's SSE stream, sent at eventWritesPerSec. */
  eventWrites: number;
  eventWritesPerSec: number;
  /** Users stored at each step of the write-rate phase (bench/phases/writes.ts), and seconds of writes per run. */
  writeSizes: number[];
  writeSec: number;
  /** Hard bound on the whole run: past it the benchmark stops its processes and fails. */
  timeLimitSec: number;
}

const FULL: Omit<BenchOptions, 'outFile' | 'only'> = {
  mode: 'full',
  connections: 8,
  durationSec: 4,
  warmupSec: 2,
  repeats: 5,
  singleRequests: 500,
  idleSampleSec: 3,
  discoveryTries: 10,
  failoverTries: 10,
  scaleDownTries: 5,
  peerRepeats: 3,
  peerDurationSec: 3,
  peerDiscoveryTries: 5,
  peerFailoverTries: 5,
  peerScaleDownTries: 3,
  routedServices: 10,
  routeRounds: 5,
  scaleSizes: [1, 100, 1000],
  scaleTries: 5,
  tlsRounds: 5,
  tlsNewConnectionRequests: 2000,
  eventWrites: 2000,
  eventWritesPerSec: 200,
  writeSizes: [1000, 100_000],
  writeSec: 5,
  // 720 s before the scale phase, which takes about 2 minutes (1,000 registrations, three runs, 15 tries);
  // the events (10 s of writes) and write-rate phases (100,000 users seeded in about 5 s, four 5 s runs) add about a minute,
  // the TLS phase another (5 rounds of four runs).
  timeLimitSec: 1020,
};

const SMOKE: Omit<BenchOptions, 'outFile' | 'only'> = {
  mode: 'smoke',
  connections: 8,
  durationSec: 1,
  warmupSec: 0.5,
  repeats: 1,
  singleRequests: 50,
  idleSampleSec: 1,
  discoveryTries: 2,
  failoverTries: 2,
  scaleDownTries: 1,
  peerRepeats: 1,
  peerDurationSec: 1,
  peerDiscoveryTries: 1,
  peerFailoverTries: 1,
  peerScaleDownTries: 1,
  // Shape only: two extra replicas start faster than nine on the shared core; one round, one toggle.
  routedServices: 3,
  routeRounds: 1,
  // Shape only: hello alone, then with 2 registrations; one try each.
  scaleSizes: [1, 3],
  scaleTries: 1,
  // Shape only: one round, 1 s kept-alive runs and 200 new connections per edge.
  tlsRounds: 1,
  tlsNewConnectionRequests: 200,
  // Shape only: one second of writes at the full rate; the write rates at 100 and 1,000 users.
  eventWrites: 200,
  eventWritesPerSec: 200,
  writeSizes: [100, 1000],
  writeSec: 1,
  // 120 s before the events phase, which adds about 5 s (a broker, two processes, 25 writes); the routes
  // phase adds about 8 s more (two replicas started and stopped, two 1 s runs): 116.7 s in all at load average 35.
  // The scale phase adds about 8 s (two 1 s runs with their warm-ups, two tries); the three writers and the
  // write-rate phase (two replicas, four 1 s runs) about 12 s; the TLS phase about 6 s.
  timeLimitSec: 175,
};

export const USAGE = `usage: npm run bench [-- --smoke] [-- --only PHASE,...] [-- --out FILE]
  --smoke      short run (about a minute) that produces every figure, for CI
  --only       only these phases (${ALONE_PHASES.join(', ')}), full or smoke sized, on one replica
  --out FILE   where to write the JSON results (default bench/results.json)`;

/** Parses the command line; throws a message naming the bad argument and what is allowed. */
export function parseOptions(argv: readonly string[]): BenchOptions {
  let smoke = false;
  let outFile = path.resolve(__dirname, 'results.json');
  const only: AlonePhase[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--smoke') smoke = true;
    else if (arg === '--out') {
      const value = argv[++i];
      if (!value) throw new Error(`--out needs a file path\n${USAGE}`);
      outFile = path.resolve(value);
    } else if (arg === '--only') {
      for (const name of (argv[++i] ?? '').split(',')) {
        const phase = ALONE_PHASES.find((p) => p === name);
        if (!phase) throw new Error(`--only: unknown phase "${name}"; allowed: ${ALONE_PHASES.join(', ')} (comma-separated)\n${USAGE}`);
        if (!only.includes(phase)) only.push(phase);
      }
    } else throw new Error(`unknown argument "${arg}"; allowed: --smoke, --only PHASE,..., --out FILE\n${USAGE}`);
  }
  return { ...(smoke ? SMOKE : FULL), outFile, only };
}
