// One followed service, as consul-template's View: its last health answer turned into upstreams, with the
// host names among its entries resolved (again every `resolveRetryMs` while one fails), so only IP
// literals reach the renderer.
import { hostNamesOf, isPassing, selectUpstreams, type HealthEntry, type Resolution, type UpstreamSelection } from './consul-entries';
import type { ResolveNames } from './resolve';

/** What the follower knows about one routed service from its last health answer. */
export interface ServiceView {
  /** Every registered instance. */
  entries: readonly HealthEntry[];
  /** The upstreams of the passing instances, and the instances left out. */
  selection: UpstreamSelection;
  resolved: ReadonlyMap<string, Resolution>;
}

export interface FollowedService {
  readonly name: string;
  /** Undefined until its first answer is selected. */
  view(): ServiceView | undefined;
  /** A new health answer: resolves its names, then calls `onView` (unless a newer answer overtook it). */
  update(entries: readonly HealthEntry[]): Promise<void>;
  stop(): void;
}

export function followedService(name: string, resolveNames: ResolveNames, resolveRetryMs: number, onView: () => void): FollowedService {
  let view: ServiceView | undefined;
  let round = 0;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;

  const update = async (entries: readonly HealthEntry[]) => {
    const mine = ++round;
    if (retryTimer) clearTimeout(retryTimer);
    retryTimer = undefined;
    const passing = entries.filter(isPassing);
    const names = hostNamesOf(passing);
    const resolved: ReadonlyMap<string, Resolution> =
      names.length > 0
        ? await resolveNames(names).catch((error: unknown) => new Map(names.map((n) => [n, { error: String(error) }])))
        : new Map();
    if (stopped || mine !== round) return;
    view = { entries, selection: selectUpstreams(passing, resolved), resolved };
    onView();
    if ([...resolved.values()].some((r) => 'error' in r)) retryTimer = setTimeout(() => void update(entries), resolveRetryMs);
  };

  return {
    name,
    view: () => view,
    update,
    stop() {
      stopped = true;
      if (retryTimer) clearTimeout(retryTimer);
    },
  };
}
