import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { validator } from 'hono/validator';
import type { Logger } from '../lib/logger';
import { OUTBOX_FULL_RETRY_AFTER_S, OutboxFullError, type OutboxStatus } from './outbox';
import { parsePageQuery } from './page-query';
import { instanceAndRequestLog, jsonMethodNotAllowed } from '../replica/request-log';
import { USER_ID, validateUserInput } from './user-input';
import { StoreConflictError, StoreUnavailableError, type UsersStore } from './users-store';

export const MAX_BODY_BYTES = 64 * 1024;

export interface AppDeps {
  serviceName: string;
  serviceId: string;
  hostname: string;
  version: string;
  users: UsersStore;
  logger: Logger;
  /** True once the process is shutting down: health turns 503 so Consul and balancers stop sending traffic. */
  isDraining: () => boolean;
  /** How full the event outbox is (outbox-relay.ts), shown by /health; absent: no relay. */
  outboxStatus?: () => OutboxStatus;
}

// The body of a refused upload is left unread; closing the connection keeps its rest from being taken for a next request.
const CLOSE = { Connection: 'close' };

/** The client went away while its request body was being read: nobody is left to answer, and it is not our fault. */
function isClientAbort(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || error.message === 'aborted' || error.name === 'AbortError';
}

/** The 404 for an id: only an id the service could have made is echoed, never a client's arbitrary text. */
const noUser = (c: Context, id: string) =>
  c.json({ error: USER_ID.test(id) ? `no user with id ${id}` : 'no user with this id; ids are the lowercase UUIDs this API returns' }, 404);

/** `:id` of /api/users/:id; an id randomUUID cannot have made names no user, so it is a 404 like any other. */
const userId = validator('param', (params, c) => (USER_ID.test(params.id) ? { id: params.id } : noUser(c, params.id)));

/** `limit` and `after` of GET /api/users, checked (page-query.ts). */
const pageQuery = validator('query', (query, c) => {
  const parsed = parsePageQuery(query);
  return parsed.ok ? parsed.value : c.json({ error: parsed.error, param: parsed.param }, 400);
});

/**
 * The body of POST and PUT /api/users, checked. The validator parses only a JSON content type and hands
 * anything else on unparsed, so the 415 is ours; a body that does not parse is its 400 (see onError).
 */
const userBody = validator('json', (body, c) => {
  const type = (c.req.header('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') {
    return c.json({ error: `Content-Type must be application/json; got ${type || 'none'}` }, 415, CLOSE);
  }
  const input = validateUserInput(body);
  return input.ok ? input.value : c.json({ error: input.error, field: input.field }, 400);
});

/** The HTTP API of one replica, as a value: no ports, timers or signals here (those live in main.ts). */
export function createApp(deps: AppDeps): Hono {
  const { users, logger } = deps;
  const app = new Hono();

  app.use(instanceAndRequestLog(deps));

  app.use(jsonMethodNotAllowed(app));

  app.use(
    '/api/*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) => c.json({ error: `request body is larger than the limit of ${MAX_BODY_BYTES} bytes` }, 413, CLOSE),
    }),
  );

  app.get('/', (c) => c.json({ service: deps.serviceName, instance: deps.serviceId, hostname: deps.hostname, version: deps.version }));

  // The outbox's fill is a signal, not a failure: a replica whose outbox is full still serves reads, so
  // /health stays 200 (Consul's check, and the balancer, would drop a replica answering anything else).
  app.get('/health', (c) => {
    const outbox = deps.outboxStatus ? { outbox: deps.outboxStatus() } : {};
    return deps.isDraining()
      ? c.json({ status: 'draining', instance: deps.serviceId, ...outbox }, 503)
      : c.json({ status: 'ok', instance: deps.serviceId, ...outbox });
  });

  // One page per request (users-store.ts); `next` and the Link header name the following page.
  app.get('/api/users', pageQuery, async (c) => {
    const query = c.req.valid('query');
    const page = await users.page(query);
    const link: Record<string, string> =
      page.next === null ? {} : { Link: `</api/users?limit=${query.limit}&after=${page.next}>; rel="next"` };
    return c.json(page, 200, link);
  });

  app.post('/api/users', userBody, async (c) => {
    const user = await users.create(c.req.valid('json'));
    return c.json(user, 201, { Location: `/api/users/${user.id}` });
  });

  app.get('/api/users/:id', userId, async (c) => {
    const { id } = c.req.valid('param');
    const user = await users.get(id);
    return user ? c.json(user) : noUser(c, id);
  });

  // The body is checked before the id, so a refused body is always read (or the connection closed).
  app.put('/api/users/:id', userBody, userId, async (c) => {
    const { id } = c.req.valid('param');
    const user = await users.update(id, c.req.valid('json'));
    return user ? c.json(user) : noUser(c, id);
  });

  app.delete('/api/users/:id', userId, async (c) => {
    const { id } = c.req.valid('param');
    return (await users.remove(id)) ? c.body(null, 204) : noUser(c, id);
  });

  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404));

  app.onError((error, c) => {
    if (error instanceof StoreUnavailableError) {
      logger.error('users store unavailable', { error: error.message, path: c.req.path });
      return c.json({ error: 'the users store (Consul KV) is unavailable; try again shortly' }, 503, { 'Retry-After': '1' });
    }
    if (error instanceof StoreConflictError) return c.json({ error: error.message }, 409);
    if (error instanceof OutboxFullError) {
      return c.json({ error: error.message }, 503, { 'Retry-After': String(OUTBOX_FULL_RETRY_AFTER_S) });
    }
    // The json validator's one error: a body sent as JSON that does not parse.
    if (error instanceof HTTPException && error.status === 400) return c.json({ error: 'body is not valid JSON' }, 400);
    if (isClientAbort(error)) return c.json({ error: 'the client closed the connection before sending the whole request' }, 400, CLOSE);
    logger.error('unhandled error', { error: error.message, stack: error.stack, path: c.req.path });
    return c.json({ error: 'internal error' }, 500);
  });

  return app;
}
