import http from 'node:http';

export interface RequestResult {
  ok: boolean;
  method: string;
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
  /** Requests sent per method (GET, POST). */
  byMethod: Record<string, number>;
}

/** A JSON body to POST instead of a GET. */
export interface PostBody {
  json: unknown;
}

/**
 * One GET (or, given a body, one JSON POST) on a fresh connection (no keep-alive). It fails if it errors,
 * answers non-2xx, or takes longer than `timeoutMs`: the project's definition of a failed request.
 */
export function requestOnce(url: string, timeoutMs = 2000, headers: Record<string, string> = {}, post?: PostBody): Promise<RequestResult> {
  const started = performance.now();
  const method = post ? 'POST' : 'GET';
  const body = post ? JSON.stringify(post.json) : undefined;
  return new Promise((resolve) => {
    const contentHeaders: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
    const req = http.request(url, { method, agent: false, headers: { connection: 'close', ...contentHeaders, ...headers } }, (res) => {
      res.resume();
      res.on('end', () => {
        const ms = performance.now() - started;
        const status = res.statusCode ?? 0;
        resolve({
          ok: status >= 200 && status < 300 && ms <= timeoutMs,
          method,
          status,
          ms,
          instance: res.headers['x-instance-id'] as string | undefined,
          upstream: res.headers['x-upstream-addr'] as string | undefined,
          error: ms > timeoutMs ? `slow: ${Math.round(ms)} ms` : undefined,
        });
      });
      res.on('error', (error) => resolve({ ok: false, method, status: 0, ms: performance.now() - started, error: String(error) }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (error) => resolve({ ok: false, method, status: 0, ms: performance.now() - started, error: String(error) }));
    req.end(body);
  });
}

function summarize(results: RequestResult[]): LoadReport {
  const byInstance: Record<string, number> = {};
  const byMethod: Record<string, number> = {};
  for (const r of results) {
    if (r.ok && r.instance) byInstance[r.instance] = (byInstance[r.instance] ?? 0) + 1;
    byMethod[r.method] = (byMethod[r.method] ?? 0) + 1;
  }
  return { total: results.length, failures: results.filter((r) => !r.ok), byInstance, byMethod };
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

/** A user to create, unique per call: the steady loop's non-idempotent request. */
export const newUser = (): PostBody => {
  const n = Math.random().toString(36).slice(2, 10);
  return { json: { name: `Loop ${n}`, email: `loop-${n}@example.com` } };
};

/**
 * The "steady request loop" of the tests: `clients` concurrent clients, a new connection per request,
 * until stopped, or until `maxMs` or `maxRequests` is reached so that it always ends by itself.
 * With `postUrl`, every client alternates a GET of `url` with a POST of a new user to `postUrl`: nginx
 * retries a GET that failed on another replica, but never a POST it has sent, so only POSTs show
 * whether a replica going away cut a request off.
 */
export function startSteadyLoop(
  url: string,
  { clients = 4, maxMs = 60_000, maxRequests = 200_000, pauseMs = 5, postUrl = '' } = {},
): SteadyLoop {
  const results: RequestResult[] = [];
  const deadline = Date.now() + maxMs;
  let stopped = false;
  const running = Array.from({ length: clients }, async (_, client) => {
    for (let i = client; !stopped && Date.now() < deadline && results.length < maxRequests; i++) {
      results.push(postUrl && i % 2 === 1 ? await requestOnce(postUrl, 2000, {}, newUser()) : await requestOnce(url));
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
  const shown = report.failures.slice(0, max).map((f) => `${f.method} ${f.status || 'ERR'} ${Math.round(f.ms)}ms ${f.error ?? ''}`.trim());
  return `${report.failures.length}/${report.total} failed: ${shown.join('; ')}`;
}
