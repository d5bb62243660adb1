import { PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, type PageQuery } from './users-store';
import { USER_ID } from './user-input';

export type ParsedPageQuery = { ok: true; value: PageQuery } | { ok: false; param: string; error: string };

/**
 * Checks `limit` and `after` of GET /api/users (each given at most once); other parameters are left
 * alone. Errors name the parameter and what is allowed, never echoing the client's text.
 */
export function parsePageQuery(query: Record<string, string | string[] | undefined>): ParsedPageQuery {
  // Hono's query validator hands a parameter given once as a string, one given more often as an array.
  const all = (name: string): string[] => [query[name] ?? []].flat();
  const limits = all('limit');
  const afters = all('after');
  const allowedLimit = `a whole number from 1 to ${PAGE_LIMIT_MAX} (default ${PAGE_LIMIT_DEFAULT})`;
  if (limits.length > 1) return { ok: false, param: 'limit', error: `query parameter limit may be given once: ${allowedLimit}` };
  if (afters.length > 1) return { ok: false, param: 'after', error: 'query parameter after may be given once' };
  let limit = PAGE_LIMIT_DEFAULT;
  if (limits.length === 1) {
    limit = /^\d{1,3}$/.test(limits[0]) ? Number(limits[0]) : NaN;
    if (!(limit >= 1 && limit <= PAGE_LIMIT_MAX))
      return { ok: false, param: 'limit', error: `query parameter limit must be ${allowedLimit}` };
  }
  const after = afters[0];
  if (after !== undefined && !USER_ID.test(after)) {
    return { ok: false, param: 'after', error: 'query parameter after must be a user id (the "next" of the previous page)' };
  }
  return { ok: true, value: after === undefined ? { limit } : { limit, after } };
}
