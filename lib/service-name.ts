// The one rule for a service's name. The name is a Consul service name (looked up over Consul's DNS
// interface, so a DNS label), a part of Docker container and image names (lowercase only in image
// names), a Consul KV path segment and text inside the balancer's nginx config: a lowercase DNS label
// fits all of them.
const SERVICE_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** The name used when none is configured. */
export const DEFAULT_SERVICE_NAME = 'hello';

/** The public paths hello asks the gateway for (its default ROUTES): exactly `/`, and `/api/users` with everything under it. */
export const SERVICE_DEFAULT_ROUTES = '=/,/api/users';

/** The activity service's default ROUTES: its feed and its stream. */
export const ACTIVITY_DEFAULT_ROUTES = '/api/activity';

/** The activity service's name in Consul (activity/ registers under it; its ACL role and the gateway's routes follow it). */
export const ACTIVITY_SERVICE_NAME = 'activity';

/** The broker's name in Consul: the Pulumi program registers the NATS server under it, services look it up (NATS_SERVICE). */
export const BROKER_SERVICE_NAME = 'nats';

/** What a service name may be, in words, for error messages and the README. */
export const SERVICE_NAME_ALLOWED = 'lowercase letters, digits and inner hyphens, 1 to 63 characters, such as hello';

export function isServiceName(text: string): boolean {
  return SERVICE_NAME.test(text);
}
