import type { NetworkInterfaceInfo } from 'node:os';
import { envValue, rejectConfig } from '../lib/config-error';
import { DURABLE_INACTIVE_SECONDS, parseBrokerClient } from '../lib/broker';
import { ACTIVITY_DEFAULT_ROUTES, ACTIVITY_SERVICE_NAME } from '../lib/service-name';
import { parseConfig, type ServiceConfig } from '../replica/config';

/** The activity service's configuration: the service's own variables (replica/config.ts) and its own. */
export interface ActivityConfig extends ServiceConfig, ReturnType<typeof parseBrokerClient> {
  /** ACTIVITY_KEEP: how many recent events are kept and served. */
  keep: number;
  /** ACTIVITY_DURABLE_INACTIVE_SECONDS, in ms: how long the broker keeps a durable nobody consumes from. */
  durableInactiveMs: number;
  /** ACTIVITY_MAX_STREAMS: event streams open at once; more get a 503 with Retry-After. */
  maxStreams: number;
}

export const DEFAULT_ROUTES = ACTIVITY_DEFAULT_ROUTES;
export const DEFAULT_KEEP = 100;
export const MAX_KEEP = 10_000;
export const DEFAULT_DURABLE_INACTIVE_SECONDS = DURABLE_INACTIVE_SECONDS.default;
export const MAX_DURABLE_INACTIVE_SECONDS = DURABLE_INACTIVE_SECONDS.max;
/**
 * A stream costs the replica about 40 KB of heap (measured, with Node's HTTP objects): 1,000 of them about
 * 40 MB, well inside the replica's 256 MB with its 70 MB at rest.
 */
export const DEFAULT_MAX_STREAMS = 1000;
export const MAX_MAX_STREAMS = 100_000;

function parseKeep(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_KEEP;
  const keep = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  return keep >= 1 && keep <= MAX_KEEP ? keep : rejectConfig('ACTIVITY_KEEP', raw, `a whole number from 1 to ${MAX_KEEP}`);
}

function parseDurableInactiveMs(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_DURABLE_INACTIVE_SECONDS * 1000;
  const seconds = /^\d{1,7}$/.test(raw) ? Number(raw) : NaN;
  return seconds >= 1 && seconds <= MAX_DURABLE_INACTIVE_SECONDS
    ? seconds * 1000
    : rejectConfig(
        'ACTIVITY_DURABLE_INACTIVE_SECONDS',
        raw,
        `a whole number of seconds from 1 to ${MAX_DURABLE_INACTIVE_SECONDS} (7 days)`,
      );
}

function parseMaxStreams(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_MAX_STREAMS;
  const max = /^\d{1,6}$/.test(raw) ? Number(raw) : NaN;
  return max >= 1 && max <= MAX_MAX_STREAMS
    ? max
    : rejectConfig('ACTIVITY_MAX_STREAMS', raw, `a whole number from 1 to ${MAX_MAX_STREAMS}`);
}

/** Reads the activity service's environment once, at start; throws ConfigError naming the first bad variable. */
export function parseActivityConfig(
  env: NodeJS.ProcessEnv,
  facts: { hostname: string; interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> },
): ActivityConfig {
  return {
    // The service's rules for the shared variables (ROUTES too, lib/routes.ts), with this service's defaults.
    ...parseConfig(env, facts, { serviceName: ACTIVITY_SERVICE_NAME, routes: DEFAULT_ROUTES }),
    ...parseBrokerClient(env),
    keep: parseKeep(envValue(env, 'ACTIVITY_KEEP')),
    durableInactiveMs: parseDurableInactiveMs(envValue(env, 'ACTIVITY_DURABLE_INACTIVE_SECONDS')),
    maxStreams: parseMaxStreams(envValue(env, 'ACTIVITY_MAX_STREAMS')),
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
