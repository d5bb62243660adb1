// Messages between the benchmark and its load-generator process (pinned to its own core).

export interface AutocannonJob {
  kind: 'autocannon';
  url: string;
  connections: number;
  durationSec: number;
  /** Paths (with their query) each connection cycles through, in order, on `url`'s host; `url`'s own path when absent. */
  paths?: string[];
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
  /** Latencies of the 2xx answers in ms, timed per connection (fractional ms). */
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /**
   * autocannon's own figures, kept for comparison only: its histogram keeps whole milliseconds, and
   * its timing goes wrong after the server closes a kept-alive connection (see the worker).
   */
  autocannonP50Ms: number;
  autocannonP99Ms: number;
  autocannonMeanMs: number;
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
