import http from 'node:http';

export interface RequestResult {
  /** What was requested: a failure can then be found in the balancer's access log by its URI. */
  url: string;
  ok: boolean;
  status: number;
  ms: number;
  instance?: string;
  upstream?: string;
  error?: string;
}

export interface LoadReport {
  total: number;
  failures: RequestResult[];
  /** Requests answered per `X-Instance-Id`. */
  byInstance: Record<string, number>;
}

/**
 * One GET on a fresh connection (no keep-alive). It fails if it errors, answers non-2xx,
 * or takes longer than `timeoutMs`: the project's definition of a failed request.
 */
export function requestOnce(url: string, timeoutMs = 2000, headers: Record<string, string> = {}): Promise<RequestResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, headers: { connection: 'close', ...headers } }, (res) => {
      res.resume();
      res.on('end', () => {
        const ms = performance.now() - started;
        const status = res.statusCode ?? 0;
        resolve({
          url,
          ok: status >= 200 && status < 300 && ms <= timeoutMs,
          status,
          ms,
          instance: res.headers['x-instance-id'] as string | undefined,
          upstream: res.headers['x-upstream-addr'] as string | undefined,
          error: ms > timeoutMs ? `slow: ${Math.round(ms)} ms` : undefined,
        });
      });
      res.on('error', (error) => resolve({ url, ok: false, status: 0, ms: performance.now() - started, error: String(error) }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (error) => resolve({ url, ok: false, status: 0, ms: performance.now() - started, error: String(error) }));
  });
}

function summarize(results: RequestResult[]): LoadReport {
  const byInstance: Record<string, number> = {};
  for (const r of results) if (r.ok && r.instance) byInstance[r.instance] = (byInstance[r.instance] ?? 0) + 1;
  return { total: results.length, failures: results.filter((r) => !r.ok), byInstance };
}

/** Sends `count` requests, `concurrency` at a time, each on a new connection; every result. */
export async function sendAll(url: string, count: number, concurrency = 4): Promise<RequestResult[]> {
  const results: RequestResult[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        results.push(await requestOnce(url));
      }
    }),
  );
  return results;
}

/** As sendAll, summarized. */
export async function sendRequests(url: string, count: number, concurrency = 4): Promise<LoadReport> {
  return summarize(await sendAll(url, count, concurrency));
}

export interface SteadyLoop {
  /** Stops the clients, waits for requests in flight, and reports every request sent. */
  stop(): Promise<LoadReport>;
}

/**
 * The "steady request loop" of the tests: `clients` concurrent clients, a new connection per request,
 * until stopped, or until `maxMs` or `maxRequests` is reached so that it always ends by itself. Each
 * request carries its own `seq=N` query parameter, so a failed one can be found in access logs.
 */
export function startSteadyLoop(url: string, { clients = 4, maxMs = 60_000, maxRequests = 200_000, pauseMs = 5 } = {}): SteadyLoop {
  const results: RequestResult[] = [];
  const deadline = Date.now() + maxMs;
  let stopped = false;
  const separator = url.includes('?') ? '&' : '?';
  let sent = 0;
  const running = Array.from({ length: clients }, async () => {
    while (!stopped && Date.now() < deadline && results.length < maxRequests) {
      results.push(await requestOnce(`${url}${separator}seq=${++sent}`));
      if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
    }
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(running);
      return summarize(results);
    },
  };
}

/** Short human-readable description of failures, for assertion messages. */
export function describeFailures(report: LoadReport, max = 5): string {
  const shown = report.failures.slice(0, max).map((f) => `${f.status || 'ERR'} ${Math.round(f.ms)}ms ${f.error ?? ''} (${new URL(f.url).search || f.url})`.trim());
  return `${report.failures.length}/${report.total} failed: ${shown.join('; ')}`;
}
