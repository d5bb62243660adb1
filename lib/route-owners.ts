// Which service may serve which public paths, as the operator grants them (the balancer's ROUTE_OWNERS),
// and the rule that gives a route its owner. A replica's own Consul token may register instances of its
// service with any tags (lib/consul-acl.ts), so tags only say what a service asks for; with grants set,
// the gateway serves a route only for the service the operator granted it to (balancer/README.md, "Routes").
import { parseRoutesEnv, routeText, type Route } from './routes';
import { isServiceName, SERVICE_NAME_ALLOWED } from './service-name';

/** Service name → the routes the operator grants it: each one, and everything under a prefix one. */
export type RouteOwners = ReadonlyMap<string, readonly Route[]>;

/** What ROUTE_OWNERS may be, in words, for error messages. */
export const ROUTE_OWNERS_ALLOWED =
  'entries SERVICE:ROUTES separated by ";" (such as hello:=/,/api/users;activity:/api/activity), each SERVICE ' +
  `${SERVICE_NAME_ALLOWED}, named once, and ROUTES comma-separated routes as in a service's ROUTES, each route granted to one service only`;

/** Parses ROUTE_OWNERS text; throws an Error naming the first bad entry (the caller makes it a ConfigError). */
export function parseRouteOwners(text: string): RouteOwners {
  const owners = new Map<string, Route[]>();
  const grantedTo = new Map<string, string>();
  for (const entry of text.split(';').map((e) => e.trim())) {
    if (entry === '') continue;
    const colon = entry.indexOf(':');
    const service = colon < 0 ? entry : entry.slice(0, colon).trim();
    if (colon < 0 || !isServiceName(service)) throw new Error(`entry ${JSON.stringify(entry)} does not start with a service name and ":"`);
    if (owners.has(service)) throw new Error(`service ${service} is named twice`);
    const routes = parseRoutesEnv(entry.slice(colon + 1));
    for (const route of routes) {
      const other = grantedTo.get(routeText(route));
      if (other !== undefined) throw new Error(`route ${routeText(route)} is granted to both ${other} and ${service}`);
      grantedTo.set(routeText(route), service);
    }
    owners.set(service, routes);
  }
  if (owners.size === 0) throw new Error('no service is granted a route');
  return owners;
}

/** ROUTE_OWNERS text for grants given as each service's ROUTES text (what a deploy passes the balancer); checked. */
export function routeOwnersText(grants: Readonly<Record<string, string>>): string {
  const text = Object.entries(grants)
    .map(([service, routes]) => `${service}:${routes}`)
    .join(';');
  const owners = parseRouteOwners(text);
  return [...owners].map(([service, routes]) => `${service}:${routes.map(routeText).join(',')}`).join(';');
}

/** Whether `grant` covers `route`: an exact grant only that exact route, a prefix grant its path and everything under it. */
function covers(grant: Route, route: Route): boolean {
  if (grant.exact) return route.exact && route.path === grant.path;
  return grant.path === '/' || route.path === grant.path || route.path.startsWith(`${grant.path}/`);
}

/** How specific a grant is: a longer path, and on one path an exact grant over a prefix one (as nginx picks). */
const specificity = (grant: Route) => grant.path.length * 2 + Number(grant.exact);

/** The service whose grant covers `route` most specifically, and that grant; undefined when no grant covers it. */
export function ownerOf(owners: RouteOwners, route: Route): { service: string; grant: Route } | undefined {
  let best: { service: string; grant: Route } | undefined;
  for (const [service, grants] of owners)
    for (const grant of grants)
      if (covers(grant, route) && (best === undefined || specificity(grant) > specificity(best.grant))) best = { service, grant };
  return best;
}

/**
 * Why `service` may not serve `route` under these grants, or null when it may: the route must lie within
 * one of its grants, and not within a more specific grant of another service (equal to it, under it, or
 * exact inside it).
 */
export function ownershipProblem(owners: RouteOwners, service: string, route: Route): string | null {
  const owner = ownerOf(owners, route);
  if (owner?.service === service) return null;
  if (owner !== undefined) return `lies within ${routeText(owner.grant)}, which the operator grants to ${owner.service} (ROUTE_OWNERS)`;
  const own = owners.get(service);
  return own === undefined
    ? `the operator grants ${service} no path (ROUTE_OWNERS)`
    : `lies outside what the operator grants ${service} (ROUTE_OWNERS: ${own.map(routeText).join(',')})`;
}
