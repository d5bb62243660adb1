// The gateway's routing convention, in one place: a service asks for public paths with Consul tags on its
// registration, in the style of Fabio's `urlprefix-` tags (https://fabiolb.net/cfg/: `urlprefix-/path`).
// The service side turns its ROUTES setting into tags here, the balancer reads the tags back here, and
// every path that reaches nginx's config has passed routePathProblem.
import { rejectConfig } from './config-error';

/** What every route tag starts with. */
export const ROUTE_TAG_PREFIX = 'urlprefix-';

/** One public path of a service: `exact` matches that path only; otherwise it and every path under it. */
export interface Route {
  path: string;
  exact: boolean;
}

/** Longest path a route may have: enough for any API prefix, short enough to keep configs and logs readable. */
export const MAX_ROUTE_PATH = 128;

/** Paths the gateway keeps for itself (its status, evidence page, future endpoints), with all below them. */
export const RESERVED_PATHS: readonly string[] = ['/_balancer', '/_gateway'];

/** What a route may be, in words, for error messages and the README. */
export const ROUTE_ALLOWED =
  `a path starting with "/" made of segments of letters, digits, ".", "_", "~" and "-" (no empty, "." or ".." segment, ` +
  `no trailing "/" except "/" itself, at most ${MAX_ROUTE_PATH} characters, not under ${RESERVED_PATHS.join(' or ')}), ` +
  `prefixed with "=" for an exact match`;

const SEGMENT_CHAR = /^[A-Za-z0-9._~-]$/;

/** Whether `path` is one of the gateway's own paths or under one. */
export function isReservedPath(path: string): boolean {
  return RESERVED_PATHS.some((reserved) => path === reserved || path.startsWith(`${reserved}/`));
}

/**
 * Why `path` may not be routed, or null when it may. The rules keep every character with a meaning to
 * nginx (`;`, `{`, `}`, `$`, quotes, spaces, `#`), percent encodings and path tricks (`..`, `//`) out of
 * the config, so a hostile registration can never change what nginx does beyond its own paths.
 */
export function routePathProblem(path: string): string | null {
  if (path === '') return 'is empty';
  if (path.length > MAX_ROUTE_PATH) return `is longer than ${MAX_ROUTE_PATH} characters`;
  if (!path.startsWith('/')) return 'does not start with "/"';
  if (path === '/') return null;
  const bad = [...path].find((c) => c !== '/' && !SEGMENT_CHAR.test(c));
  if (bad !== undefined) return `contains ${JSON.stringify(bad)}; a segment may hold letters, digits, ".", "_", "~" and "-"`;
  if (path.endsWith('/')) return 'ends with "/" (only the path "/" itself may)';
  const segments = path.slice(1).split('/');
  if (segments.includes('')) return 'has an empty segment ("//")';
  if (segments.some((s) => s === '.' || s === '..')) return 'has a "." or ".." segment';
  if (isReservedPath(path)) return `is reserved for the gateway (${RESERVED_PATHS.join(', ')} and everything under them)`;
  return null;
}

/** The route as text: `=/` for an exact route, `/api/users` for a prefix route (the tag without its prefix). */
export function routeText(route: Route): string {
  return route.exact ? `=${route.path}` : route.path;
}

/** Parses route text (`=/`, `/api/users`); the problem when it is not an allowed route. */
export function parseRouteText(text: string): Route | { error: string } {
  const exact = text.startsWith('=');
  const path = exact ? text.slice(1) : text;
  const problem = routePathProblem(path);
  return problem === null ? { path, exact } : { error: `route ${JSON.stringify(text)} ${problem}` };
}

/** The Consul tag that asks for `route`. */
export function routeTag(route: Route): string {
  return ROUTE_TAG_PREFIX + routeText(route);
}

/** A route tag's route, or why it is not allowed; null for a tag that is not a route tag at all. */
export function parseRouteTag(tag: string): Route | { error: string } | null {
  if (!tag.startsWith(ROUTE_TAG_PREFIX)) return null;
  return parseRouteText(tag.slice(ROUTE_TAG_PREFIX.length));
}

/**
 * A ROUTES setting (`=/,/api/users`): comma-separated route texts, blanks around them ignored, duplicates
 * kept once; an empty text means no route. Throws an Error naming the first bad route; the caller turns
 * it into its ConfigError.
 */
export function parseRoutesEnv(text: string): Route[] {
  const routes: Route[] = [];
  for (const part of text.split(',').map((p) => p.trim())) {
    if (part === '') continue;
    const parsed = parseRouteText(part);
    if ('error' in parsed) throw new Error(parsed.error);
    if (!routes.some((r) => r.path === parsed.path && r.exact === parsed.exact)) routes.push(parsed);
  }
  return routes;
}

/**
 * A service's ROUTES variable: unset means `fallback` (each service has its own), set but empty or blank
 * means no route at all. Throws a ConfigError naming ROUTES, the value and what is allowed.
 */
export function routesSetting(env: NodeJS.ProcessEnv, fallback: string): Route[] {
  const raw = env.ROUTES ?? fallback;
  try {
    return parseRoutesEnv(raw);
  } catch (error) {
    return rejectConfig('ROUTES', raw, `a comma-separated list of routes, each ${ROUTE_ALLOWED} (${(error as Error).message})`);
  }
}
