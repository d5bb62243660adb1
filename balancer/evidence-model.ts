// What the evidence page shows, as plain data and pure functions: the watcher builds the snapshot it
// streams, the page's script (balancer/page/page.ts, bundled for the browser) tallies its requests.
// No import here: this file goes into the browser bundle too (and type-checks without Node's types).
/** One row of the page's instance table: one upstream address and the Consul instance behind it. */
export interface InstanceRow {
  /** The Consul service the instance belongs to. */
  service: string;
  /** Consul's service ID. */
  id: string;
  /** `address:port` as nginx has it. */
  address: string;
  /** The worst of Consul's check statuses for the entry (node and service checks); `not listed` once Consul has dropped it. */
  health: string;
  /** `passing/total` of those checks, or empty when not listed. */
  checks: string;
  /**
   * serving: in the set nginx serves; joining: Consul passes it and nginx has not loaded it yet;
   * leaving: nginx still serves it while Consul no longer lists it (reload pending, or the empty-set grace).
   */
  state: 'serving' | 'joining' | 'leaving';
  /** When the address entered the set nginx serves (ISO 8601); null while joining. */
  since: string | null;
  /** The instance's event outbox as its /health reports it (a hello replica); null for one that reports none. */
  outbox: OutboxSignal | null;
}

/**
 * A hello replica's outbox (service/outbox.ts OutboxStatus): `filling` from 80 % of the bound, the signal
 * before `full`, where its writes answer 503 until the broker takes the events again.
 */
export interface OutboxSignal {
  state: 'ok' | 'filling' | 'full';
  entries: number;
  maxEntries: number;
}

/** The `outbox` of a /health answer, or null when it has none (not a hello replica) or is not one. */
export function outboxOfHealth(body: unknown): OutboxSignal | null {
  const outbox = (body as { outbox?: Partial<OutboxSignal> } | null)?.outbox;
  if (!outbox || !['ok', 'filling', 'full'].includes(outbox.state as string)) return null;
  const { entries, maxEntries } = outbox;
  if (typeof entries !== 'number' || typeof maxEntries !== 'number') return null;
  return { state: outbox.state as OutboxSignal['state'], entries, maxEntries };
}

/** One message of the page's event stream: everything the page shows about the routed services. */
export interface EvidenceSnapshot {
  /** Every routed service with the routes nginx serves for it, by name. */
  services: Array<{ name: string; routes: string[] }>;
  consulIndex: number | null;
  consulReachable: boolean;
  /** When the table nginx serves last changed (ISO 8601). */
  changedAt: string | null;
  reloads: number;
  /** Every service's instances, by service, then id. */
  instances: InstanceRow[];
  /** Entries Consul passes that the balancer leaves out, and why (consul-entries.ts DroppedEntry). */
  dropped: Array<{ service: string; id: string; reason: string }>;
  /** Route tags the balancer leaves out, and why (routing.ts DroppedRoute). */
  droppedRoutes: Array<{ service: string; route: string; reason: string }>;
}

/** Consul's last answer as the watcher read it: each accepted instance and the upstream addresses it stands for. */
export interface ConsulInstance {
  id: string;
  upstreams: string[];
  health: string;
  checks: string;
}

