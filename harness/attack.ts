// Hostile and real clients on distinct loopback source addresses (Linux routes all of 127.0.0.0/8 to lo):
// the attacker binds its sockets to one address, the real client to another, every target is 127.0.0.1.
// Shared by the flood tests and `npm run attack`.
import http from 'node:http';
import net from 'node:net';

export const ATTACKER_ADDRESS = '127.0.0.2';
export const REAL_CLIENT_ADDRESS = '127.0.0.3';

export interface Target {
  host: string;
  port: number;
}

/** Connections opened at once; the rest wait, so the listen backlog (511 for nginx) never overflows. */
const CONNECT_BATCH = 200;

export interface SlowHeaderFlood {
  /** Connections open right now. */
  open(): number;
  /** Connections opened in all, reopenings included. */
  opened(): number;
  stop(): void;
}

/**
 * `count` connections from `from` that each send the start of a request header and never finish it: a
 * slow-header (slowloris) flood. With `reopen`, a connection the server closes (its header timeout) is
 * replaced at once, as a persistent attacker would, until stop().
 */
export async function slowHeaderFlood(target: Target, count: number, from: string, reopen = false): Promise<SlowHeaderFlood> {
  const sockets = new Set<net.Socket>();
  let opened = 0;
  let stopped = false;
  const connectOne = () =>
    new Promise<void>((resolve) => {
      const socket = net.connect({ host: target.host, port: target.port, localAddress: from });
      opened++;
      sockets.add(socket);
      socket.on('connect', () => {
        socket.write('GET / HTTP/1.1\r\nHost: flood\r\nX-Slow: ');
        resolve();
      });
      socket.on('data', () => undefined);
      socket.on('error', () => resolve());
      socket.on('close', () => {
        sockets.delete(socket);
        resolve();
        if (reopen && !stopped) void connectOne();
      });
    });
  for (let done = 0; done < count; done += CONNECT_BATCH) {
    await Promise.all(Array.from({ length: Math.min(CONNECT_BATCH, count - done) }, connectOne));
  }
  return {
    open: () => sockets.size,
    opened: () => opened,
    stop() {
      stopped = true;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
  };
}

export interface Answer {
  status: number;
  /** Set when no HTTP answer came: the error's code or message. */
  error?: string;
  body: string;
  /** The answer's headers (requestFrom sets them; {} when no answer came). */
  headers?: http.IncomingHttpHeaders;
  ms: number;
}

/** One request on a new connection from `from`; never rejects. */
export function requestFrom(
  url: string,
  from: string,
  timeoutMs = 5000,
  options: { method?: string; body?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const finish = (answer: Omit<Answer, 'ms'>) => {
      if (settled) return;
      settled = true;
      resolve({ ...answer, ms: performance.now() - started });
    };
    const req = http.request(
      url,
      { method: options.method ?? 'GET', headers: options.headers, localAddress: from, agent: false, timeout: timeoutMs },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => finish({ status: res.statusCode ?? 0, body, headers: res.headers }));
        res.on('error', (error) => finish({ status: 0, error: error.message, body, headers: res.headers }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (error: NodeJS.ErrnoException) => finish({ status: 0, error: error.code ?? error.message, body: '', headers: {} }));
    req.end(options.body);
  });
}

export interface ClientReport {
  total: number;
  /** Answers that were not 2xx, or no answer at all. */
  failed: Answer[];
  /** Status (or error) -> count. */
  outcomes: Record<string, number>;
  maxMs: number;
}

export function summarize(answers: readonly Answer[]): ClientReport {
  const outcomes: Record<string, number> = {};
  for (const a of answers) {
    const key = a.error ? `error ${a.error}` : String(a.status);
    outcomes[key] = (outcomes[key] ?? 0) + 1;
  }
  return {
    total: answers.length,
    failed: answers.filter((a) => a.error !== undefined || a.status < 200 || a.status >= 300),
    outcomes,
    maxMs: Math.round(Math.max(0, ...answers.map((a) => a.ms))),
  };
}

/** A real client: `concurrency` loops of requests from `from`, each on a new connection, for `durationMs`. */
export async function realClient(url: string, from: string, durationMs: number, concurrency = 2, timeoutMs = 5000): Promise<ClientReport> {
  const answers: Answer[] = [];
  const end = Date.now() + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        answers.push(await requestFrom(url, from, timeoutMs));
        await new Promise((r) => setTimeout(r, 20));
      }
    }),
  );
  return summarize(answers);
}

/** `count` complete requests from `from`, all at once, each on its own connection: a connection burst. */
export async function burst(url: string, count: number, from: string, timeoutMs = 10_000): Promise<ClientReport> {
  return summarize(await Promise.all(Array.from({ length: count }, () => requestFrom(url, from, timeoutMs))));
}

export interface HeldRequests {
  /** Requests whose header went out and that are still open. */
  open(): number;
  release(): void;
}

/**
 * `count` POSTs from `from` whose header is complete but whose announced body never comes: each is a
 * request in flight at the server (what nginx's limit_conn counts) until release() or its body timeout.
 */
export async function holdRequests(target: Target, path: string, count: number, from: string): Promise<HeldRequests> {
  const sockets = new Set<net.Socket>();
  await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<void>((resolve) => {
          const socket = net.connect({ host: target.host, port: target.port, localAddress: from });
          sockets.add(socket);
          socket.on('connect', () => {
            socket.write(`POST ${path} HTTP/1.1\r\nHost: held\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{`);
            resolve();
          });
          socket.on('data', () => undefined);
          socket.on('error', () => resolve());
          socket.on('close', () => sockets.delete(socket));
        }),
    ),
  );
  return {
    open: () => sockets.size,
    release() {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
  };
}
