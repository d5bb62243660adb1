// The load generator's own process: the benchmark starts it pinned to the load core and sends it jobs.
import type { EventEmitter } from 'node:events';
import http from 'node:http';
import autocannon from 'autocannon';
import type { AutocannonJob, AutocannonReport, LoadJob, SingleRequestsJob, SingleRequestsReport, WorkerReply } from './load-protocol';
import { percentile } from './stats';

function runAutocannon(job: AutocannonJob): Promise<AutocannonReport> {
  // Closed loop: each connection sends its next request when the previous answer arrives (no rate option).
  // Latency is timed per connection from the request's write to its answer. autocannon's own timing
  // cannot be used through nginx: when the server closes a kept-alive connection (nginx does after
  // keepalive_requests, 1000 by default) autocannon reconnects without clearing its queue of pending
  // requests, and every later answer is then timed from an earlier request's start.
  const latencies: number[] = [];
  const setupClient = (client: EventEmitter) => {
    let sentAt = 0;
    client.on('request', () => (sentAt = performance.now()));
    client.on('response', (statusCode: number) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(performance.now() - sentAt);
    });
  };
  return new Promise((resolve, reject) => {
    const requests = job.paths?.map((path) => ({ method: 'GET', path }));
    autocannon(
      { url: job.url, connections: job.connections, duration: job.durationSec, timeout: 10, setupClient, requests },
      (error, result) => {
        if (error) return reject(error);
        const ok = result['2xx'];
        const requests = ok + result.non2xx;
        resolve({
          kind: 'autocannon',
          requests,
          ok,
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          durationSec: result.duration,
          requestsPerSec: requests / result.duration,
          p50Ms: percentile(latencies, 50),
          p99Ms: percentile(latencies, 99),
          meanMs: latencies.reduce((a, b) => a + b, 0) / latencies.length,
          autocannonP50Ms: result.latency.p50,
          autocannonP99Ms: result.latency.p99,
          autocannonMeanMs: result.latency.mean,
        });
      },
    );
  });
}

/** One request at a time on one kept-alive connection: latency with nothing queued ahead of it. */
async function runSingleRequests(job: SingleRequestsJob): Promise<SingleRequestsReport> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const timings: number[] = [];
  let failures = 0;
  for (let i = 0; i < job.count; i++) {
    const started = performance.now();
    const status = await new Promise<number>((resolve) => {
      const req = http.get(job.url, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.setTimeout(5000, () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve(0));
    });
    const ms = performance.now() - started;
    if (status >= 200 && status < 300) timings.push(ms);
    else failures++;
  }
  agent.destroy();
  return { kind: 'single', count: job.count, failures, p50Ms: percentile(timings, 50), p99Ms: percentile(timings, 99) };
}

process.on('message', (job: LoadJob) => {
  const run = job.kind === 'autocannon' ? runAutocannon(job) : runSingleRequests(job);
  run.then(
    (report) => process.send!({ ok: true, report } satisfies WorkerReply),
    (error: unknown) => process.send!({ ok: false, error: String(error) } satisfies WorkerReply),
  );
});
// The benchmark closing the channel (or dying) ends this process.
process.on('disconnect', () => process.exit(0));
