// Hostile and real clients on distinct loopback source addresses (Linux routes all of 127.0.0.0/8 to lo):
// the attacker binds its sockets to one address, the real client to another, every target is 127.0.0.1.
// Shared by the flood tests and `npm run attack`. An https:// URL or a `tls` target is the HTTPS edge: the
// requests verify its certificate (Node's CAs and BALANCER_CA_FILE's, harness/tls.ts), the floods do not.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { trustOptions } from './tls';

export const ATTACKER_ADDRESS = '127.0.0.2';
export const REAL_CLIENT_ADDRESS = '127.0.0.3';

export interface Target {
  host: string;
  port: number;
  /** The listener speaks TLS (the HTTPS edge). */
  tls?: boolean;
}

/** Connections opened at once; the rest wait, so the listen backlog (511 for nginx) never overflows. */
const CONNECT_BATCH = 200;

export interface ConnectionFlood {
  /** Connections open right now. */
  open(): number;
  /** Connections opened in all, reopenings included. */
  opened(): number;
  stop(): void;
}

/** Opens one flood connection; calls `ready` once it has sent what it sends before it stalls. */
type Stall = (ready: () => void) => net.Socket;

/**
 * `count` connections opened by `stall`, in batches; with `reopen`, a connection the server closes (its
 * timeout) is replaced at once, as a persistent attacker would, until stop().
 */
async function holdOpen(count: number, reopen: boolean, stall: Stall): Promise<ConnectionFlood> {
  const sockets = new Set<net.Socket>();
  let opened = 0;
  let stopped = false;
  const connectOne = () =>
    new Promise<void>((resolve) => {
      const socket = stall(resolve);
      opened++;
      sockets.add(socket);
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

const SLOW_HEADER = 'GET / HTTP/1.1\r\nHost: flood\r\nX-Slow: ';

/**
 * `count` connections from `from` that each send the start of a request header and never finish it: a
 * slow-header (slowloris) flood. On a `tls` target each connection completes its handshake first (without
 * checking the certificate: an attacker need not) and then dribbles the header. With `reopen`, see holdOpen.
 */
export function slowHeaderFlood(target: Target, count: number, from: string, reopen = false): Promise<ConnectionFlood> {
  return holdOpen(count, reopen, (ready) => {
    if (target.tls) {
      const tcp = net.connect({ host: target.host, port: target.port, localAddress: from });
      const socket = tls.connect({ socket: tcp, rejectUnauthorized: false });
      socket.on('secureConnect', () => socket.write(SLOW_HEADER, () => ready()));
      return socket;
    }
    const socket = net.connect({ host: target.host, port: target.port, localAddress: from });
    socket.on('connect', () => socket.write(SLOW_HEADER, () => ready()));
    return socket;
  });
}

/**
 * The start of a TLS ClientHello: a handshake record announcing 512 bytes, of which only the message's
 * type, length and version come. The server has read a record header and waits for the rest.
 */
const PARTIAL_CLIENT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);

/**
 * `count` TCP connections from `from` to a TLS listener that start a handshake and never finish it (a
 * partial ClientHello): the server holds each in its handshake until its own timeout. With `reopen`, see
 * holdOpen.
 */
export function handshakeFlood(target: Target, count: number, from: string, reopen = false): Promise<ConnectionFlood> {
  return holdOpen(count, reopen, (ready) => {
    const socket = net.connect({ host: target.host, port: target.port, localAddress: from });
    socket.on('connect', () => socket.write(PARTIAL_CLIENT_HELLO, () => ready()));
    return socket;
  });
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

/** One request on a new connection from `from` (https:// verified, see above); never rejects. */
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
    const secure = url.startsWith('https:');
    const req = (secure ? https : http).request(
      url,
      {
        method: options.method ?? 'GET',
        headers: options.headers,
        localAddress: from,
        agent: false,
        timeout: timeoutMs,
        ...(secure ? trustOptions() : {}),
      },
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
