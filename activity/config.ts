import type { NetworkInterfaceInfo } from 'node:os';
import { envValue, rejectConfig } from '../lib/config-error';
import { parseNatsService } from '../lib/broker';
import { ACTIVITY_SERVICE_NAME } from '../lib/service-name';
import { parseConfig, type ServiceConfig } from '../service/config';

/** The activity service's configuration: the service's own variables (service/config.ts) and its own. */
export interface ActivityConfig extends ServiceConfig {
  /** NATS_SERVICE: the broker's name in Consul. */
  natsService: string;
  /** ACTIVITY_KEEP: how many recent events are kept and served. */
  keep: number;
}

export const DEFAULT_ROUTES = '/api/activity';
export const DEFAULT_KEEP = 100;
export const MAX_KEEP = 10_000;

function parseKeep(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_KEEP;
  const keep = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  return keep >= 1 && keep <= MAX_KEEP ? keep : rejectConfig('ACTIVITY_KEEP', raw, `a whole number from 1 to ${MAX_KEEP}`);
}

/** Reads the activity service's environment once, at start; throws ConfigError naming the first bad variable. */
export function parseActivityConfig(
  env: NodeJS.ProcessEnv,
  facts: { hostname: string; interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> },
): ActivityConfig {
  return {
    // The service's rules for the shared variables (ROUTES too, lib/routes.ts), with this service's defaults.
    ...parseConfig(env, facts, { serviceName: ACTIVITY_SERVICE_NAME, routes: DEFAULT_ROUTES }),
    natsService: parseNatsService(env),
    keep: parseKeep(envValue(env, 'ACTIVITY_KEEP')),
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
