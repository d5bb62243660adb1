// The gateway's routing rules as pure functions of what Consul said: which services to follow (the
// catalog), which instances pass (a health answer), which service gets which route (conflicts: the older
// service wins), and the empty-set grace. watch.ts fetches and calls these; render.ts turns the table
// into nginx text. See balancer/README.md, "Routes: the tag convention".
import { ownershipProblem, type RouteOwners } from '../lib/route-owners';
import { parseRouteTag, ROUTE_TAG_PREFIX, routeText, type Route } from '../lib/routes';
import { isServiceName, SERVICE_NAME_ALLOWED } from '../lib/service-name';
import type { HealthEntry } from './consul-entries';

/** One service as nginx gets it: its routes (already free of conflicts) and its upstreams (maybe none: a 503). */
export interface GatewayService {
  name: string;
  /** Sorted by path, an exact route before the prefix route on the same path. */
  routes: Route[];
  /** `address:port`, sorted (consul-entries.ts selectUpstreams). */
  upstreams: string[];
}

/** Everything nginx's config depends on from Consul: the routed services, sorted by name. */
export interface GatewayTable {
  services: GatewayService[];
}

/** A route left out of the table, and why: a hostile or broken tag, a reserved path, a lost conflict. */
export interface DroppedRoute {
  service: string;
  /** The route as its tag wrote it, without the `urlprefix-` prefix. */
  route: string;
  reason: string;
}

export const EMPTY_TABLE: GatewayTable = { services: [] };

/** A canonical text of a table: equal tables, equal keys (the follower and the applier compare with it). */
export const tableKey = (table: GatewayTable): string => JSON.stringify(table.services);

/**
 * From `/v1/catalog/services` (service name → the union of its instances' tags): the services that ask for
 * routes and may be followed. A name that is not a valid service name never reaches nginx's config (it
 * names an upstream block there): its routes are dropped and reported.
 */
export function routedServices(catalog: Readonly<Record<string, readonly string[] | null>>): { follow: string[]; dropped: DroppedRoute[] } {
  const follow: string[] = [];
  const dropped: DroppedRoute[] = [];
  for (const [name, tags] of Object.entries(catalog)) {
    const routeTags = (tags ?? []).filter((tag) => tag.startsWith(ROUTE_TAG_PREFIX));
    if (routeTags.length === 0) continue;
    if (isServiceName(name)) follow.push(name);
    else
      for (const tag of routeTags)
        dropped.push({
          service: name,
          route: tag.slice(ROUTE_TAG_PREFIX.length),
          reason: `service name ${JSON.stringify(name)} is not routed: a routed service's name must be ${SERVICE_NAME_ALLOWED}`,
        });
  }
  return { follow: follow.sort(), dropped: sortDropped(dropped) };
}

/** A routed service as one health answer shows it: what its registered instances claim. */
export interface ServiceClaim {
  name: string;
  /** The union of the tags of its registered instances (an instance mid-deploy may still carry the old ones). */
  tags: string[];
  /** The lowest CreateIndex among its registered instances: the age of the service, for conflicts. */
  createIndex: number;
  /** The upstreams of its passing instances. */
  upstreams: string[];
}

