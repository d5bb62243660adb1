import { EventEmitter } from 'node:events';
import Consul from 'consul';
import { wakeableSleep } from '../lib/wakeable-sleep';
import type { BalancerConfig } from './config';
import type { Logger } from '../lib/logger';
import { hostNamesOf, sameUpstreams, selectUpstreams, type HealthEntry, type Resolution, type UpstreamSelection } from './render';
import type { ResolveNames } from './resolve';

/** One answer of `/v1/health/service/<name>?passing`: the entries and Consul's X-Consul-Index. */
export interface HealthAnswer {
  entries: HealthEntry[];
  index: number;
}

/** One blocking query; `cancel` fires when the follower stops, to abort it. */
export type FetchHealth = (index: number, cancel: EventEmitter) => Promise<HealthAnswer>;

export interface FollowerOptions {
  fetchHealth: FetchHealth;
  /** Turns the host names among the entries into addresses (the real one is nameResolver; tests pass a map). */
  resolveNames: ResolveNames;
  /** While some name does not resolve, it is looked up again this often, even if Consul has no news. */
  resolveRetryMs?: number;
  logger: Logger;
  /** How long an empty set is ignored right after a Consul outage or index reset. */
  emptyGraceMs: number;
  /** Called with every effective change of the upstream set (never twice with the same set). */
  onChange(selection: UpstreamSelection): void;
  /**
   * Called after every answer (the raw selection, before any grace), for the status page and logs; the
   * entries and resolved names let the evidence page tell which instance each upstream is.
   */
  onIndex?(index: number, selection: UpstreamSelection, entries: readonly HealthEntry[], resolved: ReadonlyMap<string, Resolution>): void;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
}

export interface Follower {
  stop(): void;
  /** Whether the last query failed, and why. */
  consulState(): { reachable: boolean; lastError: string | null; failedAttempts: number };
}

/** The blocking query through the `consul` client, returning the index header with the body. */
export function consulHealthFetcher(config: BalancerConfig, waitSeconds = 30): FetchHealth {
  const consul = new Consul({
    host: config.consul.host,
    port: config.consul.port,
    secure: config.consul.secure,
    // Sent with every request as X-Consul-Token; without one Consul answers as to anonymous (nothing).
    ...(config.consulToken !== undefined ? { defaults: { token: config.consulToken } } : {}),
  });
  return async (index, cancel) => {
    // includeResponse on the ctx makes the client resolve [response, body], which carries X-Consul-Index.
    const ctx = Object.assign(cancel, { includeResponse: true });
    const options = {
      service: config.serviceName,
      passing: true,
      index: String(index),
      wait: `${waitSeconds}s`,
      // Consul adds up to wait/16 of jitter; allow for it before calling the query dead.
      timeout: waitSeconds * 1000 + Math.max((waitSeconds * 1000) / 8, 5000),
      ctx,
    };
    const [response, body] = (await consul.health.service(options as never)) as unknown as [
      { headers: Record<string, string | undefined> },
      HealthEntry[],
    ];
    const header = response.headers['x-consul-index'];
    const parsed = Number(header);
    if (header === undefined || !Number.isFinite(parsed)) throw new Error('Consul answered without a valid X-Consul-Index header');
    return { entries: Array.isArray(body) ? body : [], index: parsed };
  };
}

/**
 * Follows the healthy instances with blocking queries. Keeps the last good set while Consul fails
 * (logging once per outage), resets its index when Consul's goes backwards, and right after an
 * outage or reset ignores an empty set for `emptyGraceMs` while replicas register again. Host names
 * are resolved on every answer (and again while one fails), so only IP literals reach the renderer.
 */
