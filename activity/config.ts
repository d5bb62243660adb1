import type { NetworkInterfaceInfo } from 'node:os';
import { envValue, rejectConfig } from '../lib/config-error';
import { parseNatsService } from '../lib/broker';
import { DEFAULT_ACTIVITY_SERVICE } from '../lib/user-events';
import { parseConfig, type ServiceConfig } from '../service/config';

/** The activity service's configuration: the service's own variables (service/config.ts) and its own. */
export interface ActivityConfig extends ServiceConfig {
  /** NATS_SERVICE: the broker's name in Consul. */
  natsService: string;
  /** ACTIVITY_KEEP: how many recent events are kept and served. */
  keep: number;
  /** ROUTES as Consul tags (`urlprefix-...`): the paths the gateway sends here. */
  routeTags: string[];
}

export const DEFAULT_ROUTES = '/api/activity';
export const DEFAULT_KEEP = 100;
export const MAX_KEEP = 10_000;

function parseKeep(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_KEEP;
  const keep = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  return keep >= 1 && keep <= MAX_KEEP ? keep : rejectConfig('ACTIVITY_KEEP', raw, `a whole number from 1 to ${MAX_KEEP}`);
}

// A route's path (ISSUE12 contract, lib/routes.ts on the gateway branch): segments of unreserved URL
// characters, no `.` or `..` segment, no trailing slash except `/` itself, at most 128 characters, and not
// the gateway's own paths.
const ROUTE_PATH = /^(?:\/|(?:\/[A-Za-z0-9._~-]+)+)$/;
const RESERVED = /^\/(?:_balancer|_gateway)(?:\/|$)/;

/**
 * ROUTES (`/api/activity`, `=/exact`, comma-separated) as `urlprefix-` tags. Unset means the default;
 * set and empty means no route. Kept minimal here: once the gateway branch is merged, its parseRoutesEnv
 * (lib/routes.ts) replaces this.
 */
export function parseRouteTags(raw: string | undefined): string[] {
  if (raw === undefined) raw = DEFAULT_ROUTES;
  const allowed = 'comma-separated paths such as /api/activity (prefix) or =/ (exact), made of letters, digits and . _ ~ - between slashes';
  return raw
    .split(',')
    .map((route) => route.trim())
    .filter((route) => route !== '')
    .map((route) => {
      const path = route.startsWith('=') ? route.slice(1) : route;
      const bad =
        !ROUTE_PATH.test(path) || path.length > 128 || path.split('/').some((s) => s === '.' || s === '..') || RESERVED.test(path);
      return bad ? rejectConfig('ROUTES', raw, allowed) : `urlprefix-${route}`;
    });
}

/** Reads the activity service's environment once, at start; throws ConfigError naming the first bad variable. */
export function parseActivityConfig(
  env: NodeJS.ProcessEnv,
  facts: { hostname: string; interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> },
): ActivityConfig {
  // The service's rules for the shared variables, with this service's defaults.
  const own: NodeJS.ProcessEnv = { ...env, SERVICE_NAME: envValue(env, 'SERVICE_NAME') ?? DEFAULT_ACTIVITY_SERVICE };
  if (env.ROUTES === undefined) own.ROUTES = DEFAULT_ROUTES;
  return {
    ...parseConfig(own, facts),
    natsService: parseNatsService(env),
    keep: parseKeep(envValue(env, 'ACTIVITY_KEEP')),
    routeTags: parseRouteTags(own.ROUTES),
  };
}

/**
 * The replica's durable consumer, named from its SERVICE_ID (a restarted replica resumes where it left
 * off): NATS names allow no `.`, `*`, `>`, slashes or spaces, so anything but letters, digits, `_` and `-`
 * becomes `_`.
 */
export function durableName(serviceId: string): string {
  return serviceId.replace(/[^A-Za-z0-9_-]/g, '_');
}
