// Messages between the benchmark and its load-generator process (pinned to its own core).

export interface AutocannonJob {
  kind: 'autocannon';
  url: string;
  connections: number;
  durationSec: number;
}

export interface SingleRequestsJob {
  kind: 'single';
  url: string;
  count: number;
}

export type LoadJob = AutocannonJob | SingleRequestsJob;

export interface AutocannonReport {
  kind: 'autocannon';
  /** Every response counted, 2xx or not. */
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  durationSec: number;
  requestsPerSec: number;
  /** Percentiles of the 2xx latencies in ms, from the per-response timings (fractional ms). */
  p50Ms: number;
  p99Ms: number;
  /** autocannon's own percentiles (its histogram keeps whole milliseconds), kept for comparison. */
  autocannonP50Ms: number;
  autocannonP99Ms: number;
}

export interface SingleRequestsReport {
  kind: 'single';
  count: number;
  failures: number;
  p50Ms: number;
  p99Ms: number;
}

export type LoadReport = AutocannonReport | SingleRequestsReport;

export type WorkerReply = { ok: true; report: LoadReport } | { ok: false; error: string };
