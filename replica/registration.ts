import type Consul from 'consul';
import { httpUrl } from '../lib/endpoints';
import { routeTag, type Route } from '../lib/routes';
import { wakeableSleep } from '../lib/wakeable-sleep';
import type { ServiceConfig } from './config';
import type { Logger } from '../lib/logger';

/** What this replica tells Consul about itself. */
export interface ServiceDefinition {
  id: string;
  name: string;
  address: string;
  port: number;
  checkUrl: string;
  /** Consul tags: one `urlprefix-` tag per route the gateway should send here (lib/routes.ts). */
  tags: string[];
}

/** The three agent calls registration needs; an interface so the retry logic is testable without Consul. */
export type InitialStatus = 'passing' | 'critical';

export interface AgentApi {
  register(service: ServiceDefinition, initialStatus: InitialStatus): Promise<void>;
  deregister(id: string): Promise<void>;
  /** Whether the local agent still knows the service (it forgets everything when restarted). */
  isRegistered(id: string): Promise<boolean>;
}

export interface RegistrationTiming {
  /** How often to ask the agent whether it still has us. */
  pollMs: number;
  firstRetryMs: number;
  maxRetryMs: number;
}

export interface Registration {
  isRegistered(): boolean;
  /** Stops retrying and polling, then removes the service from Consul; bounded by the client's timeout. */
  stop(): Promise<void>;
}

// Errors that mean the request never reached Consul, so it cannot have registered anything.
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH']);

export const DEFAULT_TIMING: RegistrationTiming = { pollMs: 1000, firstRetryMs: 100, maxRetryMs: 2000 };

/** The registration of one replica listening on `port`; any service's config with these fields will do (hello's, activity's). */
export function serviceDefinition(
  config: Pick<ServiceConfig, 'serviceId' | 'serviceName' | 'serviceAddress' | 'tls'> & { routes: readonly Route[]; port: number },
): ServiceDefinition {
  const base = httpUrl(config.serviceAddress, config.port);
  return {
    id: config.serviceId,
    name: config.serviceName,
    address: config.serviceAddress,
    port: config.port,
    // Over HTTPS, Consul verifies the certificate with its agent's CA (the stack's, on VMs).
    checkUrl: `${config.tls ? base.replace(/^http:/, 'https:') : base}/health`,
    tags: config.routes.map(routeTag),
  };
}

/** Agent endpoints present in Consul 1.8 and in current 1.2x releases alike. */
export function consulAgentApi(consul: Consul): AgentApi {
  return {
    async register(service, initialStatus) {
      await consul.agent.service.register({
        id: service.id,
        name: service.name,
        address: service.address,
        port: service.port,
        tags: service.tags,
        check: {
          name: `${service.name} HTTP /health`,
          http: service.checkUrl,
          interval: '1s',
          timeout: '1s',
          status: initialStatus,
          // Consul's minimum; reaps entries of replicas that died without deregistering.
          deregistercriticalserviceafter: '1m',
        },
      });
    },
    async deregister(id) {
      await consul.agent.service.deregister(id);
    },
    async isRegistered(id) {
      const services = await consul.agent.service.list();
      return Object.prototype.hasOwnProperty.call(services, id);
    },
  };
}

/**
 * Registers the service and keeps it registered: retries with capped exponential backoff until
 * Consul answers, then polls the agent and registers again when the agent has lost the entry.
 * Call only once the server is listening, so the first health check can pass.
 */
export function keepRegistered(
  api: AgentApi,
  service: ServiceDefinition,
  logger: Logger,
  timing: RegistrationTiming = DEFAULT_TIMING,
): Registration {
  let stopped = false;
  let registered = false;
  // A register call whose answer was lost (timeout, reset) may still have registered us.
  let mayBeRegistered = false;
  let firstAttempt = true;
  let initialStatus: InitialStatus = 'passing';
  const { sleep, wake } = wakeableSleep();

  const run = async () => {
    let retryMs = timing.firstRetryMs;
    let lastProblem = '';
    while (!stopped) {
      try {
        if (!registered) {
          if (firstAttempt && (await api.isRegistered(service.id))) {
            // An entry under our id before we ever registered is a crashed predecessor's (restart
            // policy). Consul keeps a re-registered check's status, so without a fresh entry a quick
            // restart would never leave the balancer; start critical, let the first check admit us.
            await api.deregister(service.id);
            initialStatus = 'critical';
            logger.warn('replaced the entry a previous run left (crashed?); in rotation once the first check passes', {
              service: service.name,
            });
          }
          firstAttempt = false;
          const before = mayBeRegistered;
          mayBeRegistered = true;
          try {
            // We register only once listening, so a fresh replica starts passing and is routable at
            // once instead of after Consul's first check interval.
            await api.register(service, initialStatus);
          } catch (error) {
            if (NOT_SENT.has((error as NodeJS.ErrnoException).code ?? '')) mayBeRegistered = before;
            throw error;
          }
          registered = true;
          logger.info('registered', { service: service.name, check: service.checkUrl, initialStatus });
          initialStatus = 'passing';
        } else if (!(await api.isRegistered(service.id))) {
          registered = false;
          logger.warn('registration lost (Consul agent restarted?); registering again', { service: service.name });
          continue;
        }
        retryMs = timing.firstRetryMs;
        lastProblem = '';
        if (!stopped) await sleep(timing.pollMs);
      } catch (error) {
        const problem = error instanceof Error ? error.message : String(error);
        // One line per distinct problem, not one per retry.
        if (problem !== lastProblem) {
          logger.warn(registered ? 'cannot reach Consul to check registration; retrying' : 'cannot register with Consul; retrying', {
            error: problem,
          });
          lastProblem = problem;
        }
        if (!stopped) await sleep(retryMs);
        retryMs = Math.min(retryMs * 2, timing.maxRetryMs);
      }
    }
  };
  const running = run();

  return {
    isRegistered: () => registered,
    async stop() {
      stopped = true;
      wake();
      await running;
      registered = false;
      if (!mayBeRegistered) return;
      try {
        await api.deregister(service.id);
        logger.info('deregistered', { service: service.name });
      } catch (error) {
        logger.error('deregistration failed; Consul will reap the entry once its check fails', { error });
      }
    },
  };
}
