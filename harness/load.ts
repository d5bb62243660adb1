import { fork } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { trustOptions } from './tls';

export interface RequestResult {
  /** What was requested: a failure can then be found in the balancer's access log by its URI. */
  url: string;
  ok: boolean;
  method: string;
  status: number;
  /** When it was sent (epoch ms), to place failures on a time line. */
  at: number;
  ms: number;
  instance?: string;
  upstream?: string;
  /** A redirect's Location; with followRedirect, the URL the answer came from. */
  location?: string;
  error?: string;
  /** The `id` a successful POST answered with (the user it created, whose event the tests look for). */
  createdId?: string;
}

export interface LoadReport {
  total: number;
  failures: RequestResult[];
  /** Requests answered per `X-Instance-Id`. */
  byInstance: Record<string, number>;
  /** Requests sent per method (GET, POST). */
  byMethod: Record<string, number>;
  /** The three slowest requests, slowest first. */
  slowest: RequestResult[];
}

/** A JSON body to POST instead of a GET. */
export interface PostBody {
  json: unknown;
}

/**
 * One GET (or, given a body, one JSON POST) on a fresh connection (no keep-alive). It fails if it errors,
 * answers non-2xx, or takes longer than `timeoutMs`: the project's definition of a failed request. An
 * https:// URL is verified against Node's CAs and BALANCER_CA_FILE's (harness/tls.ts); the handshake counts
 * in the time.
 */
export function requestOnce(url: string, timeoutMs = 2000, headers: Record<string, string> = {}, post?: PostBody): Promise<RequestResult> {
  const at = Date.now();
  const started = performance.now();
  const method = post ? 'POST' : 'GET';
  const body = post ? JSON.stringify(post.json) : undefined;
  const failed = (error: unknown): RequestResult => ({
    url,
    ok: false,
    method,
    status: 0,
    at,
    ms: performance.now() - started,
    error: String(error),
  });
  return new Promise((resolve) => {
    const contentHeaders: Record<string, string> =
      body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
    const client = url.startsWith('https:') ? https : http;
    const req = client.request(
      url,
      { method, agent: false, ...trustOptions(), headers: { connection: 'close', ...contentHeaders, ...headers } },
      (res) => {
        // A POST's answer is read (a user, a few hundred bytes) for its id; a GET's is drained unread.
        let answer = '';
        if (post) res.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk));
        else res.resume();
        res.on('end', () => {
          const ms = performance.now() - started;
          const status = res.statusCode ?? 0;
          resolve({
            ...(post && status === 201 ? { createdId: idOf(answer) } : {}),
            url,
            ok: status >= 200 && status < 300 && ms <= timeoutMs,
            method,
            status,
            at,
            ms,
            instance: res.headers['x-instance-id'] as string | undefined,
            upstream: res.headers['x-upstream-addr'] as string | undefined,
            location: res.headers.location,
            error: ms > timeoutMs ? `slow: ${Math.round(ms)} ms` : undefined,
          });
        });
        res.on('error', (error) => resolve(failed(error)));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (error) => resolve(failed(error)));
    req.end(body);
  });
}

/**
 * As requestOnce, following one redirect (301, 302, 303, 307 or 308) as a browser does: 307 and 308 keep
 * the method and body. Its result is the second answer's, timed from the first request, with `location`.
 */
export async function requestFollowing(
  url: string,
  timeoutMs = 2000,
  headers: Record<string, string> = {},
  post?: PostBody,
): Promise<RequestResult> {
  const first = await requestOnce(url, timeoutMs, headers, post);
  if (![301, 302, 303, 307, 308].includes(first.status) || !first.location) return first;
  const location = new URL(first.location, url).href;
  const second = await requestOnce(
    location,
    Math.max(1, timeoutMs - first.ms),
    headers,
    [307, 308].includes(first.status) ? post : undefined,
  );
  const ms = first.ms + second.ms;
  return { ...second, url, at: first.at, ms, ok: second.ok && ms <= timeoutMs, location };
}

