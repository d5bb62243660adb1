// Which public paths each service of the stack may serve (the balancer's ROUTE_OWNERS): the routes its
// replicas ask for, granted by the deploy, so a replica's token registering other tags takes no path
// (balancer/README.md, "Routes"). The stack's replicas run with their services' default ROUTES.
import { routeOwnersText } from '../lib/route-owners';
import { ACTIVITY_DEFAULT_ROUTES, ACTIVITY_SERVICE_NAME, SERVICE_DEFAULT_ROUTES } from '../lib/service-name';

/** ROUTE_OWNERS for a stack whose service is `serviceName`, beside the activity service. */
export function stackRouteOwners(serviceName: string): string {
  return routeOwnersText({ [serviceName]: SERVICE_DEFAULT_ROUTES, [ACTIVITY_SERVICE_NAME]: ACTIVITY_DEFAULT_ROUTES });
}