/** One service's instance rows: Consul's instances against the set nginx serves, sorted by id then address. */
export function instanceRows(
  service: string,
  served: { upstreams: readonly string[]; upstreamsSince: Readonly<Record<string, string>> },
  consul: readonly ConsulInstance[],
  /** The last id Consul gave each upstream, to name one that nginx serves after Consul has dropped it. */
  knownIds: ReadonlyMap<string, string>,
  /** The outbox each upstream's /health reported last (evidence-page.ts probes them while the page is open). */
  outboxes: ReadonlyMap<string, OutboxSignal> = new Map(),
): InstanceRow[] {
  const rows: InstanceRow[] = [];
  const listed = new Set<string>();
  const isServed = new Set(served.upstreams);
  for (const instance of consul) {
    for (const address of instance.upstreams) {
      listed.add(address);
      const serving = isServed.has(address);
      rows.push({
        service,
        id: instance.id,
        address,
        health: instance.health,
        checks: instance.checks,
        state: serving ? 'serving' : 'joining',
        since: serving ? (served.upstreamsSince[address] ?? null) : null,
        outbox: outboxes.get(address) ?? null,
      });
    }
  }
  for (const address of served.upstreams) {
    if (listed.has(address)) continue;
    rows.push({
      service,
      id: knownIds.get(address) ?? '(unknown)',
      address,
      health: 'not listed',
      checks: '',
      state: 'leaving',
      since: served.upstreamsSince[address] ?? null,
      outbox: outboxes.get(address) ?? null,
    });
  }
  return rows.sort((a, b) => (a.id === b.id ? compare(a.address, b.address) : compare(a.id, b.id)));
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The worst status among Consul's checks of one entry, and how many pass. */
export function healthOfChecks(statuses: readonly string[]): { health: string; checks: string } {
  if (statuses.length === 0) return { health: 'no checks', checks: '0/0' };
  // Consul's own order, worst first; a status it may add later counts as worse than passing.
  const worst =
    ['critical', 'maintenance', 'warning'].find((s) => statuses.includes(s)) ?? statuses.find((s) => s !== 'passing') ?? 'passing';
  return { health: worst, checks: `${statuses.filter((s) => s === 'passing').length}/${statuses.length}` };
}

/** How one request the page sent ended: the instance that answered, or why it failed. */
export type RequestOutcome = { instance: string } | { failure: string };

export interface Tally {
  total: number;
  /** Requests answered per `X-Instance-Id`, most first (then by id). */
  instances: Array<{ id: string; count: number; share: number }>;
  failures: number;
  /** Failures per reason (`HTTP 503`, `network error`, ...), most first. */
  failureReasons: Array<{ reason: string; count: number }>;
}

/** Counts and shares (0..1 of all requests sent, failures included) for the chart. */
export function tally(outcomes: readonly RequestOutcome[]): Tally {
  const byInstance = new Map<string, number>();
  const byReason = new Map<string, number>();
  for (const outcome of outcomes) {
    if ('instance' in outcome) byInstance.set(outcome.instance, (byInstance.get(outcome.instance) ?? 0) + 1);
    else byReason.set(outcome.failure, (byReason.get(outcome.failure) ?? 0) + 1);
  }
  const total = outcomes.length;
  const ranked = <K extends string>(map: Map<string, number>, key: K) =>
    [...map]
      .sort((a, b) => b[1] - a[1] || compare(a[0], b[0]))
      .map(([name, count]) => ({ [key]: name, count }) as { [P in K]: string } & { count: number });
  return {
    total,
    instances: ranked(byInstance, 'id').map((i) => ({ ...i, share: total === 0 ? 0 : i.count / total })),
    failures: total - [...byInstance.values()].reduce((a, b) => a + b, 0),
    failureReasons: ranked(byReason, 'reason'),
  };
}

/** The page's "Activity events" panel: the activity service's user events, as the relay passes them on. */
export interface ActivityEvent {
  id: string;
  type: string;
  userId: string;
  at: string;
}

/** Rows the activity panel keeps, newest first: the page stays short and its memory bounded. */
export const ACTIVITY_ROWS = 50;

/**
 * The event in one SSE message's data, or null when it is not one. Only the four fields are kept, as
 * strings: whatever else a message holds never reaches the page.
 */
export function activityEventOf(data: string): ActivityEvent | null {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const { id, type, userId, at } = value as Record<string, unknown>;
  const strings = [id, type, userId, at].every((v) => typeof v === 'string' && v !== '');
  return strings ? { id: id as string, type: type as string, userId: userId as string, at: at as string } : null;
}

/**
 * `event` added to the rows (newest first, at most `max`), or the rows unchanged when its id is already
 * there: a stream resumed with Last-Event-ID may send an event again.
 */
export function addActivity(rows: readonly ActivityEvent[], event: ActivityEvent, max = ACTIVITY_ROWS): ActivityEvent[] {
  if (rows.some((row) => row.id === event.id)) return [...rows];
  return [event, ...rows].slice(0, max);
}

/** Why the relay has no activity stream to pass on (balancer/evidence-activity.ts sends it as `event: unavailable`). */
export interface ActivityUnavailable {
  /** The public listener's HTTP status, or 0 when it did not answer. */
  status: number;
  /** The `error` of its JSON answer, or what went wrong. */
  error: string;
}

/** What the panel says while the stream is unavailable. */
export function unavailableText(u: ActivityUnavailable): string {
  if (u.status === 404) return 'No service is routed at /api/activity: start the activity service (the gateway answers 404).';
  if (u.status === 503) return 'The activity service is registered but no instance passes its checks (503).';
  if (u.status === 0) return `The balancer's public listener did not answer: ${u.error}.`;
  return `The activity stream is unavailable: HTTP ${u.status} ${u.error}.`;
}