/** GET `url`: its status and body, over https:// verified as the requests are (Node's CAs and BALANCER_CA_FILE's). */
export function httpGet(url: string, headers: Record<string, string> = {}, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const client = url.startsWith('https:') ? https : http;
    const req = client.get(url, { agent: false, ...trustOptions(), headers, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** GET `url` and parse its JSON answer (httpGet); rejects with the status on a non-2xx answer. */
export async function getJson<T>(url: string, headers: Record<string, string> = {}, timeoutMs = 2000): Promise<T> {
  const { status, body } = await httpGet(url, headers, timeoutMs);
  if (status < 200 || status >= 300) throw new Error(`${new URL(url).pathname}: HTTP ${status}`);
  return JSON.parse(body) as T;
}

function idOf(json: string): string | undefined {
  try {
    const id = (JSON.parse(json) as { id?: unknown }).id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

function summarize(results: RequestResult[]): LoadReport {
  const byInstance: Record<string, number> = {};
  const byMethod: Record<string, number> = {};
  for (const r of results) {
    if (r.ok && r.instance) byInstance[r.instance] = (byInstance[r.instance] ?? 0) + 1;
    byMethod[r.method] = (byMethod[r.method] ?? 0) + 1;
  }
  const slowest = results
    .slice()
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 3);
  return { total: results.length, failures: results.filter((r) => !r.ok), byInstance, byMethod, slowest };
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
  /** Every request, in the order they were sent; only with `keepResults`. */
  results?: RequestResult[];
}

export interface SteadyLoop {
  /** Stops the clients, waits for requests in flight, and reports every request sent. */
  stop(): Promise<SteadyLoopReport>;
}

/** A user to create, unique per call: the steady loop's non-idempotent request. */
const newUser = (): PostBody => {
  const n = Math.random().toString(36).slice(2, 10);
  return { json: { name: `Loop ${n}`, email: `loop-${n}@example.com` } };
};

export interface SteadyLoopOptions {
  clients?: number;
  maxMs?: number;
  maxRequests?: number;
  pauseMs?: number;
  /** When set, every client alternates a GET of the loop's URL with a POST of a new user here. */
  postUrl?: string;
  /** Report every request (`results`), not only failures and counts. */
  keepResults?: boolean;
  /** Follow one redirect per request (requestFollowing), as a browser does. */
  followRedirect?: boolean;
}

/**
 * The "steady request loop" of the tests: `clients` concurrent clients, a new connection per request,
 * until stopped, or until `maxMs` or `maxRequests` is reached so that it always ends by itself. Each
 * GET carries its own `seq=N` query parameter, so a failed one can be found in access logs. With
 * `postUrl`, nginx's retry of a failed GET on another replica no longer hides a replica that went away
 * mid-request: nginx never retries a POST it has sent.
 */
export function startSteadyLoop(
  url: string,
  {
    clients = 4,
    maxMs = 60_000,
    maxRequests = 200_000,
    pauseMs = 5,
    postUrl = '',
    keepResults = false,
    followRedirect = false,
  }: SteadyLoopOptions = {},
): SteadyLoop {
  const request = followRedirect ? requestFollowing : requestOnce;
  const results: RequestResult[] = [];
  const deadline = Date.now() + maxMs;
  let stopped = false;
  const stalls = monitorEventLoopDelay({ resolution: 10 });
  stalls.enable();
  const separator = url.includes('?') ? '&' : '?';
  let sent = 0;
  const running = Array.from({ length: clients }, async (_, client) => {
    for (let i = client; !stopped && Date.now() < deadline && results.length < maxRequests; i++) {
      results.push(postUrl && i % 2 === 1 ? await request(postUrl, 2000, {}, newUser()) : await request(`${url}${separator}seq=${++sent}`));
      if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
    }
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(running);
      stalls.disable();
      return { ...summarize(results), longestStallMs: Math.round(stalls.max / 1e6), ...(keepResults ? { results } : {}) };
    },
  };
}

/**
 * The steady loop in a child process: its clients' clocks then keep running while the caller's own
 * event loop is busy. The system test records the Pulumi program in its own process (a synchronous
 * require and compile of the program, 1.5 s on a loaded machine), and every request in flight then
 * looked that much slower although nginx had answered it in milliseconds.
 */
export function startSteadyLoopProcess(url: string, options: SteadyLoopOptions = {}): SteadyLoop {
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
  const shown = report.failures
    .slice(0, max)
    .map((f) => `${f.method} ${f.status || 'ERR'} ${Math.round(f.ms)}ms ${f.error ?? ''} (${new URL(f.url).search || f.url})`.trim());
  return `${report.failures.length}/${report.total} failed: ${shown.join('; ')}`;
}
