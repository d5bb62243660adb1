import type { HttpBindings } from '@hono/node-server';
import { Hono } from 'hono';
import { stream } from 'hono/streaming';
import { validator } from 'hono/validator';
import type { Logger } from '../lib/logger';
import type { UserEvent } from '../lib/user-events';
import { instanceAndRequestLog, jsonMethodNotAllowed } from '../service/request-log';
import type { ActivityFeed } from './feed';
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

/** One event as an SSE message: its id (Last-Event-ID on reconnect) and its JSON. */
export function eventMessage(event: UserEvent): string {
  return sseMessage(event.id, JSON.stringify(event));
}

/** `limit` of GET /api/activity: once at most, a whole number from 1 to the events kept. */
export function parseLimit(values: string[], keep: number): { ok: true; limit: number } | { ok: false; error: string } {
  const allowed = `a whole number from 1 to ${keep} (default ${Math.min(DEFAULT_LIMIT, keep)})`;
  if (values.length > 1) return { ok: false, error: `query parameter limit may be given once: ${allowed}` };
  if (values.length === 0) return { ok: true, limit: Math.min(DEFAULT_LIMIT, keep) };
  const limit = /^\d{1,6}$/.test(values[0]) ? Number(values[0]) : NaN;
  return limit >= 1 && limit <= keep ? { ok: true, limit } : { ok: false, error: `query parameter limit must be ${allowed}` };
}

/** The events after the one a reconnecting client saw last, oldest first; none when it is no longer kept. */
export function eventsAfter(recentNewestFirst: UserEvent[], lastEventId: string | undefined): UserEvent[] {
  if (lastEventId === undefined) return [];
  const at = recentNewestFirst.findIndex((e) => e.id === lastEventId);
  return at <= 0 ? [] : recentNewestFirst.slice(0, at).reverse();
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
  // event that arrives once the client has the first bytes is on its stream.
  app.get('/api/activity/stream', (c) => {
    const client = hub.connect();
    if (!client) return c.json({ error: 'too many event streams', max: hub.max }, 503, { 'Retry-After': String(STREAMS_FULL_RETRY_S) });
    const missed = eventsAfter(feed.recent(), c.req.header('Last-Event-ID'));
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
      for (const event of missed) await s.write(eventMessage(event));
      for (;;) {
        const frame = await client.next();
        if (frame === undefined) break;
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
