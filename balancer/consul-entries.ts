// Consul's health entries as the balancer reads them, and the rules that turn them into upstreams: which
// instances count (a check of their own, a loadable address and port), host names resolved by the watcher,
// duplicates dropped, every drop with its reason. Pure functions; service-view.ts and evidence-page.ts call them,
// render.ts gets only their result (the routing table's upstreams).
import net from 'node:net';
import { hostPort } from '../lib/endpoints';

/** The parts of one `/v1/health/service/<name>` entry the balancer reads. */
export interface HealthEntry {
  Node?: { Node?: string; Address?: string } | null;
  Service?: {
    ID?: string;
    Service?: string;
    Address?: string;
    Port?: number;
    /** Route tags (`urlprefix-...`, lib/routes.ts) among them. */
    Tags?: string[] | null;
    /** Raft index of the registration: the older service wins a route conflict (routing.ts). */
    CreateIndex?: number;
  } | null;
  /** The node's checks (serfHealth) and the instance's own; only the latter say the instance answers. The evidence page shows their status. */
  Checks?: ReadonlyArray<{ CheckID?: string; ServiceID?: string; Status?: string }> | null;
}

export interface DroppedEntry {
  /** Service ID (or node name) so an operator can find the registration. */
  id: string;
  reason: string;
}

export interface UpstreamSelection {
  /** `address:port` (IPv6 in brackets), deduplicated and sorted so equal sets render equal text. */
  upstreams: string[];
  dropped: DroppedEntry[];
}

// Host names are resolved by the watcher, never by nginx: nginx resolves at load, and one name that does
// not resolve makes `nginx -t` refuse the whole config. The pattern also keeps nginx syntax out.
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** What resolving one host name gave: its addresses, or why it gave none. */
export type Resolution = { addresses: string[] } | { error: string };

/** Why nginx could not load `address` as an upstream IP literal, or null when it can. */
function ipLiteralProblem(address: string): string | null {
  if (net.isIP(address) === 0) return 'is not an IP literal';
  // nginx 1.22 parses no zone id ("invalid IPv6 address in upstream"), and a zone names an interface of one host.
  if (address.includes('%')) return 'carries an IPv6 zone id, which nginx cannot load as an upstream';
  return null;
}

interface Instance {
  id: string;
  /** An IP literal without a zone id, or a host name. */
  address: string;
  port: number;
}

/**
 * Whether Consul's `?passing` filter would keep the entry: every check it carries (the node's and the
 * instance's own) passes. The balancer asks for all instances, not only passing ones, to tell "registered,
 * none passing" (503 for the service's routes) from "not registered" (its routes are gone).
 */
export function isPassing(entry: HealthEntry): boolean {
  return (entry.Checks ?? []).every((check) => check.Status === 'passing');
}

/**
 * Whether Consul checks the instance itself. An instance registered without a check passes on its
 * node's serfHealth alone: anyone allowed to register could point traffic anywhere, unchecked.
 */
function hasOwnCheck(entry: HealthEntry): boolean {
  const id = entry.Service?.ID;
  return id !== undefined && id !== '' && (entry.Checks ?? []).some((check) => check.ServiceID === id);
}

/**
 * Consul's rule for an entry's address (the service address, or the node address when the service
 * address is empty), checked: entries without a health check of their own, with neither address, with
 * port 0, with a zone id, or with an address that is neither an IP literal nor a host name are dropped
 * with the reason.
 */
function checkEntries(entries: readonly HealthEntry[]): { instances: Instance[]; dropped: DroppedEntry[] } {
  const instances: Instance[] = [];
  const dropped: DroppedEntry[] = [];
  for (const entry of entries) {
    const id = entry.Service?.ID || entry.Node?.Node || '(unnamed)';
    const address = (entry.Service?.Address?.trim() || entry.Node?.Address?.trim() || '').replace(/^\[(.*)\]$/, '$1');
    const port = entry.Service?.Port ?? 0;
    const ipProblem = net.isIP(address) === 0 ? null : ipLiteralProblem(address);
    if (!hasOwnCheck(entry)) {
      dropped.push({ id, reason: 'no health check of its own (only node checks such as serfHealth): nothing shows it answers' });
    } else if (!address) {
      dropped.push({ id, reason: 'no address: both Service.Address and Node.Address are empty' });
    } else if (!Number.isInteger(port) || port < 1 || port > 65535) {
      dropped.push({ id, reason: `port ${port} is not in 1..65535` });
    } else if (ipProblem !== null) {
      dropped.push({ id, reason: `address ${JSON.stringify(address)} ${ipProblem}` });
    } else if (net.isIP(address) === 0 && !HOST_NAME.test(address)) {
      dropped.push({ id, reason: `address ${JSON.stringify(address)} is neither an IP literal nor a host name` });
    } else {
      instances.push({ id, address: address.toLowerCase(), port });
    }
  }
  return { instances, dropped };
}

/** The host names among the entries' addresses, for the watcher to resolve before selectUpstreams. */
export function hostNamesOf(entries: readonly HealthEntry[]): string[] {
  const names = checkEntries(entries)
    .instances.map((i) => i.address)
    .filter((a) => net.isIP(a) === 0);
  return [...new Set(names)].sort();
}

/**
 * Picks the upstreams from Consul's health entries (see checkEntries). A host name becomes the
 * addresses `resolved` gives for it; a name without addresses is dropped with the reason. Only IP
 * literals are ever rendered, so no entry can make nginx refuse the config.
 */
export function selectUpstreams(entries: readonly HealthEntry[], resolved: ReadonlyMap<string, Resolution> = new Map()): UpstreamSelection {
  const seen = new Set<string>();
  const { instances, dropped } = checkEntries(entries);
  for (const { id, address, port } of instances) {
    let addresses = [address];
    if (net.isIP(address) === 0) {
      const resolution = resolved.get(address);
      if (resolution === undefined || 'error' in resolution) {
        dropped.push({ id, reason: `host name ${address} does not resolve: ${resolution?.error ?? 'it was not looked up'}` });
        continue;
      }
      const checked = resolution.addresses.map((a) => ({ address: a.toLowerCase(), problem: ipLiteralProblem(a) }));
      addresses = checked.filter((c) => c.problem === null).map((c) => c.address);
      if (addresses.length === 0) {
        const why = checked.map((c) => `${c.address} ${c.problem}`).join('; ') || 'no address';
        dropped.push({ id, reason: `host name ${address} resolves to nothing nginx can load: ${why}` });
        continue;
      }
    }
    const upstreams = addresses.map((a) => hostPort(a, port));
    const fresh = upstreams.filter((u) => !seen.has(u));
    if (fresh.length === 0) dropped.push({ id, reason: `duplicate of ${upstreams.join(', ')}` });
    for (const u of fresh) seen.add(u);
  }
  return { upstreams: [...seen].sort(), dropped };
}
