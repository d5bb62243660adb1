import type { Env, Hono, MiddlewareHandler } from 'hono';
import { methodNotAllowed } from 'hono/method-not-allowed';
import type { Logger } from '../lib/logger';

/**
 * What every response of a replica gets (the service's and the activity service's alike): the
 * `X-Instance-Id` header, `Connection: close` while draining, and one JSON log line.
 */
export function instanceAndRequestLog(deps: { serviceId: string; logger: Logger; isDraining: () => boolean }): MiddlewareHandler {
  const { logger } = deps;
  return async (c, next) => {
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
  };
}

/** A 405 in JSON naming the allowed methods (and the Allow header), for a path the app has with other methods. */
export function jsonMethodNotAllowed<E extends Env>(app: Hono<E>): MiddlewareHandler {
  return methodNotAllowed({
    app,
    onMethodNotAllowed: (c, methods) =>
      c.json({ error: `method ${c.req.method} is not allowed on ${c.req.path}; allowed: ${methods.join(', ')}` }, 405, {
        Allow: methods.join(', '),
      }),
  });
}
