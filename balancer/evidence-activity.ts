// The evidence page's "Activity events" panel reads the activity service's SSE stream through the
// watcher: nginx proxies /_balancer/activity (admin listener) here, and each browser stream is relayed
// from GET /api/activity/stream on the balancer's own public listener, so it is routed like a client's.
// The watcher, not nginx alone, holds the relay so that it can end the streams at a reload or a stop:
// a stream that nginx proxied from port to port would keep an old worker (and a stop) waiting for
// worker_shutdown_timeout (30 s). See balancer/README.md, "The evidence page".
import http from 'node:http';
import https from 'node:https';
import type { ActivityUnavailable } from './evidence-model';

/** The activity service's stream on its default route (activity/README.md); the gateway routes it. */
export const ACTIVITY_STREAM_PATH = '/api/activity/stream';

/** While unavailable, EventSource asks again this often (the `retry` field). */
export const UNAVAILABLE_RETRY_MS = 5000;

/** What a browser's Last-Event-ID may be to be passed on: the activity service's ids are stream sequences (activity/README.md); anything else this shape is passed on too. */
const EVENT_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface ActivityRelayOptions {
  /** `http://<public listener>/api/activity/stream`. */
  upstreamUrl: string;
  /** Headers every answer carries (the page's CSP, no-store, nosniff...). */
  headers: Readonly<Record<string, string>>;
  /** Open relays at most (each holds a connection to the public listener); more get a 503. */
  maxStreams: number;
  /** The public listener must answer within this; then the stream is passed on as it comes. */
  connectTimeoutMs?: number;
  /** A stream silent this long is cut: the activity service sends a heartbeat every 15 s. */
  idleTimeoutMs?: number;
}

export interface ActivityRelay {
  /** Answers one GET or HEAD of /_balancer/activity. */
  open(req: http.IncomingMessage, res: http.ServerResponse): void;
  /** Ends every relayed stream and its upstream request; browsers reconnect with Last-Event-ID. */
  endAll(): void;
  /** endAll, and no new stream from now on (the balancer is stopping). */
  close(): void;
}

/** Sent before a relayed stream: the page shows it as live. */
export const LIVE_MESSAGE = `event: live\ndata: ${JSON.stringify({ stream: ACTIVITY_STREAM_PATH })}\n\n`;

/** An SSE answer saying why there is no stream; EventSource asks again after UNAVAILABLE_RETRY_MS. */
export function unavailableMessage(u: ActivityUnavailable): string {
  return `retry: ${UNAVAILABLE_RETRY_MS}\n\nevent: unavailable\ndata: ${JSON.stringify(u)}\n\n`;
}

/** The `error` of a JSON error body (the gateway's 404 and 503 answers), else `HTTP <status>`. */
function errorOf(status: number, body: string): string {
  try {
    const value = JSON.parse(body) as { error?: unknown };
    if (typeof value.error === 'string') return value.error.slice(0, 200);
  } catch {
    // Not JSON: the status says it.
  }
  return `HTTP ${status}`;
}

export function createActivityRelay(o: ActivityRelayOptions): ActivityRelay {
  const connectTimeoutMs = o.connectTimeoutMs ?? 5000;
  const idleTimeoutMs = o.idleTimeoutMs ?? 45_000;
  const streams = new Map<http.ServerResponse, http.ClientRequest>();
  let closed = false;
  const streamHeaders = { ...o.headers, 'content-type': 'text/event-stream; charset=utf-8', 'x-accel-buffering': 'no' };

  /** A 200 with the reason as an SSE message: a non-200 would make EventSource give up (and the console show it). */
  const unavailable = (res: http.ServerResponse, u: ActivityUnavailable) => {
    if (res.headersSent) {
      res.end();
      return;
    }
    res.writeHead(200, streamHeaders);
    res.end(unavailableMessage(u));
  };

  const open = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (closed || streams.size >= o.maxStreams) {
      const error = closed ? 'the balancer is stopping' : 'too many activity streams';
      const body = JSON.stringify({ error, max: o.maxStreams });
      res.writeHead(503, { ...o.headers, 'content-type': 'application/json; charset=utf-8', 'retry-after': '5' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (req.method === 'HEAD') {
      res.writeHead(200, streamHeaders);
      res.end();
      return;
    }
    const lastEventId = req.headers['last-event-id'];
    const headers: http.OutgoingHttpHeaders = { accept: 'text/event-stream' };
    if (typeof lastEventId === 'string' && EVENT_ID.test(lastEventId)) headers['last-event-id'] = lastEventId;
    // The balancer's own public listener on loopback: under HTTPS its certificate names the public host, not
    // loopback, and the connection never leaves this host, so it is not verified.
    const upstream = o.upstreamUrl.startsWith('https:')
      ? https.get(o.upstreamUrl, { headers, timeout: connectTimeoutMs, rejectUnauthorized: false })
      : http.get(o.upstreamUrl, { headers, timeout: connectTimeoutMs });
    streams.set(res, upstream);
    const forget = () => {
      streams.delete(res);
      upstream.destroy();
    };
    res.on('close', forget);
    // Before the answer: no answer in connectTimeoutMs; after it: no byte in idleTimeoutMs.
    upstream.on('timeout', () =>
      upstream.destroy(new Error(res.headersSent ? 'the stream went quiet' : `no answer within ${connectTimeoutMs} ms`)),
    );
    upstream.on('error', (error) => {
      forget();
      // Ended here (endAll, or the browser left): nothing more to say.
      if (!res.writableEnded && !res.destroyed) unavailable(res, { status: 0, error: error.message });
    });
    upstream.on('response', (answer) => {
      const type = answer.headers['content-type'] ?? '';
      if (answer.statusCode !== 200 || !type.startsWith('text/event-stream')) {
        let body = '';
        answer.setEncoding('utf8');
        answer.on('data', (chunk: string) => (body = (body + chunk).slice(0, 4096)));
        answer.on('end', () => {
          forget();
          if (!res.writableEnded && !res.destroyed)
            unavailable(res, { status: answer.statusCode ?? 0, error: errorOf(answer.statusCode ?? 0, body) });
        });
        return;
      }
      // From here the socket may be quiet between events, but never longer than the heartbeat.
      upstream.setTimeout(idleTimeoutMs);
      res.writeHead(200, streamHeaders);
      // The page's sign that the stream is there (the service's own first bytes are a comment, no event).
      res.write(LIVE_MESSAGE);
      answer.pipe(res);
      answer.on('end', () => res.end());
      answer.on('error', () => res.end());
    });
  };

  const endAll = () => {
    for (const [res, upstream] of streams) {
      upstream.destroy();
      res.end();
    }
    streams.clear();
  };

  return {
    open,
    endAll,
    close() {
      closed = true;
      endAll();
    },
  };
}
