import type { HttpBindings } from '@hono/node-server';
import { Hono } from 'hono';
import { stream } from 'hono/streaming';
import { validator } from 'hono/validator';
import type { Logger } from '../lib/logger';
import { instanceAndRequestLog, jsonMethodNotAllowed } from '../replica/request-log';
import type { ActivityFeed, FeedEntry } from './feed';
import { sseComment, sseMessage, type SseHub } from './sse';

export interface ActivityAppDeps {
  serviceId: string;
  feed: ActivityFeed;
  hub: SseHub;
  logger: Logger;
  /** True once the process is shutting down: health turns 503 so Consul and the gateway stop sending. */
  isDraining: () => boolean;
}

/** Most events one `GET /api/activity` answers when no `limit` is given. */
export const DEFAULT_LIMIT = 50;

/** What EventSource waits before reconnecting after a stream ended (a replica drained): 1 s. */
const RECONNECT_MS = 1000;

/** Retry-After of the 503 for a stream beyond the cap: long enough for a crowd to thin out. */
const STREAMS_FULL_RETRY_S = 5;

/**
 * One event as an SSE message: its stream sequence as the id (what EventSource sends back as
 * Last-Event-ID; every replica knows an event by the same sequence) and the event's JSON.
 */
export function eventMessage(entry: FeedEntry): string {
  return sseMessage(String(entry.seq), JSON.stringify(entry.event));
}

/** The stream sequence of a frame eventMessage made; undefined for anything else (a heartbeat). */
export function frameSeq(frame: string): number | undefined {
  const id = /^id: (\d+)\n/.exec(frame);
  return id ? Number(id[1]) : undefined;
}

/** `limit` of GET /api/activity: once at most, a whole number from 1 to the events kept. */
export function parseLimit(values: string[], keep: number): { ok: true; limit: number } | { ok: false; error: string } {
  const allowed = `a whole number from 1 to ${keep} (default ${Math.min(DEFAULT_LIMIT, keep)})`;
  if (values.length > 1) return { ok: false, error: `query parameter limit may be given once: ${allowed}` };
  if (values.length === 0) return { ok: true, limit: Math.min(DEFAULT_LIMIT, keep) };
  const limit = /^\d{1,6}$/.test(values[0]) ? Number(values[0]) : NaN;
  return limit >= 1 && limit <= keep ? { ok: true, limit } : { ok: false, error: `query parameter limit must be ${allowed}` };
}

/** The stream sequence a reconnecting client saw last; undefined for none, or for an id this service never sent. */
export function parseLastEventId(header: string | undefined): number | undefined {
  return header !== undefined && /^\d{1,15}$/.test(header.trim()) ? Number(header.trim()) : undefined;
}

/** The activity feed's HTTP API, as a value: no ports, timers or signals here (those live in main.ts). */
export function createActivityApp(deps: ActivityAppDeps): Hono<{ Bindings: Partial<HttpBindings> }> {
  const { feed, hub, logger } = deps;
  const app = new Hono<{ Bindings: Partial<HttpBindings> }>();

  app.use(instanceAndRequestLog(deps));
  app.use(jsonMethodNotAllowed(app));

  app.get('/health', (c) =>
    deps.isDraining() ? c.json({ status: 'draining', instance: deps.serviceId }, 503) : c.json({ status: 'ok', instance: deps.serviceId }),
  );

  const limitQuery = validator('query', (query, c) => {
    const parsed = parseLimit([query.limit ?? []].flat(), feed.keep);
    return parsed.ok ? { limit: parsed.limit } : c.json({ error: parsed.error, param: 'limit' }, 400);
  });

  // The last events, newest first.
  app.get('/api/activity', limitQuery, (c) => c.json({ events: feed.recent(c.req.valid('query').limit) }));

  // Every new event, pushed as it arrives. The client joins the hub before anything is written, so an
  // event that arrives once the client has the first bytes is on its stream. A client reconnecting with
  // Last-Event-ID first gets the kept events after that sequence; from then on it is sent only events
  // past what it has (this replica may be behind the one the client came from: those it has seen are skipped).
  app.get('/api/activity/stream', (c) => {
    const client = hub.connect();
    if (!client) return c.json({ error: 'too many event streams', max: hub.max }, 503, { 'Retry-After': String(STREAMS_FULL_RETRY_S) });
    const lastSeen = parseLastEventId(c.req.header('Last-Event-ID'));
    const missed = lastSeen === undefined ? [] : feed.after(lastSeen);
    // Frames come in stream order: once one is past what the client has, so are the rest.
    let skipThrough = missed.at(-1)?.seq ?? lastSeen;
    c.header('Content-Type', 'text/event-stream; charset=utf-8');
    c.header('Cache-Control', 'no-cache, no-transform');
    // nginx (the gateway) would otherwise buffer the stream and deliver it in lumps.
    c.header('X-Accel-Buffering', 'no');
    return stream(c, async (s) => {
      const socket = c.env?.incoming?.socket;
      client.onClose((reason) => {
        // A client that fell behind is blocked in a write nobody reads: cut its connection.
        if (reason === 'slow') {
          socket?.destroy();
          void s.abort();
        }
      });
      s.onAbort(() => client.close('gone'));
      c.req.raw.signal.addEventListener('abort', () => client.close('gone'));
      await s.write(`retry: ${RECONNECT_MS}\n\n${sseComment('connected')}`);
      for (const entry of missed) await s.write(eventMessage(entry));
      for (;;) {
        const frame = await client.next();
        if (frame === undefined) break;
        const seq = skipThrough === undefined ? undefined : frameSeq(frame);
        if (seq !== undefined) {
          if (seq <= skipThrough!) continue;
          skipThrough = undefined;
        }
        await s.write(frame);
      }
      logger.info('event stream ended', { reason: client.closedBecause });
    });
  });

  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404));
  app.onError((error, c) => {
    logger.error('unhandled error', { error: error.message, stack: error.stack, path: c.req.path });
    return c.json({ error: 'internal error' }, 500);
  });
  return app;
}