export function followHealthyInstances(o: FollowerOptions): Follower {
  const backoffInitialMs = o.backoffInitialMs ?? 200;
  const backoffMaxMs = o.backoffMaxMs ?? 3000;
  const resolveRetryMs = o.resolveRetryMs ?? 5000;
  const cancel = new EventEmitter();
  let stopped = false;
  let index = 0;
  let lastSeenIndex = 0;
  let current: UpstreamSelection | undefined;
  let graceUntil = 0;
  let graceTimer: NodeJS.Timeout | undefined;
  let latest: UpstreamSelection | undefined;
  let failedAttempts = 0;
  let outageStartedAt = 0;
  let lastError: string | null = null;
  let round = 0;
  let resolveRetryTimer: NodeJS.Timeout | undefined;

  const emit = (selection: UpstreamSelection) => {
    if (current && sameUpstreams(current.upstreams, selection.upstreams)) return;
    current = selection;
    o.onChange(selection);
  };

  const startGrace = (why: string) => {
    if (o.emptyGraceMs <= 0) return;
    graceUntil = Date.now() + o.emptyGraceMs;
    o.logger.info('empty-set grace started', { why, graceMs: o.emptyGraceMs });
  };

  const endGrace = () => {
    graceUntil = 0;
    if (graceTimer) clearTimeout(graceTimer);
    graceTimer = undefined;
  };

  const handle = (selection: UpstreamSelection) => {
    latest = selection;
    const holding = selection.upstreams.length === 0 && current !== undefined && current.upstreams.length > 0;
    if (holding && Date.now() < graceUntil) {
      if (!graceTimer) {
        o.logger.info('Consul reports no healthy instance right after an outage; keeping the last set during the grace', {
          kept: current!.upstreams,
          graceLeftMs: graceUntil - Date.now(),
        });
        graceTimer = setTimeout(() => {
          graceTimer = undefined;
          graceUntil = 0;
          if (!stopped && latest) handle(latest);
        }, graceUntil - Date.now());
      }
      return;
    }
    if (selection.upstreams.length > 0) endGrace();
    emit(selection);
  };

  // One round per Consul answer (or retry of its names); a round a newer one overtook is discarded.
  const select = async (consulIndex: number, entries: readonly HealthEntry[]) => {
    const mine = ++round;
    if (resolveRetryTimer) clearTimeout(resolveRetryTimer);
    resolveRetryTimer = undefined;
    const names = hostNamesOf(entries);
    const resolved: ReadonlyMap<string, Resolution> =
      names.length > 0
        ? await o.resolveNames(names).catch((error: unknown) => new Map(names.map((n) => [n, { error: String(error) }])))
        : new Map();
    if (stopped || mine !== round) return;
    const selection = selectUpstreams(entries, resolved);
    o.onIndex?.(consulIndex, selection, entries, resolved);
    handle(selection);
    if ([...resolved.values()].some((r) => 'error' in r)) {
      resolveRetryTimer = setTimeout(() => void select(consulIndex, entries), resolveRetryMs);
    }
  };

  const { sleep: pause, wake: wakeUp } = wakeableSleep();

  const loop = async () => {
    while (!stopped) {
      let answer: HealthAnswer;
      try {
        answer = await o.fetchHealth(index, cancel);
      } catch (error) {
        if (stopped) return;
        lastError = error instanceof Error ? error.message : String(error);
        if (failedAttempts === 0) {
          outageStartedAt = Date.now();
          o.logger.warn('Consul query failed; keeping the last good upstream set and retrying with backoff', {
            error: lastError,
            kept: current?.upstreams ?? [],
          });
        }
        failedAttempts++;
        // The agent may have restarted with a lower index; a blocking query on the old one could hang until `wait`.
        index = 0;
        await pause(Math.min(backoffMaxMs, backoffInitialMs * 2 ** Math.min(failedAttempts - 1, 20)));
        continue;
      }
      if (stopped) return;
      if (failedAttempts > 0) {
        o.logger.info('Consul answers again', { failedAttempts, outageMs: Date.now() - outageStartedAt });
        failedAttempts = 0;
        lastError = null;
        startGrace('consul outage');
      }
      if (answer.index < lastSeenIndex) {
        // Consul's advice: an index that goes backwards (agent restart, snapshot restore) means start over at 0.
        o.logger.warn('Consul index went backwards; resetting it', { previous: lastSeenIndex, received: answer.index });
        index = 0;
        if (graceUntil === 0) startGrace('index reset');
      } else {
        // Consul's advice: never block on index 0 again, it would return at once.
        index = Math.max(answer.index, 1);
      }
      lastSeenIndex = answer.index;
      await select(answer.index, answer.entries);
    }
  };
  void loop();

  return {
    stop() {
      stopped = true;
      endGrace();
      if (resolveRetryTimer) clearTimeout(resolveRetryTimer);
      cancel.emit('cancel');
      wakeUp();
    },
    consulState: () => ({ reachable: failedAttempts === 0, lastError, failedAttempts }),
  };
}
