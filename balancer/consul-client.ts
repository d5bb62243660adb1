// The watcher's queries to Consul's HTTP API, over at most MAX_CONSUL_CONNECTIONS sockets whatever the
// number of routed services: the catalog and the health state block (one socket each), and the reads of
// changed services share the rest. Consul closes connections beyond `http_max_conns_per_client`
// (lib/consul-limits.ts), so a watcher that grew with the services would stop routing them.
import http from 'node:http';
import https from 'node:https';
import type { BalancerConfig } from './config';
import type { HealthEntry } from './consul-entries';
import type { HealthCheck } from './routing';

/** The watcher's connections to Consul: two blocking queries and READ_CONCURRENCY reads. */
export const READ_CONCURRENCY = 2;
export const MAX_CONSUL_CONNECTIONS = 2 + READ_CONCURRENCY;

/** One answer of a query: the body and Consul's X-Consul-Index. */
export interface ConsulAnswer<T> {
  body: T;
  index: number;
}

/** `/v1/catalog/services` (blocking): service name → the union of its instances' tags. */
export type FetchCatalog = (index: number, signal: AbortSignal) => Promise<ConsulAnswer<Record<string, string[] | null>>>;
/** `/v1/health/state/any` (blocking): every check, with the service it belongs to. */
export type FetchHealthState = (index: number, signal: AbortSignal) => Promise<ConsulAnswer<HealthCheck[]>>;
/** `/v1/health/service/<name>` (not blocking): every registered instance with its checks (not only the passing ones). */
export type ReadService = (service: string, signal: AbortSignal) => Promise<ConsulAnswer<HealthEntry[]>>;

/** Why a request to Consul failed, with the system error behind it. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: string; message?: string } | undefined;
  return cause ? `${error.message}: ${cause.code ?? cause.message ?? 'no detail'}` : error.message;
}

interface Reply {
  status: number;
  index: string | undefined;
  text: string;
}

/**
 * Consul's HTTP API with the balancer's token, over one keep-alive pool of at most
 * MAX_CONSUL_CONNECTIONS sockets (a request beyond waits for a free one); `waitSeconds` 0 asks the
 * blocking queries for the current answer.
 */
export function consulClient(
  config: BalancerConfig,
  waitSeconds = 30,
): { catalog: FetchCatalog; healthState: FetchHealthState; service: ReadService; close(): void } {
  const secure = config.consul.secure;
  const agent = new (secure ? https : http).Agent({
    keepAlive: true,
    maxSockets: MAX_CONSUL_CONNECTIONS,
    maxFreeSockets: MAX_CONSUL_CONNECTIONS,
  });
  const headers: Record<string, string> = config.consulToken !== undefined ? { 'X-Consul-Token': config.consulToken } : {};
  // Consul adds up to wait/16 of jitter; allow for it before calling a blocking query dead.
  const blockingTimeoutMs = waitSeconds * 1000 + Math.max((waitSeconds * 1000) / 8, 5000);
  const readTimeoutMs = 5000;

  const get = (pathAndQuery: string, timeoutMs: number, signal: AbortSignal) =>
    new Promise<Reply>((resolve, reject) => {
      const req = (secure ? https : http).get(
        `${config.consul.url}${pathAndQuery}`,
        { agent, headers, signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const index = res.headers['x-consul-index'];
            resolve({
              status: res.statusCode ?? 0,
              index: Array.isArray(index) ? index[0] : index,
              text: Buffer.concat(chunks).toString('utf8'),
            });
          });
        },
      );
      req.on('error', reject);
    });

  const query = async <T>(path: string, search: string, timeoutMs: number, signal: AbortSignal): Promise<ConsulAnswer<T>> => {
    let reply: Reply;
    try {
      reply = await get(`${path}?${search}`, timeoutMs, signal);
    } catch (error) {
      throw new Error(`Consul ${path}: ${describeError(error)}`, { cause: error });
    }
    if (reply.status < 200 || reply.status > 299)
      throw new Error(`Consul ${path}: HTTP ${reply.status} ${reply.text.trim().slice(0, 200)}`);
    const parsed = Number(reply.index);
    if (reply.index === undefined || !Number.isFinite(parsed))
      throw new Error(`Consul ${path} answered without a valid X-Consul-Index header`);
    return { body: JSON.parse(reply.text) as T, index: parsed };
  };
  const blocking = <T>(path: string, index: number, signal: AbortSignal) =>
    query<T>(path, `index=${index}&wait=${waitSeconds}s`, blockingTimeoutMs, signal);

  return {
    catalog: async (index, signal) => {
      const answer = await blocking<Record<string, string[] | null>>('/v1/catalog/services', index, signal);
      return { index: answer.index, body: answer.body !== null && typeof answer.body === 'object' ? answer.body : {} };
    },
    healthState: async (index, signal) => {
      const answer = await blocking<HealthCheck[]>('/v1/health/state/any', index, signal);
      return { index: answer.index, body: Array.isArray(answer.body) ? answer.body : [] };
    },
    service: async (service, signal) => {
      const answer = await query<HealthEntry[]>(`/v1/health/service/${encodeURIComponent(service)}`, '', readTimeoutMs, signal);
      return { index: answer.index, body: Array.isArray(answer.body) ? answer.body : [] };
    },
    close: () => agent.destroy(),
  };
}
