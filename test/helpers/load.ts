import { fork } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';

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
  /** The three slowest requests, slowest first. */
  slowest: RequestResult[];
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
  const slowest = results.slice().sort((a, b) => b.ms - a.ms).slice(0, 3);
  return { total: results.length, failures: results.filter((r) => !r.ok), byInstance, slowest };
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

export interface SteadyLoopReport extends LoadReport {
  /**
   * The longest time the clients' event loop stood still while the loop ran: a stall there (synchronous
   * work in the same process) is added to every request in flight, although no server was slow.
   */
  longestStallMs: number;
}

export interface SteadyLoop {
  /** Stops the clients, waits for requests in flight, and reports every request sent. */
  stop(): Promise<SteadyLoopReport>;
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
  const stalls = monitorEventLoopDelay({ resolution: 10 });
  stalls.enable();
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
      stalls.disable();
      return { ...summarize(results), longestStallMs: Math.round(stalls.max / 1e6) };
    },
  };
}

/**
 * The steady loop in a child process: its clients' clocks then keep running while the caller's own
 * event loop is busy. The system test records the Pulumi program in its own process (a synchronous
 * require and compile of the program, 1.5 s on a loaded machine), and every request in flight then
 * looked that much slower although nginx had answered it in milliseconds.
 */
export function startSteadyLoopProcess(url: string, options: Parameters<typeof startSteadyLoop>[1] = {}): SteadyLoop {
  const child = fork(path.join(__dirname, 'steady-loop-process.ts'), [], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  const report = new Promise<SteadyLoopReport>((resolve, reject) => {
    child.once('message', (message) => resolve(message as SteadyLoopReport));
    child.once('exit', (code, signal) => reject(new Error(`the steady loop's process exited (${code ?? signal}) before reporting`)));
  });
  report.catch(() => {}); // read by stop(); a loop never stopped must not fail the run by itself
  child.send({ url, options });
  return {
    async stop() {
      if (child.connected) child.send('stop');
      return report;
    },
  };
}

/** Short human-readable description of failures, for assertion messages. */
export function describeFailures(report: LoadReport, max = 5): string {
  const shown = report.failures.slice(0, max).map((f) => `${f.status || 'ERR'} ${Math.round(f.ms)}ms ${f.error ?? ''} (${new URL(f.url).search || f.url})`.trim());
  return `${report.failures.length}/${report.total} failed: ${shown.join('; ')}`;
}
