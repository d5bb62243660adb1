import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { methodNotAllowed } from 'hono/method-not-allowed';
import type { Logger } from '../lib/logger';
import { validateUserInput } from './user-input';
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
}

// The body of a refused upload is left unread; closing the connection keeps its rest from being taken for a next request.
const CLOSE = { Connection: 'close' };

// Ids are made by randomUUID; anything else cannot name a user (and never reaches a KV key).
const USER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The client went away while its request body was being read: nobody is left to answer, and it is not our fault. */
function isClientAbort(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || error.message === 'aborted' || error.name === 'AbortError';
}

async function readJsonBody(c: Context): Promise<{ ok: true; body: unknown } | { ok: false; res: Response }> {
  const type = (c.req.header('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') {
    const got = type || 'none';
    return { ok: false, res: c.json({ error: `Content-Type must be application/json; got ${got}` }, 415, CLOSE) };
  }
  try {
    return { ok: true, body: await c.req.json() };
  } catch {
    return { ok: false, res: c.json({ error: 'body is not valid JSON' }, 400) };
  }
}

/** The HTTP API of one replica, as a value: no ports, timers or signals here (those live in main.ts). */
export function createApp(deps: AppDeps): Hono {
  const { users, logger } = deps;
  const app = new Hono();

  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    c.res.headers.set('X-Instance-Id', deps.serviceId);
    // While draining, keep-alive connections would hold the exit; ask clients to reconnect elsewhere.
    if (deps.isDraining()) c.res.headers.set('Connection', 'close');
    const status = c.res.status;
    const durationMs = Math.round((performance.now() - started) * 100) / 100;
    const fields = { method: c.req.method, path: c.req.path, status, durationMs };
    if (status >= 500 && !(c.req.path === '/health' && deps.isDraining())) logger.warn('request', fields);
    else logger.info('request', fields);
  });

  app.use(
    methodNotAllowed({
      app,
      onMethodNotAllowed: (c, methods) =>
        c.json({ error: `method ${c.req.method} is not allowed on ${c.req.path}; allowed: ${methods.join(', ')}` }, 405, {
          Allow: methods.join(', '),
        }),
    }),
  );

  app.use(
    '/api/*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) => c.json({ error: `request body is larger than the limit of ${MAX_BODY_BYTES} bytes` }, 413, CLOSE),
    }),
  );

  app.get('/', (c) =>
    c.json({ service: deps.serviceName, instance: deps.serviceId, hostname: deps.hostname, version: deps.version }),
  );

  app.get('/health', (c) =>
    deps.isDraining()
      ? c.json({ status: 'draining', instance: deps.serviceId }, 503)
      : c.json({ status: 'ok', instance: deps.serviceId }),
  );

  app.get('/api/users', async (c) => c.json({ users: await users.list() }));

  app.post('/api/users', async (c) => {
    const parsed = await readJsonBody(c);
    if (!parsed.ok) return parsed.res;
    const input = validateUserInput(parsed.body);
    if (!input.ok) return c.json({ error: input.error, field: input.field }, 400);
    const user = await users.create(input.value);
    return c.json(user, 201, { Location: `/api/users/${user.id}` });
  });

  app.get('/api/users/:id', async (c) => {
    const id = c.req.param('id');
    const user = USER_ID.test(id) ? await users.get(id) : undefined;
    return user ? c.json(user) : c.json({ error: `no user with id ${id}` }, 404);
  });

  app.put('/api/users/:id', async (c) => {
    const id = c.req.param('id');
    const parsed = await readJsonBody(c);
    if (!parsed.ok) return parsed.res;
    const input = validateUserInput(parsed.body);
    if (!input.ok) return c.json({ error: input.error, field: input.field }, 400);
    const user = USER_ID.test(id) ? await users.update(id, input.value) : undefined;
    return user ? c.json(user) : c.json({ error: `no user with id ${id}` }, 404);
  });

  app.delete('/api/users/:id', async (c) => {
    const id = c.req.param('id');
    const removed = USER_ID.test(id) ? await users.remove(id) : false;
    return removed ? c.body(null, 204) : c.json({ error: `no user with id ${id}` }, 404);
  });

  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404));

  app.onError((error, c) => {
    if (error instanceof StoreUnavailableError) {
      logger.error('users store unavailable', { error: error.message, path: c.req.path });
      return c.json({ error: 'the users store (Consul KV) is unavailable; try again shortly' }, 503, { 'Retry-After': '1' });
    }
    if (error instanceof StoreConflictError) return c.json({ error: error.message }, 409);
    if (isClientAbort(error)) return c.json({ error: 'the client closed the connection before sending the whole request' }, 400, CLOSE);
    logger.error('unhandled error', { error: error.message, stack: error.stack, path: c.req.path });
    return c.json({ error: 'internal error' }, 500);
  });

  return app;
}