/** What a health answer's registered instances claim; null when no instance is registered (its routes are gone). */
export function claimOf(name: string, entries: readonly HealthEntry[], upstreams: readonly string[]): ServiceClaim | null {
  if (entries.length === 0) return null;
  const tags = new Set<string>();
  let createIndex = Number.POSITIVE_INFINITY;
  for (const entry of entries) {
    for (const tag of entry.Service?.Tags ?? []) tags.add(tag);
    const index = entry.Service?.CreateIndex;
    if (typeof index === 'number' && Number.isFinite(index)) createIndex = Math.min(createIndex, index);
  }
  return { name, tags: [...tags].sort(), createIndex, upstreams: [...upstreams] };
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function sortDropped(dropped: DroppedRoute[]): DroppedRoute[] {
  return dropped.sort((a, b) => compare(a.service, b.service) || compare(a.route, b.route) || compare(a.reason, b.reason));
}

/**
 * Who gets which route. Every route tag is checked (lib/routes.ts); a bad one is dropped with its reason.
 * With the operator's grants (`owners`, ROUTE_OWNERS), a route outside what the service is granted, or
 * within another service's more specific grant, is dropped too (lib/route-owners.ts). Two services
 * claiming one route (the same path and the same kind, exact or prefix): the older service keeps it
 * (lowest CreateIndex; a tie goes to the lexically smaller name), so a newcomer can never take a path
 * from a service that already serves it. An exact route and a prefix route on one path do not
 * conflict: the exact one gets that path, the prefix one everything under it (render.ts).
 */
export function routeTable(claims: readonly ServiceClaim[], owners?: RouteOwners): { table: GatewayTable; droppedRoutes: DroppedRoute[] } {
  const dropped: DroppedRoute[] = [];
  const claimants = new Map<string, { route: Route; claims: ServiceClaim[] }>();
  for (const claim of claims) {
    for (const tag of claim.tags) {
      const parsed = parseRouteTag(tag);
      if (parsed === null) continue;
      if ('error' in parsed) {
        dropped.push({ service: claim.name, route: tag.slice(ROUTE_TAG_PREFIX.length), reason: parsed.error });
        continue;
      }
      const notOwned = owners && ownershipProblem(owners, claim.name, parsed);
      if (notOwned) {
        dropped.push({ service: claim.name, route: routeText(parsed), reason: notOwned });
        continue;
      }
      const key = routeText(parsed);
      const entry = claimants.get(key) ?? { route: parsed, claims: [] };
      if (!entry.claims.includes(claim)) entry.claims.push(claim);
      claimants.set(key, entry);
    }
  }
  const won = new Map<string, Route[]>();
  for (const [key, { route, claims: rivals }] of claimants) {
    const [winner, ...losers] = [...rivals].sort((a, b) => a.createIndex - b.createIndex || compare(a.name, b.name));
    won.set(winner.name, [...(won.get(winner.name) ?? []), route]);
    for (const loser of losers)
      dropped.push({
        service: loser.name,
        route: key,
        reason: `claimed by the older service ${winner.name} (CreateIndex ${winner.createIndex}, this one ${loser.createIndex}); the older service keeps a route`,
      });
  }
  const services = claims
    .filter((claim) => won.has(claim.name))
    .map((claim) => ({
      name: claim.name,
      routes: won.get(claim.name)!.sort((a, b) => compare(a.path, b.path) || Number(b.exact) - Number(a.exact)),
      upstreams: [...claim.upstreams],
    }))
    .sort((a, b) => compare(a.name, b.name));
  return { table: { services }, droppedRoutes: sortDropped(dropped) };
}

/**
 * The empty-set grace: right after a Consul outage or index reset, replicas may not have registered
 * again yet, so a service that nginx served with upstreams keeps them while Consul shows it with none,
 * or not at all, instead of its clients getting 503s or 404s. Routes another service now holds are not
 * kept. Returns the table to apply and the services held.
 */
export function holdThroughGrace(current: GatewayTable, wanted: GatewayTable): { table: GatewayTable; held: string[] } {
  const byName = new Map(wanted.services.map((s) => [s.name, s]));
  const held: GatewayService[] = [];
  for (const service of current.services) {
    const now = byName.get(service.name);
    if (service.upstreams.length === 0 || (now !== undefined && now.upstreams.length > 0)) continue;
    const taken = new Set(wanted.services.filter((s) => s.name !== service.name).flatMap((s) => s.routes.map(routeText)));
    const routes = service.routes.filter((r) => !taken.has(routeText(r)));
    if (routes.length > 0) held.push({ ...service, routes });
  }
  if (held.length === 0) return { table: wanted, held: [] };
  const heldNames = new Set(held.map((s) => s.name));
  const services = [...wanted.services.filter((s) => !heldNames.has(s.name)), ...held].sort((a, b) => compare(a.name, b.name));
  return { table: { services }, held: held.map((s) => s.name) };
}

/** The parts of one check in `/v1/health/state/any` that say whose health changed. */
export interface HealthCheck {
  Node?: string;
  CheckID?: string;
  Status?: string;
  /** Empty for a node's own checks (serfHealth), which count for every instance on the node. */
  ServiceID?: string;
  ServiceName?: string;
  ServiceTags?: string[] | null;
  ModifyIndex?: number;
}

/** What one answer of `/v1/health/state/any` says: its index and, per service, a digest of every check that decides its health. */
export interface HealthSnapshot {
  index: number;
  digests: ReadonlyMap<string, string>;
}

/**
 * Per service name, a text that changes whenever one of its checks (or of its nodes' own checks) appears,
 * goes, changes status or is written again: two equal digests mean nothing about its health changed.
 */
export function healthSnapshot(index: number, checks: readonly HealthCheck[]): HealthSnapshot {
  const nodeChecks = new Map<string, string[]>();
  const serviceChecks = new Map<string, { nodes: Set<string>; parts: string[] }>();
  for (const check of checks) {
    const node = check.Node ?? '';
    const part = JSON.stringify([
      node,
      check.CheckID ?? '',
      check.ServiceID ?? '',
      check.Status ?? '',
      check.ModifyIndex ?? 0,
      check.ServiceTags ?? [],
    ]);
    if (!check.ServiceName) {
      nodeChecks.set(node, [...(nodeChecks.get(node) ?? []), part]);
      continue;
    }
    const service = serviceChecks.get(check.ServiceName) ?? { nodes: new Set<string>(), parts: [] };
    service.nodes.add(node);
    service.parts.push(part);
    serviceChecks.set(check.ServiceName, service);
  }
  const digests = new Map<string, string>();
  for (const [name, { nodes, parts }] of serviceChecks) {
    const nodeParts = [...nodes].sort().flatMap((node) => nodeChecks.get(node) ?? []);
    digests.set(name, [...parts.sort(), ...nodeParts.sort()].join('\n'));
  }
  return { index, digests };
}

/**
 * Which services to read again after a health-state answer: those whose digest changed (or that appeared
 * or went). An index that moved with no digest changed is a change the checks do not show (an instance
 * registered again with another address, and the same check): `unattributed`, so every followed service is
 * read again. So is the first answer: a service read just before it may have changed since.
 */
export function healthChanges(previous: HealthSnapshot | undefined, next: HealthSnapshot): { changed: string[]; unattributed: boolean } {
  if (previous === undefined) return { changed: [], unattributed: true };
  const changed = [...new Set([...previous.digests.keys(), ...next.digests.keys()])].filter(
    (name) => previous.digests.get(name) !== next.digests.get(name),
  );
  return { changed: changed.sort(), unattributed: changed.length === 0 && next.index > previous.index };
}

/**
 * Whether `next` differs from `previous` only in the addresses of upstreams: the same services with the same
 * routes, each keeping upstreams or none (which renders an upstream block, or a 503 in its place). Such a
 * config differs only in `server` lines of IP literals the selection already checked, so `nginx -t`
 * can be skipped (apply.ts); nginx's own reload still refuses anything it cannot load.
 */
export function onlyUpstreamsChanged(previous: GatewayTable, next: GatewayTable): boolean {
  if (previous.services.length !== next.services.length) return false;
  return previous.services.every((was, i) => {
    const now = next.services[i];
    return (
      was.name === now.name &&
      JSON.stringify(was.routes) === JSON.stringify(now.routes) &&
      (was.upstreams.length === 0) === (now.upstreams.length === 0)
    );
  });
}
